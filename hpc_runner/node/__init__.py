"""What runs on the compute node: the submitted job, its signal handling and the training.

:class:`~hpc_runner.node.job.NodeJob` is what submitit pickles and runs; importing it loads no
torch. The status callback and the training helpers import lightning and careamics. Nothing here
imports textual or watchdog.
"""
