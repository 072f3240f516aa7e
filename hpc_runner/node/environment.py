"""What an attempt runs with and was granted: the ``environment`` record (node side).

Written at the start of every attempt, before the data is read, so that even a run that
crashes at once tells which versions, GPUs and limits it had. The scheduler is asked at most
once, read-only and with a timeout (``squeue`` for the time limit and end time); the rest comes
from the environment SLURM or the local controller sets, the installed packages' metadata,
NVML and psutil. Anything that cannot be found is left out, never guessed.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import time
from importlib import metadata
from typing import Any

from hpc_runner.node.gpus import GpuQueryError, Gpus
from hpc_runner.stream.processes import this_process
from hpc_runner.stream.system_values import EnvironmentValue, GpuInfo

#: Seconds ``squeue`` may take before the time limit is given up on (a busy controller).
SQUEUE_TIMEOUT_S = 5.0

_UNKNOWN_TIMES = {"", "N/A", "NONE", "UNKNOWN", "INVALID", "NOT_SET", "UNLIMITED"}


def package_version(name: str) -> str | None:
    """The installed version of a distribution, without importing it."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def parse_slurm_duration(text: str) -> float | None:
    """Seconds of a SLURM time (``[D-]HH:MM:SS``, ``MM:SS``, ``MM``); None for UNLIMITED etc."""
    text = text.strip()
    if text.upper() in _UNKNOWN_TIMES:
        return None
    days = 0
    if "-" in text:
        day_text, text = text.split("-", 1)
        if not day_text.isdigit():
            return None
        days = int(day_text)
    parts = text.split(":")
    if not all(part.isdigit() for part in parts) or not 1 <= len(parts) <= 3:
        return None
    numbers = [int(part) for part in parts]
    if len(numbers) == 1:  # minutes, or with a day part: hours
        seconds = numbers[0] * (3600 if days else 60)
    elif len(numbers) == 2:  # MM:SS, or with a day part: HH:MM
        seconds = numbers[0] * 3600 + numbers[1] * 60 if days else numbers[0] * 60 + numbers[1]
    else:
        seconds = numbers[0] * 3600 + numbers[1] * 60 + numbers[2]
    return float(days * 86400 + seconds)


