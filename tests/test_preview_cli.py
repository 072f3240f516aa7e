"""``hpc-runner preview RUN``: in a real pseudo-terminal that answers no graphics query it draws
half-blocks; into a pipe it prints the path only; wrong epochs and runs say what exists; and
``status --summary`` ranks by the last preview's PSNR when that is what every run has."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from hpc_runner.stream.previews import preview_relpath
from hpc_runner.stream.records import PreviewValue
from hpc_runner.stream.status import TrainingState, TrainUpdate, TrainUpdateType
from hpc_runner.stream.writer import StatusWriter
from tests.run_support import cli, status_json
from tests.test_preview_tui import PSNRS, write_run_with_previews
from tests.tui_support import T0, FakeTraining, losses


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "runs" / "n2v_previews"
    write_run_with_previews(run)
    return run


def in_terminal(*args: str, stdin_is_terminal: bool = True) -> tuple[int, str]:
    """Run ``hpc-runner ARGS`` on a fresh 100x40 pseudo-terminal nobody answers; exit code and
    everything it wrote there."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
    env = {key: value for key, value in os.environ.items() if key != "HPC_RUNNER_IMAGES"}
    process = subprocess.Popen(
        [sys.executable, "-m", "hpc_runner", *args],
        stdin=slave if stdin_is_terminal else subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        env={**env, "TERM": "xterm-256color"},
        start_new_session=True,
    )
    os.close(slave)
    output = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 1.0)
        if not ready:
            if process.poll() is not None:
                break
            continue
        try:
            chunk = os.read(master, 1 << 16)
        except OSError:  # EIO: every end of the terminal closed
            break
        if not chunk:
            break
        output += chunk
    os.close(master)
    return process.wait(timeout=60), output.decode("utf-8", errors="replace")


def test_preview_draws_half_blocks_where_the_terminal_answers_no_graphics_query(
    run_dir: Path,
) -> None:
    code, output = in_terminal("preview", str(run_dir))
    assert code == 0, output
    assert "Traceback" not in output and "Failed" not in output
    assert output.count("\u2580") > 500  # upper half blocks: the picture
    assert "n2v_previews: epoch 6, PSNR 23.75 dB (the crop)" in output
    assert str(run_dir / "previews" / "epoch_0006.png") in output


def test_without_a_terminal_to_ask_it_names_the_picture(run_dir: Path) -> None:
    code, output = in_terminal("preview", str(run_dir), "--epoch", "2", stdin_is_terminal=False)
    assert code == 0, output
    assert "no picture: stdin is not a terminal" in output and "Traceback" not in output
    assert str(run_dir / "previews" / "epoch_0002.png") in output


def test_into_a_pipe_only_the_path(run_dir: Path) -> None:
    answer = cli("preview", str(run_dir))
    assert answer.returncode == 0 and answer.stderr == ""
    assert answer.stdout == f"{run_dir / 'previews' / 'epoch_0006.png'}\n"
    assert cli("preview", str(run_dir), "--epoch", "4").stdout.strip().endswith("epoch_0004.png")
    wrong = cli("preview", str(run_dir), "--epoch", "5")
    assert wrong.returncode == 2
    epochs = ", ".join(str(epoch) for epoch in PSNRS)
    assert f"no preview of epoch 5 (previews of epochs {epochs})" in wrong.stderr


def test_a_run_without_previews_says_so(tmp_path: Path) -> None:
    run = tmp_path / "plain"
    FakeTraining(run, start=T0).begin(2, 4).epoch(0, losses(4)).finish()
    answer = cli("preview", str(run))
    assert answer.returncode == 1
    assert "plain: no preview yet; is `preview: false` set?" in answer.stderr


def _previewed_run(run_dir: Path, psnrs: list[float]) -> None:
    """A DONE n2v run whose previews measured ``psnrs`` (no whole-image evaluation)."""
    run_dir.mkdir(parents=True)
    with StatusWriter(run_dir / "status.jsonl") as writer:
        writer.write(TrainUpdate(TrainUpdateType.STATE, TrainingState.TRAINING))
        for epoch, value in enumerate(psnrs, start=1):
            writer.write(TrainUpdate(TrainUpdateType.VAL_LOSS, 1.0 / epoch))
            writer.write_extension("preview", PreviewValue(preview_relpath(epoch), epoch, value))
        writer.write(TrainUpdate(TrainUpdateType.STATE, TrainingState.DONE))
    (run_dir / "run.yaml").write_text("careamics:\n  algorithm_config:\n    algorithm: n2v\n")


def test_summary_ranks_by_the_last_preview_psnr_when_every_run_has_one(tmp_path: Path) -> None:
    _previewed_run(tmp_path / "a", [18.0, 26.0, 22.5])  # the best curve, but its last is lower
    _previewed_run(tmp_path / "b", [17.0, 20.0, 24.0])
    answer = cli("status", str(tmp_path), "--summary")
    assert answer.returncode == 0, answer.stderr
    assert "ranked by PSNR of the last preview's crop against the ground truth" in answer.stdout
    assert "best: b (preview PSNR 24.00 dB)" in answer.stdout
    entries = status_json(tmp_path)
    assert entries["a"]["psnr_history"] == [[1, 18.0], [2, 26.0], [3, 22.5]]
    assert entries["b"]["preview"] == str(tmp_path / "b" / "previews" / "epoch_0003.png")
