"""``hpc-runner watch`` as a user runs it: the real command, in a real pseudo-terminal."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hpc_runner.cli import main
from tests.tui_support import FakeTraining, TerminalSession, write_fixture_runs

pytestmark = pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")


def test_a_missing_directory_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["watch", str(tmp_path / "nowhere")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("hpc-runner watch: ") and "nowhere: no such directory" in error
    assert "Traceback" not in error


@pytest.mark.parametrize("poll", ["0", "-1", "soon", "nan"])
def test_poll_must_be_a_positive_number_of_seconds(
    tmp_path: Path, poll: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["watch", str(tmp_path), "--poll", poll])
    assert exit_info.value.code == 2
    assert "positive number of seconds" in capsys.readouterr().err


@pytest.mark.parametrize("poll", [None, "0.2"])
def test_watch_runs_in_a_terminal_follows_a_new_run_and_quits(
    tmp_path: Path, poll: str | None
) -> None:
    write_fixture_runs(tmp_path / "runs")
    command = [sys.executable, "-m", "hpc_runner", "watch", "runs"]
    if poll:
        command += ["--poll", poll]
    session = TerminalSession(command, cwd=tmp_path, size=(140, 30))
    try:
        assert session.read_until(b"care_live"), session.output[-2000:]
        assert session.read_until(b"polling every 0.2 s" if poll else b"inotify")
        FakeTraining(tmp_path / "runs" / "arrived_later").begin(2, 3)
        assert session.read_until(b"arrived_later")
        session.send(b"q")
    finally:
        code = session.close()
    assert code == 0


def test_watch_help_names_the_poll_option() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hpc_runner", "watch", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert "--poll SECONDS" in result.stdout and "network filesystems" in result.stdout
