"""The monitor's GPU path through a declared NVML test double, its failure handling, the fold of
``system`` records (bounded), and old readers of a stream that holds the new record types."""

from __future__ import annotations

import functools
import operator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import msgspec
import pytest

from hpc_runner.node.callback import StatusCallback
from hpc_runner.node.gpus import Gpus
from hpc_runner.node.monitor import ResourceMonitor, Sampler, batch_size
from hpc_runner.stream import records
from hpc_runner.stream.records import ENCODER, decode_lines, is_update, make_record, to_update
from hpc_runner.stream.resources import HISTORY_POINTS, RATE_POINTS, Resources
from hpc_runner.stream.run_state import replay
from hpc_runner.stream.status import TrainingStatus, TrainUpdateType
from hpc_runner.stream.system_values import EnvironmentValue, GpuSample, SystemValue

GB = 1 << 30


class FakeNvml:
    """TEST DOUBLE of NVML (``pynvml``): this machine has no GPU, so NVML cannot answer for real
    here; ``benchmarks/gpu_check.py`` checks the real path on a GPU machine against nvidia-smi.
    Two GPUs; ``fail`` makes every device query raise, as a GPU that fell off the bus does."""

    class NVMLError(Exception):
        pass

    def __init__(self, *, init_error: bool = False) -> None:
        self.init_error = init_error
        self.fail = False
        self.shutdowns = 0
        self.util = [87, 12]

    def nvmlInit(self) -> None:
        if self.init_error:
            raise self.NVMLError("NVML Shared Library Not Found")

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlDeviceGetCount(self) -> int:
        return 2

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        if index >= 2:
            raise self.NVMLError("Invalid Argument")
        return index

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> int:
        return {"GPU-aa": 0, "GPU-bb": 1}[uuid]

    def _device(self, handle: int) -> int:
        if self.fail:
            raise self.NVMLError("GPU is lost")
        return handle

    def nvmlDeviceGetName(self, handle: int) -> bytes:
        return b"NVIDIA A100-SXM4-80GB" if self._device(handle) == 0 else b"Tesla V100"

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> Any:
        total = (80 if self._device(handle) == 0 else 16) * GB
        return SimpleNamespace(total=total, used=(handle + 1) * 3 * GB, free=0)

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> Any:
        return SimpleNamespace(gpu=self.util[self._device(handle)], memory=0)

    def nvmlSystemGetDriverVersion(self) -> str:
        return "550.54.15"


def test_gpus_follow_cuda_visible_devices() -> None:
    nvml = FakeNvml()
    gpus, reason = Gpus.open(nvml, environ={})
    assert gpus is not None and reason is None and len(gpus.handles) == 2
    info, driver = gpus.info()
    assert driver == "550.54.15"
    assert [(g.index, g.name, g.memory_total_bytes) for g in info] == [
        (0, "NVIDIA A100-SXM4-80GB", 80 * GB),
        (1, "Tesla V100", 16 * GB),
    ]
    only_second, _ = Gpus.open(nvml, environ={"CUDA_VISIBLE_DEVICES": "GPU-bb"})
    assert only_second is not None
    assert only_second.sample() == [GpuSample(0, 12.0, 6 * GB, 16 * GB)]  # index as CUDA's
    assert Gpus.open(nvml, environ={"CUDA_VISIBLE_DEVICES": ""}) == (None, None)  # no GPU job
    none, why = Gpus.open(nvml, environ={"CUDA_VISIBLE_DEVICES": "5"})
    assert none is None and why == "NVML unavailable: NVMLError: Invalid Argument"
    none, why = Gpus.open(FakeNvml(init_error=True), environ={})
    assert none is None and why is not None and "Library Not Found" in why


def _monitor(tmp_path: Path, nvml: FakeNvml, **kwargs: Any) -> ResourceMonitor:
    monitor = ResourceMonitor(StatusCallback(tmp_path / "status.jsonl"), 0.5, nvml=nvml, **kwargs)
    monitor.max_epochs, monitor.steps_per_epoch = 10, 100
    return monitor


def test_samples_carry_gpu_figures_and_a_failing_query_is_one_debug_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    nvml = FakeNvml()
    monitor = _monitor(tmp_path, nvml)
    sampler = Sampler(monitor)
    sampler._open()
    monitor.steps, monitor.samples, monitor.busy_s, monitor.wait_s = 10, 40, 0.6, 0.2
    sampler.sample()
    nvml.fail = True  # the GPU falls off the bus: the training must not notice
    sampler.sample()
    sampler.sample()
    monitor.drain()
    monitor.status.writer.close()

    run = replay(tmp_path / "status.jsonl")
    first = msgspec.json.decode((tmp_path / "status.jsonl").read_bytes().splitlines()[0])
    assert first["value"]["gpus"][0] == {
        "index": 0,
        "util_percent": 87.0,
        "mem_used_bytes": 3 * GB,
        "mem_total_bytes": 80 * GB,
    }
    assert first["value"]["data_wait_share"] == pytest.approx(0.25)
    assert first["value"]["rss_bytes"] > 0 and first["value"]["steps"] == 10
    assert [m for _, m in run.debug] == ["GPU sampling off: NVMLError: GPU is lost"]
    assert run.resources.samples == 3
    assert run.resources.latest is not None and run.resources.latest.gpus is None  # absent
    assert run.resources.gpu_mem_peak == 6 * GB and run.resources.gpu_mem_total == 16 * GB
    assert run.resources.gpu_util_mean == pytest.approx((87 + 12) / 2)