def parse_slurm_time(text: str) -> float | None:
    """Unix time of a SLURM timestamp (``2024-05-01T12:34:56``, local time); None if unknown."""
    text = text.strip()
    if text.upper() in _UNKNOWN_TIMES:
        return None
    try:
        return time.mktime(time.strptime(text, "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None


def slurm_time_limit(
    job_id: str, timeout: float = SQUEUE_TIMEOUT_S
) -> tuple[float | None, float | None]:
    """(time limit in seconds, end time) of a SLURM job from one ``squeue`` call."""
    try:
        answer = subprocess.run(
            ["squeue", "-h", "-j", job_id, "-o", "%l|%e"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None, None
    line = answer.stdout.strip().splitlines()[0] if answer.returncode == 0 else ""
    limit, _, end = line.partition("|")
    return parse_slurm_duration(limit), parse_slurm_time(end)


def _int_env(environ: dict[str, str], name: str) -> int | None:
    value = environ.get(name, "").strip()
    return int(value) if value.isdigit() else None


def granted_memory(environ: dict[str, str], cpus: int | None) -> int | None:
    """Bytes of memory SLURM granted (``--mem`` per node, or ``--mem-per-cpu`` times CPUs)."""
    per_node = _int_env(environ, "SLURM_MEM_PER_NODE")
    if per_node:
        return per_node << 20  # SLURM counts MB of 1024 KB
    per_cpu = _int_env(environ, "SLURM_MEM_PER_CPU")
    if per_cpu and cpus:
        return (per_cpu * cpus) << 20
    return None


def slurm_cpus(environ: dict[str, str]) -> int | None:
    """CPUs granted to this task (``--cpus-per-task``, else the job's CPUs on this node)."""
    cpus = _int_env(environ, "SLURM_CPUS_PER_TASK")
    if cpus:
        return cpus
    return _int_env(environ, "SLURM_CPUS_ON_NODE")


def scheduler_facts(
    environ: dict[str, str], profile: Any | None, started: float | None
) -> dict[str, Any]:
    """Partition, CPUs, memory, time limit and end time, as far as the scheduler tells."""
    facts: dict[str, Any] = {}
    slurm_job = environ.get("SLURM_JOB_ID")
    if slurm_job:
        facts["partition"] = environ.get("SLURM_JOB_PARTITION") or None
        facts["cpus"] = slurm_cpus(environ)
        facts["mem_bytes"] = granted_memory(environ, facts["cpus"])
        end = environ.get("SLURM_JOB_END_TIME", "")  # set by newer SLURMs: no query needed
        limit: float | None
        end_time: float | None
        if end.isdigit() and _int_env(environ, "SLURM_JOB_START_TIME"):
            start = int(environ["SLURM_JOB_START_TIME"])
            limit, end_time = float(int(end) - start), float(end)
        else:
            limit, end_time = slurm_time_limit(slurm_job)
        if limit is not None:
            facts.update(time_limit_s=limit, end_time=end_time, time_limit_from="slurm")
    else:
        facts["cpus"] = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        mem_gb = getattr(profile, "mem_gb", None)
        facts["mem_bytes"] = int(mem_gb * (1 << 30)) if mem_gb else None
        local = _int_env(environ, "SUBMITIT_LOCAL_TIMEOUT_S")
        if local:  # the local controller's own timeout, counted from the task's start
            facts.update(time_limit_s=float(local), time_limit_from="local")
    if "time_limit_s" not in facts and profile is not None and _runs_under_a_limit(environ):
        facts.update(time_limit_s=float(profile.timeout_min) * 60, time_limit_from="profile")
    if facts.get("time_limit_s") and not facts.get("end_time") and started is not None:
        facts["end_time"] = started + facts["time_limit_s"]
    return facts


def _runs_under_a_limit(environ: dict[str, str]) -> bool:
    """SLURM and the local executor enforce the profile's limit; a debug run or the Python API
    has none."""
    return bool(environ.get("SLURM_JOB_ID")) or environ.get("SUBMITIT_EXECUTOR") == "local"


def torch_facts() -> dict[str, Any]:
    """CUDA as torch sees it (imports torch: the training does anyway)."""
    try:
        import torch
    except ImportError:
        return {}
    return {"cuda": torch.version.cuda, "cuda_available": bool(torch.cuda.is_available())}


def gpu_facts(nvml: Any | None = None) -> tuple[dict[str, Any], str | None]:
    """GPU names and memory and the driver version (NVML), and a note when NVML failed."""
    gpus, note = Gpus.open(nvml)
    if gpus is None:
        return {}, note
    try:
        info, driver = gpus.info()
    except GpuQueryError as exc:
        return {}, f"GPU details unavailable: {exc}"
    finally:
        gpus.close()
    return {"gpus": info, "nvidia_driver": driver}, None


def process_start() -> float | None:
    """Unix time this process started."""
    try:
        import psutil

        return float(psutil.Process().create_time())
    except (ImportError, OSError):
        return None


def collect_environment(
    *, job: str | None = None, profile: Any | None = None, nvml: Any | None = None
) -> tuple[EnvironmentValue, list[str]]:
    """The ``environment`` value of this attempt, and notes on what could not be found.

    Parameters
    ----------
    job : str | None
        The scheduler's job id (``1234_7``), as the status records carry it.
    profile : ClusterProfile | None
        The run's resolved profile: a local run's memory and, where the scheduler does not
        answer, the time limit come from it.
    nvml : module, optional
        ``pynvml`` or a test double.
    """
    environ = dict(os.environ)
    started = process_start()
    gpu, note = gpu_facts(nvml)
    facts: dict[str, Any] = {
        "hpc_runner": package_version("hpc-runner"),
        "careamics": package_version("careamics"),
        "torch": package_version("torch"),
        "lightning": package_version("lightning"),
        "python": platform.python_version(),
        "executable": sys.executable,
        **torch_facts(),
        **gpu,
        "host": socket.gethostname(),
        "job": job,
        **scheduler_facts(environ, profile, started),
        "process": this_process(),
        "started": started,
    }
    if not gpu and facts.get("cuda_available"):
        facts["gpus"] = torch_gpus()
    return EnvironmentValue(**facts), [note] if note else []


def torch_gpus() -> list[GpuInfo] | None:
    """GPU names and memory from torch, when NVML cannot tell."""
    import torch

    try:
        return [
            GpuInfo(
                index=index,
                name=torch.cuda.get_device_name(index),
                memory_total_bytes=int(torch.cuda.get_device_properties(index).total_memory),
            )
            for index in range(torch.cuda.device_count())
        ]
    except (RuntimeError, AssertionError):
        return None


def record_environment(writer: Any, run_dir: Any, job: str | None) -> EnvironmentValue:
    """Collect this attempt's environment and write it (with any notes as debug messages).

    The run's profile is read from its ``run.yaml`` for a local run's memory and a fallback
    time limit; a broken ``run.yaml`` is the job's to report, so here it only means "no profile".
    """
    from hpc_runner.spec.errors import SpecError
    from hpc_runner.spec.job import load_run_spec
    from hpc_runner.stream.status import TrainUpdate, TrainUpdateType

    try:
        profile = load_run_spec(run_dir).profile
    except SpecError:
        profile = None
    value, notes = collect_environment(job=job, profile=profile)
    writer.write_extension("environment", value)
    for note in notes:
        writer.write(TrainUpdate(TrainUpdateType.DEBUG, note))
    return value
