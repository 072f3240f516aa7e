"""What the node is doing while it trains: the ``system`` samples of rank 0 (node side).

:class:`ResourceMonitor` is a Lightning callback with two halves:

- in the training thread, its batch hooks only count (steps, samples, seconds inside a batch,
  seconds between a batch's end and the next batch's start) - a few additions per step;
- a daemon thread wakes every ``interval_s``, reads the counters, asks NVML
  (:mod:`hpc_runner.node.gpus`), psutil (:mod:`hpc_runner.node.process_tree`) and torch's
  allocator, and puts a :class:`~hpc_runner.stream.system_values.SystemValue` into an outbox.

The training thread writes what the outbox holds at its next hook, so the status file keeps one
writer thread and the writer needs no lock on its hot path. Sampling must never break or slow a
training: a part that fails (no NVML, a query that errors) is reported once as a debug message
and left out from then on; the thread never touches the training's CUDA state (torch's peak is
read only once CUDA is initialised), and the process does not wait for it at exit.

With a time limit (the attempt's ``environment``), each sample also checks the forecast
(:func:`hpc_runner.stream.forecast.forecast`) and the first time the training will not finish
within it, a debug message says so.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer

from hpc_runner.node.callback import StatusCallback
from hpc_runner.node.gpus import GpuQueryError, Gpus
from hpc_runner.node.process_tree import ProcessQueryError, ProcessTree
from hpc_runner.stream.forecast import forecast
from hpc_runner.stream.status import TrainUpdateType
from hpc_runner.stream.system_values import EnvironmentValue, SystemValue

#: Seconds the training waits at its end for the final sample (NVML may hang on a sick GPU).
FINAL_SAMPLE_TIMEOUT_S = 5.0

#: Samples of an attempt needed before its rate is trusted for a time-limit warning.
WARN_AFTER_SAMPLES = 2


def batch_size(batch: Any) -> int:
    """Samples in a batch: the first dimension of its first tensor (careamics' batches are
    tuples of ``ImageRegionData`` whose ``data`` is the tensor); 0 when it cannot be told."""
    first = batch[0] if isinstance(batch, tuple | list) and batch else batch
    shape = getattr(first, "shape", None)
    if shape is None:
        shape = getattr(getattr(first, "data", None), "shape", None)
    return int(shape[0]) if shape else 0


class ResourceMonitor(Callback):
    """Sample GPU, CPU, memory and throughput every ``interval_s`` on global rank 0.

    Parameters
    ----------
    status : StatusCallback
        Whose writer the samples go to, and who writes debug messages.
    interval_s : float
        Seconds between two samples (> 0).
    environment : EnvironmentValue | None
        The attempt's environment: its time limit and end time drive the warning.
    nvml : module, optional
        ``pynvml`` or a test double of it.
    """

    def __init__(
        self,
        status: StatusCallback,
        interval_s: float,
        *,
        environment: EnvironmentValue | None = None,
        nvml: Any | None = None,
    ) -> None:
        self.status = status
        self.interval_s = interval_s
        self.environment = environment
        self.nvml = nvml
        self.outbox: deque[tuple[str, Any]] = deque()
        # Counters: written by the training thread only, read by the sampler.
        self.steps = 0
        self.samples = 0
        self.busy_s = 0.0
        self.wait_s = 0.0
        self._batch_start = 0.0
        self._last_end: float | None = None
        self.max_epochs = 0
        self.steps_per_epoch = 0
        self.device: int | None = None
        self.sampler: Sampler | None = None

    # -- the training thread: counting only ----------------------------------------------

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.steps = int(trainer.global_step)
        self.max_epochs = int(trainer.max_epochs or 0)
        batches = trainer.num_training_batches
        self.steps_per_epoch = int(batches) if math.isfinite(batches) else 0
        device = pl_module.device
        self.device = (device.index or 0) if device.type == "cuda" else None
        if trainer.is_global_zero and self.interval_s > 0 and self.sampler is None:
            self.sampler = Sampler(self)
            self.sampler.start()

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._last_end = None  # the gap across a validation is no data wait

    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        now = time.perf_counter()
        if self._last_end is not None:
            self.wait_s += now - self._last_end
        self._batch_start = now
        if self.outbox:
            self.drain()

    def on_train_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        now = time.perf_counter()
        self.busy_s += now - self._batch_start
        self.steps += 1
        self.samples += batch_size(batch)
        self._last_end = now

    def on_validation_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if self.outbox:  # a long validation still reports
            self.drain()

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # Before the status callback's teardown writes the final state: the last sample
        # belongs to the training.
        self.stop(final=True)
        self.drain()

    def on_exception(
        self, trainer: Trainer, pl_module: LightningModule, exception: BaseException
    ) -> None:
        self.stop(final=False)

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self.stop(final=False)

    def stop(self, *, final: bool) -> None:
        """End the sampler thread (with one last sample if ``final``), waiting a little."""
        sampler, self.sampler = self.sampler, None
        if sampler is not None:
            sampler.finish(final=final, timeout=FINAL_SAMPLE_TIMEOUT_S)

    def drain(self) -> None:
        """Write what the sampler left in the outbox (training thread only)."""
        outbox, writer = self.outbox, self.status.writer
        while outbox:
            kind, value = outbox.popleft()
            if kind == "system":
                writer.write_extension("system", value, sync=False)
            else:
                self.status.emit(TrainUpdateType.DEBUG, value)


class Sampler(threading.Thread):
    """The monitor's background thread (see the module docstring)."""

    def __init__(self, monitor: ResourceMonitor) -> None:
        super().__init__(name="hpc-runner-monitor", daemon=True)
        self.monitor = monitor
        self.wake = threading.Event()
        self.final = False
        self.gpus: Gpus | None = None
        self.tree: ProcessTree | None = None
        self.parts_off: set[str] = set()
        self.warned = False
        self.samples_taken = 0
        self._last = (time.monotonic(), monitor.steps, 0, 0.0, 0.0)
        self._first: tuple[float, int] | None = None

    def finish(self, *, final: bool, timeout: float) -> None:
        self.final = final
        self.wake.set()
        self.join(timeout)

    def run(self) -> None:
        try:
            self._open()
            while not self.wake.wait(self.monitor.interval_s):
                self.sample()
            if self.final:
                self.sample()
        except Exception as exc:  # the last resort: report it, never take the training down
            self.note("sampling", f"resource sampling stopped: {type(exc).__name__}: {exc}")
        finally:
            if self.gpus is not None:
                self.gpus.close()

    def note(self, part: str, message: str) -> None:
        """One debug message per part that stops working; the part is left out from then on."""
        if part not in self.parts_off:
            self.parts_off.add(part)
            self.monitor.outbox.append(("debug", message))

    def _open(self) -> None:
        self.gpus, reason = Gpus.open(self.monitor.nvml)
        if reason:
            self.note("gpu", f"GPU sampling off: {reason}")
        try:
            self.tree = ProcessTree()
            self.tree.sample()  # the first CPU % needs a reference point
        except ProcessQueryError as exc:
            self.note("process", f"CPU and memory sampling off: {exc}")
            self.tree = None

    def sample(self) -> None:
        """Take one sample and put it (and a time-limit warning, once) into the outbox."""
        monitor = self.monitor
        now = time.monotonic()
        steps, samples, busy, wait = monitor.steps, monitor.samples, monitor.busy_s, monitor.wait_s
        then, steps0, samples0, busy0, wait0 = self._last
        self._last = (now, steps, samples, busy, wait)
        span = now - then
        values: dict[str, Any] = {"steps": steps, "interval_s": round(span, 3), "time": time.time()}
        if span > 0:
            values["steps_per_s"] = (steps - steps0) / span
            values["samples_per_s"] = (samples - samples0) / span
        in_epochs = (busy - busy0) + (wait - wait0)
        if in_epochs > 0:
            values["data_wait_share"] = min(1.0, max(0.0, (wait - wait0) / in_epochs))
        values.update(self._gpu_values())
        values.update(self._tree_values())
        monitor.outbox.append(("system", SystemValue(**values)))
        self.samples_taken += 1
        self._check_time_limit(steps)

    def _gpu_values(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if self.gpus is not None and "gpu" not in self.parts_off:
            try:
                values["gpus"] = self.gpus.sample()
            except GpuQueryError as exc:
                self.note("gpu", f"GPU sampling off: {exc}")
        device = self.monitor.device
        if device is not None and "torch" not in self.parts_off:
            import torch

            try:
                if torch.cuda.is_initialized():  # never initialise CUDA from this thread
                    values["torch_peak_bytes"] = int(torch.cuda.max_memory_allocated(device))
            except (RuntimeError, AssertionError) as exc:
                self.note("torch", f"torch memory sampling off: {type(exc).__name__}: {exc}")
        return values

    def _tree_values(self) -> dict[str, Any]:
        if self.tree is None or "process" in self.parts_off:
            return {}
        try:
            tree = self.tree.sample()
        except ProcessQueryError as exc:
            self.note("process", f"CPU and memory sampling off: {exc}")
            return {}
        values: dict[str, Any] = {
            "cpu_time_s": round(tree.cpu_time_s, 3),
            "rss_bytes": tree.rss_bytes,
        }
        if tree.cpu_percent is not None:
            values["cpu_percent"] = round(tree.cpu_percent, 1)
        return values

    def _check_time_limit(self, steps: int) -> None:
        """Warn once per attempt when the measured rate says the time limit comes first."""
        now = time.monotonic()
        if self._first is None:
            self._first = (now, steps)
            return
        environment = self.monitor.environment
        if self.warned or environment is None or environment.end_time is None:
            return
        if self.samples_taken < WARN_AFTER_SAMPLES or now <= self._first[0]:
            return
        rate = (steps - self._first[1]) / (now - self._first[0])
        outlook = forecast(
            done=steps,
            max_epochs=self.monitor.max_epochs,
            steps_per_epoch=self.monitor.steps_per_epoch,
            steps_per_s=rate,
            time_left_s=environment.end_time - time.time(),
            time_limit_s=environment.time_limit_s,
        )
        if outlook.warning is not None:
            self.warned = True
            assert outlook.eta_s is not None and outlook.time_left_s is not None
            self.monitor.outbox.append(
                (
                    "debug",
                    f"time limit warning: {outlook.warning} (needs ~{_minutes(outlook.eta_s)}, "
                    f"{_minutes(outlook.time_left_s)} left)",
                )
            )


def _minutes(seconds: float) -> str:
    if seconds < 120:
        return f"{max(0.0, seconds):.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
