"""Real tiny trainings on the CPU with the resource monitor: the records they write, what
``status`` makes of them, losses untouched by sampling, the ETA of a real run, and the
time-limit warning of a real local job with a short limit and a slow (long) training."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml

from hpc_runner.node.job import NodeJob
from hpc_runner.node.training import train_with_status
from hpc_runner.stream.records import BatchRecord, SystemRecord, decode_lines
from hpc_runner.stream.resources import RATE_SHARE
from hpc_runner.stream.run_state import RunState, replay
from hpc_runner.stream.runs import STATUS_FILE
from hpc_runner.stream.status import TrainingState
from hpc_runner.watch.resources import run_forecast
from tests.run_support import cli, debug_messages, status_json, wait_for, write_spec
from tests.tiny import tiny_config, tiny_image

pytestmark = pytest.mark.training


def monitored_spec(directory: Path, interval_s: float, **kwargs: Any) -> Path:
    """A tiny spec (tests/run_support.py) with ``monitor: {interval_s: ...}``."""
    path = write_spec(directory, **kwargs)
    document = yaml.safe_load(path.read_text())
    document["monitor"] = {"interval_s": interval_s}
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def lines(run_dir: Path) -> list[dict[str, Any]]:
    return [msgspec.json.decode(line) for line in (run_dir / STATUS_FILE).read_bytes().splitlines()]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real training of 24 epochs, sampled every 0.1 s, run by the node entry in-process
    (on an idle machine it trains in ~3 s: the ETA test needs samples from its first fifth)."""
    from hpc_runner.control.submit import prepare_run
    from hpc_runner.spec.job import load_job_spec

    tmp = tmp_path_factory.mktemp("monitored")
    spec = load_job_spec(monitored_spec(tmp / "spec", 0.1, epochs=24))
    run_dir = prepare_run(spec, tmp / "runs")
    assert NodeJob(str(run_dir))()["state"] == "DONE"
    return run_dir


def test_environment_and_system_records_of_a_real_training(finished_run: Path) -> None:
    records = lines(finished_run)
    (environment,) = [r["value"] for r in records if r["type"] == "environment"]
    assert environment["process"]["pid"] == os.getpid()  # trained in this process
    assert environment["python"] and environment["torch"] and environment["careamics"]
    assert environment["cpus"] >= 1 and environment["cuda_available"] is False
    assert "time_limit_s" not in environment  # in-process: no scheduler, no limit
    samples = [r["value"] for r in records if r["type"] == "system"]
    assert len(samples) >= 2
    for sample in samples:
        assert sample.get("cpu_percent", 0.0) >= 0.0 and sample["rss_bytes"] > 0
        assert 0.0 <= sample.get("data_wait_share", 0.0) <= 1.0
    assert any(s.get("steps_per_s", 0) > 0 for s in samples)
    assert any(s.get("samples_per_s", 0) > 0 for s in samples)
    assert any("data_wait_share" in s for s in samples) and samples[-1]["steps"] == 168
    run = replay(finished_run / STATUS_FILE)
    gpu_notes = [m for m in debug_messages(run) if m.startswith("GPU sampling off")]
    assert len(gpu_notes) <= 1  # no GPU here: said at most once, and training went on
    first = debug_messages(run)[0]  # the environment record says the rest (no "gpus -")
    assert first.startswith("attempt 0 starting on host ") and "gpus" not in first
    assert run.status.state is TrainingState.DONE and run.skipped_lines == 0


def test_status_shows_environment_resources_and_efficiency(finished_run: Path) -> None:
    runs = finished_run.parent
    entry = status_json(runs)["tiny"]
    assert entry["environment"]["host"] == entry["host"]
    resources = entry["resources"]
    assert resources["latest"]["rss_bytes"] > 0 and resources["peaks"]["rss_bytes"] > 0
    assert resources["samples"] >= 2 and entry["time_limit_warning"] is None
    efficiency = entry["efficiency"]
    assert efficiency["wall_s"] > 0 and efficiency["cpu_efficiency"] > 0
    assert {f["key"] for f in efficiency["findings"]} >= {"wall_time", "cpu", "memory"}
    table = cli("status", str(runs))
    assert table.returncode == 0 and "GPU%" in table.stdout and "MEM" in table.stdout
    summary = cli("status", str(runs), "--summary")
    assert summary.returncode == 0, summary.stderr
    assert "efficiency of the run:" in summary.stdout
    assert "of 2 CPUs busy" in summary.stdout or "CPUs busy" in summary.stdout


