"""Helpers for tests that submit real (tiny) trainings: spec files, waiting on status files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import yaml

from hpc_runner.stream.run_state import RunState, replay
from hpc_runner.stream.runs import STATUS_FILE

T = TypeVar("T")


def write_spec(
    directory: Path,
    name: str = "tiny",
    *,
    epochs: int = 2,
    profile: str = "local",
    ground_truth: bool = False,
    **cluster: Any,
) -> Path:
    """A short-form N2V spec on a 64x64 image (7 batches per epoch; ~0.1 s per epoch)."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    clean = np.tile(np.linspace(0, 1, 64, dtype=np.float32), (64, 1))
    noisy = (clean + rng.normal(0, 0.2, clean.shape)).astype(np.float32)
    np.save(directory / f"{name}.npy", noisy)
    spec: dict[str, Any] = {
        "name": name,
        "training": {
            "algorithm": "n2v",
            "axes": "YX",
            "patch_size": [16, 16],
            "batch_size": 2,
            "epochs": epochs,
            "n_val_patches": 2,
            "masked_pixel_percentage": 5,
            "roi_size": 5,
            "seed": 42,
            "num_workers": 0,
        },
        "data": {"train": f"{name}.npy"},
        "cluster": {"profile": profile, **cluster},
    }
    if ground_truth:
        np.save(directory / f"{name}_clean.npy", clean)
        spec["evaluate"] = {"ground_truth": f"{name}_clean.npy"}
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def wait_for(
    probe: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.25
) -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def run_state(run_dir: Path) -> RunState:
    return replay(run_dir / STATUS_FILE)


def wait_state(
    run_dir: Path, predicate: Callable[[RunState], bool], *, timeout: float, what: str
) -> RunState:
    """Replay the run's status file until ``predicate`` holds."""

    def probe() -> RunState | None:
        run = run_state(run_dir)
        return run if predicate(run) else None

    return wait_for(probe, timeout=timeout, what=f"{run_dir.name}: {what}")


def cli(
    *args: str, timeout: float = 120, path: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``hpc-runner ARGS`` in a fresh interpreter, as a user would (``path``: its PATH)."""
    env = dict(os.environ, PATH=path) if path is not None else None
    return subprocess.run(
        [sys.executable, "-m", "hpc_runner", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
    )


def status_json(root: Path) -> dict[str, dict[str, Any]]:
    """``hpc-runner status ROOT --json`` by run label."""
    answer = cli("status", str(root), "--json", timeout=60)
    assert answer.returncode == 0, answer.stderr
    return {entry["run"]: entry for entry in json.loads(answer.stdout)}


def debug_messages(run: RunState) -> list[str]:
    return [message for _, message in run.debug]
