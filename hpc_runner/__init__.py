"""hpc_runner: train CAREamics models on SLURM (or locally) and watch them from plain status files.

Importing the package is cheap and never loads torch or careamics: the monitoring side (status
model, status files, ``hpc-runner status`` and ``watch``) must start in well under a second.
"""

from __future__ import annotations

from hpc_runner.status import TrainingState, TrainingStatus, TrainUpdate, TrainUpdateType

__version__ = "0.1.0"

__all__ = ["TrainUpdate", "TrainUpdateType", "TrainingState", "TrainingStatus", "__version__"]
