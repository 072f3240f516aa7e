"""The README's main job, as written: the n2v demo on a workstation without SLURM (`auto`)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.run_support import cli, status_json
from tests.test_preview_node import assert_demo_previews

pytestmark = pytest.mark.training

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_demo_denoises_locally_when_there_is_no_cluster(tmp_path: Path, no_slurm_path: str) -> None:
    examples = tmp_path / "examples"
    examples.mkdir()
    shutil.copy(EXAMPLES / "n2v_demo.yaml", examples)
    data = subprocess.run(
        [sys.executable, str(EXAMPLES / "make_demo_data.py"), "--out", str(examples / "data")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert data.returncode == 0, data.stderr
    runs = tmp_path / "runs"
    answer = cli(
        "submit",
        str(examples / "n2v_demo.yaml"),
        "--runs-dir",
        str(runs),
        "--watch",
        path=no_slurm_path,
        timeout=600,
    )
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.splitlines()[1].endswith("(local)")  # auto: no sbatch, a local process
    assert any(line.startswith("DONE  epoch 30/30") for line in answer.stdout.splitlines())
    psnr = [float(v) for v in re.findall(r"PSNR \w+ denoising: ([\d.]+) dB", answer.stdout)]
    assert len(psnr) == 2 and psnr[1] > psnr[0] + 5  # measured here: 17.15 -> 25.56 dB
    entry = status_json(runs)["n2v_demo"]
    assert entry["state"] == "DONE" and entry["model"]["checkpoint"].endswith("_last.ckpt")
    assert_demo_previews(runs / "n2v_demo", entry)  # 10 pictures, PSNR rising
