"""The values of the ``environment`` and ``system`` extension records (shared/DESIGN.md).

``environment`` is written once at the start of every attempt: what runs where (versions, GPUs,
host) and what the scheduler granted (CPUs, memory, time limit). ``system`` is sampled every
``monitor.interval_s`` by rank 0 during the training: GPU use, the training process tree's CPU
and memory, throughput and the share of time spent waiting for data.

Every field is optional and left out of the line when unknown (``omit_defaults``): a node
without a GPU, NVML or a scheduler writes fewer keys, never made-up ones. Unknown keys are
ignored when decoding, so a newer node may add keys without breaking an older reader. Plain
msgspec structs: cheap to import on the monitoring side, and checked while a line decodes.
"""

from __future__ import annotations

import msgspec

from hpc_runner.stream.processes import ProcessId
from hpc_runner.stream.record_values import Int64

__all__ = ["EnvironmentValue", "GpuInfo", "GpuSample", "SystemValue"]


class GpuInfo(msgspec.Struct, frozen=True, omit_defaults=True):
    """One GPU visible to the training (``index`` as CUDA numbers it inside the job)."""

    index: Int64
    name: str | None = None
    memory_total_bytes: Int64 | None = None


class EnvironmentValue(msgspec.Struct, frozen=True, omit_defaults=True):
    """What an attempt runs with and was granted.

    Attributes
    ----------
    hpc_runner, careamics, torch, lightning, python : str | None
        Versions.
    executable : str | None
        The Python interpreter that trains (which virtual environment the node ran).
    cuda : str | None
        The CUDA version torch was built with (None for a CPU build of torch).
    cuda_available : bool | None
        Whether torch can use a GPU in this job.
    nvidia_driver : str | None
        The NVIDIA driver version (from NVML).
    gpus : list of GpuInfo | None
        GPUs visible to the job.
    host, job, partition : str | None
        Where it runs: host name, scheduler job id, SLURM partition.
    cpus : int | None
        CPUs granted (SLURM), else the CPUs this process may run on.
    mem_bytes : int | None
        Memory granted (SLURM; a local run: what its profile asked for).
    time_limit_s : float | None
        The attempt's time limit.
    end_time : float | None
        Unix time at which the scheduler ends the attempt.
    time_limit_from : str | None
        Who said so: ``slurm`` (squeue), ``local`` (the local controller's timeout) or
        ``profile`` (the run's ``cluster.timeout_min``, when the scheduler did not answer).
    process : ProcessId | None
        The training process (pid and start time in clock ticks), for a monitor on its host.
    started : float | None
        Unix time the training process started: the attempt's wall clock starts here.
    """

    hpc_runner: str | None = None
    careamics: str | None = None
    torch: str | None = None
    lightning: str | None = None
    python: str | None = None
    executable: str | None = None
    cuda: str | None = None
    cuda_available: bool | None = None
    nvidia_driver: str | None = None
    gpus: list[GpuInfo] | None = None
    host: str | None = None
    job: str | None = None
    partition: str | None = None
    cpus: Int64 | None = None
    mem_bytes: Int64 | None = None
    time_limit_s: float | None = None
    end_time: float | None = None
    time_limit_from: str | None = None
    process: ProcessId | None = None
    started: float | None = None


class GpuSample(msgspec.Struct, frozen=True, omit_defaults=True):
    """One GPU at one moment (NVML): utilisation over the driver's last sample period and
    memory in use by every process on it."""

    index: Int64
    util_percent: float | None = None
    mem_used_bytes: Int64 | None = None
    mem_total_bytes: Int64 | None = None


class SystemValue(msgspec.Struct, frozen=True, omit_defaults=True):
    """One sample of what the node is doing, taken by rank 0's monitor thread.

    Attributes
    ----------
    gpus : list of GpuSample | None
        Each GPU visible to the job; None when there is none or NVML cannot be used.
    torch_peak_bytes : int | None
        torch's own peak allocated CUDA memory on the training's device.
    cpu_percent : float | None
        CPU use of the training process tree since the previous sample (100 = one core).
    cpu_time_s : float | None
        CPU time of the tree since the process started (user + system, reaped workers too).
    rss_bytes : int | None
        Resident memory of the tree (the training process and its data-loader workers).
    steps : int | None
        Training steps done so far (the whole training's, a resumed one included).
    steps_per_s, samples_per_s : float | None
        Training throughput since the previous sample.
    data_wait_share : float | None
        Of the time inside epochs since the previous sample, the share between a batch's end
        and the next batch's start (waiting for data), in [0, 1].
    interval_s : float | None
        Seconds since the previous sample (or since the training started).
    time : float | None
        Unix time the sample was taken. The record's ``t`` is when it was written: the
        training thread writes samples at its next step, which may be seconds later.
    """

    gpus: list[GpuSample] | None = None
    torch_peak_bytes: Int64 | None = None
    cpu_percent: float | None = None
    cpu_time_s: float | None = None
    rss_bytes: Int64 | None = None
    steps: Int64 | None = None
    steps_per_s: float | None = None
    samples_per_s: float | None = None
    data_wait_share: float | None = None
    interval_s: float | None = None
    time: float | None = None
