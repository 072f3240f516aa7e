"""The submitting machine: submission, the scheduler, and the jobs of a run.

Submits runs and sweeps with submitit, asks the scheduler (``sacct``, ``squeue``, local
processes) what became of them, and stops, cancels, resumes and shows the logs of a run. Imports
:mod:`hpc_runner.node` only for the job object it submits, which loads no torch.
"""
