"""The sweep examples: examples/sweep_demo.yaml validates over the demo, and
examples/sweep_script.py runs a sweep end to end (in-process debug cluster on a tiny spec)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hpc_runner.cli import main
from tests.run_support import write_spec

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.training
def test_sweep_demo_expands_and_validates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("n2v_demo.yaml", "sweep_demo.yaml"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    script = EXAMPLES / "make_demo_data.py"
    subprocess.run([sys.executable, str(script), "--out", str(tmp_path / "data")], check=True)
    runs = tmp_path / "runs"
    assert (
        main(
            [
                "sweep",
                str(tmp_path / "sweep_demo.yaml"),
                "--dry-run",
                "--json",
                "--runs-dir",
                str(runs),
            ]
        )
        == 0
    )
    entries = json.loads(capsys.readouterr().out)
    assert [entry["run"] for entry in entries] == [
        "use_n2v2=false_lr=0.0002_epochs=12",
        "use_n2v2=false_lr=0.001_epochs=12",
        "use_n2v2=true_lr=0.0002_epochs=12",
        "use_n2v2=true_lr=0.001_epochs=12",
    ]  # epochs, listed with one value, is in the names too: a second value renames nothing
    assert all(entry["overrides"]["training.epochs"] == 12 for entry in entries)
    assert not runs.exists()


@pytest.mark.training
def test_sweep_script_runs_end_to_end(tmp_path: Path) -> None:
    base = write_spec(tmp_path / "spec", epochs=1)
    runs = tmp_path / "runs"
    command = [
        sys.executable,
        str(EXAMPLES / "sweep_script.py"),
        "--base", str(base), "--epochs", "1", "--runs-dir", str(runs), "--cluster", "debug",
    ]  # fmt: skip
    answer = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert answer.returncode == 0, answer.stderr[-2000:]
    out = answer.stdout
    assert "4 runs submitted" in out
    assert out.count(" DONE ") == 4
    best = next(line for line in out.splitlines() if line.startswith("best: "))
    assert str(runs / "n2v_script_sweep") in best and best.endswith(".ckpt")
    assert "denoised tiny.npy: (64, 64)" in out
    assert "100%" in answer.stderr  # the progress bar