def test_the_time_limit_warning_is_written_once(tmp_path: Path) -> None:
    import time

    environment = EnvironmentValue(time_limit_s=600.0, end_time=time.time() + 300)
    monitor = _monitor(tmp_path, FakeNvml(init_error=True), environment=environment)
    sampler = Sampler(monitor)
    for steps in (0, 10, 20, 30):  # 1000 steps to go at ~10 steps per 0.05 s: ETA ~5 s
        monitor.steps = steps
        sampler.sample()
        time.sleep(0.05)
    monitor.drain()
    messages = [m for _, m in replay(tmp_path / "status.jsonl").debug]
    warnings = [m for m in messages if m.startswith("time limit warning")]
    assert warnings == []  # 1000 steps fit in 300 s at this pace
    monitor.steps_per_epoch = 100_000  # now 1,000,000 steps: far beyond the time left
    sampler.sample()
    sampler.sample()
    monitor.drain()
    warnings = [m for _, m in replay(tmp_path / "status.jsonl").debug if m.startswith("time limit")]
    assert len(warnings) == 1 and "of 10 epochs fit before the time limit" in warnings[0]
    assert "expected" in warnings[0] and "left)" in warnings[0]


def test_batch_sizes_of_tensors_tuples_and_careamics_regions() -> None:
    tensor = SimpleNamespace(shape=(8, 1, 64, 64))
    region = SimpleNamespace(data=tensor)
    assert batch_size(tensor) == batch_size((tensor, tensor)) == batch_size([region]) == 8
    assert batch_size(object()) == 0


def test_the_fold_stays_bounded_over_a_long_run() -> None:
    resources = Resources()
    for index in range(10 * HISTORY_POINTS):
        gpus = [GpuSample(0, util_percent=50.0, mem_used_bytes=GB, mem_total_bytes=8 * GB)]
        value = SystemValue(gpus=gpus, steps=index * 10, rss_bytes=index, cpu_time_s=index)
        resources.add(1000.0 + index, 0, value)
    assert len(resources.times) <= HISTORY_POINTS and len(resources.rate_points) <= RATE_POINTS
    assert resources.times[0] == 1000.0 and resources.times[-1] >= 1000.0 + 9 * HISTORY_POINTS
    assert resources.steps_per_s_recent() == pytest.approx(10.0)
    assert resources.rss_peak == 10 * HISTORY_POINTS - 1
    resources.attempt_started(1, 5000.0)
    resources.add(6000.0, 1, SystemValue(cpu_time_s=7.0, steps=3))
    assert resources.cpu_time_total == pytest.approx(10 * HISTORY_POINTS - 1 + 7.0)
    assert resources.rate_points == [(6000.0, 3)]  # the new attempt's own pace
    msgspec.msgpack.encode(resources, enc_hook=lambda obj: obj.tobytes())  # plain data


def _stream(tmp_path: Path) -> Path:
    path = tmp_path / "status.jsonl"
    lines = []
    entries: list[tuple[Any, Any]] = [
        ("environment", EnvironmentValue(python="3.11.7", cpus=4, time_limit_s=600.0)),
        (TrainUpdateType.MAX_EPOCH, 2),
        (TrainUpdateType.MAX_BATCH, 3),
        (TrainUpdateType.STATE, "TRAINING"),
        (TrainUpdateType.EPOCH, 0),
        (TrainUpdateType.BATCH, 2),
        (TrainUpdateType.LOSS, 0.25),
        ("system", SystemValue(cpu_percent=180.0, rss_bytes=GB, steps=3, steps_per_s=2.0)),
        (TrainUpdateType.VAL_LOSS, 0.5),
        (TrainUpdateType.STATE, "DONE"),
    ]
    for seq, (kind, value) in enumerate(entries):
        record = make_record(kind, value, t=float(seq), seq=seq, attempt=0)
        lines.append(ENCODER.encode(record))
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_careamics_napari_status_folds_a_stream_with_the_new_records(tmp_path: Path) -> None:
    """The seed model, fed as careamics-napari would be: ``to_update`` for update records
    only; extension records have no field there and are passed over."""
    decoded, skipped = decode_lines(_stream(tmp_path).read_bytes().splitlines())
    status = TrainingStatus()
    extensions = 0
    for record in decoded:
        if is_update(record):
            status.update(to_update(record))
        else:
            extensions += 1
    assert (status.max_epochs, status.max_batches, status.batch_idx) == (2, 3, 2)
    assert (status.loss, status.val_loss, status.state.name) == (0.25, 0.5, "DONE")
    assert extensions == 2 and not skipped


def test_an_older_reader_skips_and_counts_the_new_types(tmp_path: Path) -> None:
    """A reader built before ``environment`` and ``system`` existed: the same record module
    with those two types taken out (what the previous release decodes)."""
    seed_types = [
        cls
        for cls in (*records.RECORD_CLASSES.values(), records.EvaluationRecord)
        if cls not in (records.EnvironmentRecord, records.SystemRecord)
    ]
    old = msgspec.json.Decoder(functools.reduce(operator.or_, seed_types))
    kept, failed = [], 0
    for line in _stream(tmp_path).read_bytes().splitlines():
        try:
            kept.append(old.decode(line))
        except msgspec.ValidationError:
            failed += 1  # an old tail counts such a line as skipped and goes on
    assert failed == 2 and len(kept) == 8
    run = replay(_stream(tmp_path))
    assert run.skipped_lines == 0 and run.environment is not None
    assert run.environment.cpus == 4 and run.resources.latest is not None
