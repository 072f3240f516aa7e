"""``python -m hpc_runner``: same as the ``hpc-runner`` command."""

import sys

from hpc_runner.cli import main

sys.exit(main())
