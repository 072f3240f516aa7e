"""``hpc-runner watch`` as a user runs it: the real command, in a real pseudo-terminal."""

from __future__ import annotations

import json
import os
import re
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


def event_recorder(directory: Path) -> tuple[Path, Path]:
    """A program for ``--on-event`` that appends its arguments and the event's variables, as
    one JSON line, to a file (how a test sees what the command got)."""
    log = directory / "events.jsonl"
    script = directory / "record-event"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        "keys = ('HPC_RUNNER_RUN', 'HPC_RUNNER_PHASE', 'HPC_RUNNER_REASON', 'HPC_RUNNER_RUN_DIR')\n"
        "line = {'argv': sys.argv[1:], **{key: os.environ.get(key) for key in keys}}\n"
        f"with open({str(log)!r}, 'a') as out:\n"
        "    out.write(json.dumps(line) + '\\n')\n",
        encoding="utf-8",
    )
    script.chmod(0o755)
    return script, log


@pytest.mark.training
def test_submit_watch_in_a_terminal_ends_by_itself_with_the_psnr(tmp_path: Path) -> None:
    """A real local training under the TUI in a pseudo-terminal: no key pressed, the command
    returns 0 once the run is DONE and its job has ended, and prints the summary."""
    from tests.run_support import write_spec

    spec = write_spec(tmp_path / "spec", ground_truth=True)
    script, log = event_recorder(tmp_path)
    command = [sys.executable, "-m", "hpc_runner", "submit", str(spec), "--cluster", "local"]
    command += ["--runs-dir", "runs", "--watch", "--on-event", f"{script} 'one arg' $HOME"]
    session = TerminalSession(command, cwd=tmp_path, size=(120, 30))
    try:
        found = session.read_until(b"against tiny_clean.npy", timeout=300)
        tail = bytes(session.output)
        assert found, tail[tail.rfind(b"\x1b[?1049l") :].decode(errors="replace")
        code = session.close(timeout=60)
    finally:
        if session.process.poll() is None:
            session.close(timeout=1)
    assert code == 0
    text = session.output.decode(errors="replace")
    summary = text[text.rindex("\x1b[?1049l") :]  # after the full-screen UI has left
    lines = summary.splitlines()[1:]
    assert lines[0].startswith("DONE: tiny after ")  # phase, time
    assert re.fullmatch(
        r"  PSNR: \d+\.\d\d dB \(input \d+\.\d\d dB\) against tiny_clean\.npy", lines[1]
    )
    assert lines[2].startswith("  model: ") and ".ckpt" in lines[2]
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert events == [
        {
            "argv": ["one arg", "$HOME"],  # split once, never expanded by a shell
            "HPC_RUNNER_RUN": "tiny",
            "HPC_RUNNER_PHASE": "DONE",
            "HPC_RUNNER_REASON": "",
            "HPC_RUNNER_RUN_DIR": str((tmp_path / "runs" / "tiny").resolve()),
        }
    ]


def test_logs_f_follows_the_job_output_as_it_grows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``hpc-runner logs RUN -f`` prints the last lines, then each appended one (made safe for
    the terminal), until ctrl-c."""
    import select
    import signal

    from tests.tui_support import append_line, write_job

    monkeypatch.chdir(tmp_path)
    run_dir = Path("runs") / "care"
    FakeTraining(run_dir, job="8600").begin(2, 5)
    write_job(run_dir, "8600", folder="submitit")
    (run_dir / "submitit").mkdir()
    out = run_dir / "submitit" / "8600_0_log.out"
    out.write_text("".join(f"early {n}\n" for n in range(50)))
    command = [sys.executable, "-m", "hpc_runner", "logs", "runs/care", "-f", "-n", "3"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen = bytearray()

    def read_until(needle: bytes) -> bool:
        for _ in range(600):  # up to a minute, 0.1 s at a time
            if needle in seen:
                return True
            if select.select([process.stdout], [], [], 0.1)[0]:
                seen.extend(os.read(process.stdout.fileno(), 1 << 16))  # type: ignore[union-attr]
        return needle in seen

    try:
        assert read_until(b"early 49\n"), seen
        assert b"early 47\n" in seen and b"early 46\n" not in seen  # -n 3: the last three
        append_line(out, b"epoch 1 \x1b]52;c;cHduZWQ=\x07done\nhalf")
        assert read_until(b"done\n"), seen
        assert b"\x1b" not in seen and b"\x07" not in seen  # no OSC 52 reaches the terminal
        assert b"half" not in seen  # an unfinished line waits for its end
        append_line(out, b" a line\n")
        assert read_until(b"half a line\n"), seen
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(30)
    assert code == 130  # ctrl-c, as any follower
    assert seen.count(b"==> ") == 1  # one header for the one log
