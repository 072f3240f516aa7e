"""The GPUs visible to the job, through NVML (``nvidia-ml-py``): names, memory, utilisation.

NVML is what ``nvidia-smi`` reads; it answers in microseconds, needs no CUDA context and does not
touch the training's device state, so it can be asked from a background thread. Which GPUs are
the job's follows ``CUDA_VISIBLE_DEVICES`` as CUDA reads it: indices (SLURM sets these; within a
device cgroup NVML numbers the same devices the same way) or UUIDs (``GPU-...``); unset means
every GPU of the machine, empty means none. ``index`` in what is returned is the position in
that list, the number torch uses (``cuda:0`` ...).

Nothing here raises for a machine without a GPU, driver or ``nvidia-ml-py``: :meth:`Gpus.open`
returns None with the reason, and every query that fails raises :class:`GpuQueryError`, which
the monitor turns into one debug message and an absent field.
"""

from __future__ import annotations

import contextlib
import os
from types import ModuleType
from typing import Any

from hpc_runner.stream.system_values import GpuInfo, GpuSample


class GpuQueryError(RuntimeError):
    """An NVML query failed (the GPU fell off the bus, a permission, a driver mismatch)."""


def load_nvml() -> ModuleType:
    """The ``pynvml`` module of ``nvidia-ml-py`` (ImportError without it)."""
    import pynvml

    return pynvml


def visible_devices(environ: dict[str, str] | None = None) -> list[str] | None:
    """``CUDA_VISIBLE_DEVICES`` as a list (None: unset, every GPU; []: none)."""
    value = (environ if environ is not None else os.environ).get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


class Gpus:
    """Open NVML handles of the job's GPUs.

    Parameters
    ----------
    nvml : module
        ``pynvml`` or a test double with the same functions and ``NVMLError``.
    handles : list
        NVML device handles, in CUDA's order.
    """

    def __init__(self, nvml: Any, handles: list[Any]) -> None:
        self.nvml = nvml
        self.handles = handles

    @classmethod
    def open(
        cls, nvml: Any | None = None, environ: dict[str, str] | None = None
    ) -> tuple[Gpus | None, str | None]:
        """The job's GPUs, or (None, why not); (None, None) when the job has no GPU at all."""
        devices = visible_devices(environ)
        if devices == []:
            return None, None
        try:
            nvml = nvml if nvml is not None else load_nvml()
        except ImportError:
            return None, "nvidia-ml-py is not installed (pip install nvidia-ml-py)"
        try:
            nvml.nvmlInit()
            if devices is None:
                handles = [
                    nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())
                ]
            else:
                handles = [_handle(nvml, device) for device in devices]
        except (nvml.NVMLError, OSError, ValueError) as exc:
            return None, f"NVML unavailable: {_describe(exc)}"
        if not handles:
            return None, None
        return cls(nvml, handles), None

    def info(self) -> tuple[list[GpuInfo], str | None]:
        """Name and memory of each GPU, and the driver version."""
        nvml = self.nvml
        try:
            gpus = [
                GpuInfo(
                    index=index,
                    name=_text(nvml.nvmlDeviceGetName(handle)),
                    memory_total_bytes=int(nvml.nvmlDeviceGetMemoryInfo(handle).total),
                )
                for index, handle in enumerate(self.handles)
            ]
            driver = _text(nvml.nvmlSystemGetDriverVersion())
        except (nvml.NVMLError, OSError, ValueError) as exc:
            raise GpuQueryError(_describe(exc)) from exc
        return gpus, driver

    def sample(self) -> list[GpuSample]:
        """Utilisation and memory of each GPU now."""
        nvml = self.nvml
        samples = []
        try:
            for index, handle in enumerate(self.handles):
                memory = nvml.nvmlDeviceGetMemoryInfo(handle)
                util = nvml.nvmlDeviceGetUtilizationRates(handle)
                samples.append(
                    GpuSample(
                        index=index,
                        util_percent=float(util.gpu),
                        mem_used_bytes=int(memory.used),
                        mem_total_bytes=int(memory.total),
                    )
                )
        except (nvml.NVMLError, OSError, ValueError) as exc:
            raise GpuQueryError(_describe(exc)) from exc
        return samples

    def close(self) -> None:
        """Release NVML (it counts its initialisations)."""
        with contextlib.suppress(self.nvml.NVMLError, OSError):  # best effort: the process ends
            self.nvml.nvmlShutdown()


def _handle(nvml: Any, device: str) -> Any:
    if device.isdigit():
        return nvml.nvmlDeviceGetHandleByIndex(int(device))
    return nvml.nvmlDeviceGetHandleByUUID(device)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