def test_eta_of_a_real_training_within_20_percent(finished_run: Path) -> None:
    """Replayed as a reader saw it at moments past 20 % of the training where the training was
    steady: its pace over the window the rate is measured on (the last half of the training so
    far) and over the rest of it agree within 10 % (on a machine shared with other jobs the
    pace of a tiny training is not always steady, and no ETA can foresee a neighbour's job).
    Every such moment must be within 20 %."""
    raw = (finished_run / STATUS_FILE).read_bytes().splitlines()
    records, _ = decode_lines(raw)
    samples = [r for r in records if isinstance(r, SystemRecord)]
    start = samples[0].value.time
    batches = [r.t for r in records if isinstance(r, BatchRecord)]
    end, total = batches[-1], len(batches)
    assert start is not None and end > start
    checked = []
    for share in [0.25 + 0.05 * i for i in range(13)]:
        now = start + share * (end - start)
        done = sum(1 for t in batches if t <= now)
        window = RATE_SHARE * (now - start)
        before = sum(1 for t in batches if now - window < t <= now) / window
        after = (total - done) / (end - now)
        if abs(before - after) > 0.1 * after:
            continue  # not steady here
        if sum(1 for sample in samples if (sample.value.time or sample.t) <= now) < 2:
            continue  # no pace measured yet: a reader has no ETA either
        run = RunState()
        run.apply([r for r in records if (getattr(r.value, "time", None) or r.t) <= now])
        outlook = run_forecast(run, now)
        assert outlook.eta_s is not None
        checked.append((share, abs(outlook.eta_s - (end - now)) / (end - now)))
    if not checked:
        pytest.skip("the machine was too busy for any steady stretch of this training")
    assert all(error <= 0.2 for _, error in checked), checked


def test_sampling_on_or_off_gives_the_same_losses(tmp_path: Path) -> None:
    losses = []
    for interval, name in ((0.05, "on"), (0.0, "off")):
        path = tmp_path / name / STATUS_FILE
        train_with_status(
            path,
            config=tiny_config(num_epochs=2),
            train_data=tiny_image(),
            monitor_interval_s=interval,
        )
        run = replay(path)
        assert (run.resources.samples > 0) == (interval > 0)
        losses.append(list(run.losses))
    assert len(losses[0]) == 14 and all(math.isfinite(v) for v in losses[0])
    assert losses[0] == losses[1]


def test_a_local_run_with_a_short_limit_warns_it_will_not_finish(tmp_path: Path) -> None:
    """20000 epochs of the tiny model under a 2-minute local limit: slow by length, honestly."""
    from hpc_runner.control.submit import submit_specs
    from hpc_runner.spec.job import load_job_spec

    spec = load_job_spec(monitored_spec(tmp_path / "spec", 0.2, epochs=20000, timeout_min=2))
    (submitted,) = submit_specs([spec], tmp_path / "runs", cluster="local")
    runs = tmp_path / "runs"
    try:

        def warned() -> dict[str, Any] | None:
            entry = status_json(runs)["tiny"]
            return entry if entry["time_limit_warning"] else None

        entry = wait_for(warned, timeout=120, what="the time-limit warning", interval=1.0)
        assert entry["phase"] == "TRAINING"
        assert "of 20000 epochs fit before the time limit" in entry["time_limit_warning"]
        assert entry["environment"]["time_limit_s"] == 120
        assert entry["environment"]["time_limit_from"] == "local"
        assert entry["resources"]["eta_s"] > entry["resources"]["time_left_s"]
        table = cli("status", str(runs)).stdout
        assert "tiny: time limit: " in table and "epochs fit before the time limit" in table
        noted = wait_for(
            lambda: [
                m
                for m in debug_messages(replay(submitted.run_dir / STATUS_FILE))
                if m.startswith("time limit warning")
            ],
            timeout=30,
            what="the warning in the status file",
        )
        assert len(noted) == 1 and "requeue" in noted[0]
    finally:
        cli("cancel", str(submitted.run_dir))
