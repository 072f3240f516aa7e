"""What every command prints is safe on a terminal, whatever the run directories hold (issue 10).

A run directory is written by a training or a user; an admin may list it as root. Its name, an
exception message, a debug message, a model path, a job log, a profile's description and a
value quoted in a spec error all reach the terminal. Raw, an ESC starts a CSI/OSC sequence
(recolour, retitle, rewrite the clipboard with OSC 52, hide text), a carriage return overwrites
a line, C1 characters act as CSI on some terminals, a bidi override reorders what follows.

The check is on the decoded text: no character below U+0020 other than newline and tab, none in
U+007F-U+009F, no bidi controls and no lone surrogates. (In UTF-8 bytes, 0x80-0x9F also occur as
continuation bytes of ordinary letters such as 名, so a byte-level check of that range would
forbid every non-ASCII name; bytes below 0x20 and 0x7F are checked on the bytes as well.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hpc_runner.control.jobfile import JobRecord, Submission, write_job_file
from hpc_runner.stream.records import ModelLocation
from hpc_runner.stream.status import TrainingState, TrainUpdateType
from tests.run_support import write_spec
from tests.tui_support import FakeTraining

#: Everything a terminal may act on: OSC title and clipboard, CSI colour and cursor, BEL, CR,
#: backspace, DEL, C1 CSI, a right-to-left override and a line separator.
EVIL = (
    "\x1b]0;owned\x07\x1b]52;c;cm0gLXJmIH4=\x07\x1b[31;1mred\x1b[2J\x1b[H"
    "\rover\bwrite\x7f\u009b31m\u202eevil\u2028"
)


def assert_safe(output: bytes, what: str) -> None:
    text = output.decode("utf-8")  # also: whatever is printed is valid UTF-8
    bad = sorted(
        {
            f"U+{ord(char):04X}"
            for char in text
            if (ord(char) < 0x20 and char not in "\n\t")
            or 0x7F <= ord(char) <= 0x9F
            or char in "\u061c\u200e\u200f\u2028\u2029\u202a\u202b\u202c\u202d\u202e"
            or 0x2066 <= ord(char) <= 0x2069
            or 0xD800 <= ord(char) <= 0xDFFF
        }
    )
    assert not bad, f"{what}: {bad} in {text!r}"
    assert not any((byte < 0x20 and byte not in b"\n\t") or byte == 0x7F for byte in output), what


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> bytes:
    """stdout and stderr of ``hpc-runner ARGS`` as bytes (what the terminal would get)."""
    answer = subprocess.run(
        [sys.executable, "-m", "hpc_runner", *args],
        capture_output=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
    )
    assert b"Traceback" not in answer.stderr, answer.stderr.decode(errors="replace")
    return answer.stdout + answer.stderr


@pytest.fixture
def evil_runs(tmp_path: Path) -> Path:
    """Runs whose names, messages, model paths and logs carry terminal escapes."""
    root = tmp_path / "runs"
    done = FakeTraining(root / f"sweep{EVIL}" / f"done{EVIL}", job=f"7{EVIL}").begin(2, 2)
    done.epoch(0, [0.5, 0.4], val_loss=0.3).debug(f"checkpoint {EVIL}")
    model = ModelLocation(checkpoint=f"/ckpt/{EVIL}.ckpt", bmz_archive=f"={EVIL}")
    done.write(TrainUpdateType.CAREAMIST, model)
    done.write(TrainUpdateType.STATE, TrainingState.DONE)
    crashed = FakeTraining(root / f"sweep{EVIL}" / "crashed").begin(2, 2).debug(EVIL)
    crashed.crash(f"Evil{EVIL}Error", f"message {EVIL}", f"Traceback:\n  {EVIL}\n")
    FakeTraining(root / "=cmd|' /C calc'!A0").begin(1, 1)  # a formula, to a spreadsheet
    # a directory name that is not UTF-8 at all
    bad_name = os.fsencode(root) + b"/bytes\xff\x9b\x1b"
    FakeTraining(Path(os.fsdecode(bad_name))).begin(1, 1)
    # a local job with a log full of escapes and progress-bar rewrites
    job_id = str(2**22 + 17)
    run_dir = done.run_dir
    record = JobRecord(scheduler="local", submissions=[Submission(0, job_id, 1.0)])
    write_job_file(run_dir, record)
    logs = record.folder(run_dir)
    logs.mkdir(parents=True)
    (logs / f"{job_id}_0_log.out").write_bytes(
        f"epoch 1 10%\repoch 1 100%\n{EVIL}\n".encode() + b"\xff\x9b[2J raw bytes\n"
    )
    (logs / f"{job_id}_0_log.err").write_text(f"warning {EVIL}\n")
    return root


def test_the_sanitiser_keeps_json_exact_and_csv_inert() -> None:
    from hpc_runner.stream.text import cell_text, spreadsheet_safe, terminal_safe

    encoded = json.dumps([EVIL], ensure_ascii=False)
    assert json.loads(terminal_safe(encoded)) == [EVIL]  # escapes are JSON escapes
    assert terminal_safe(terminal_safe(EVIL)) == terminal_safe(EVIL)
    assert terminal_safe("a\tb\nc") == "a\tb\nc"
    assert terminal_safe("a\tb\nc", one_line=True) == "a\\tb\\nc"
    assert terminal_safe("名前 é") == "名前 é"
    assert cell_text("a b ") == "a b\\u0020"  # a cell's end shows no space
    assert terminal_safe("a\u200bb\u00a0c") == "a\\u200bb\u00a0c"
    assert cell_text("a\u00a0b") == "a\\u00a0b"
    assert terminal_safe("a\u00a0b ", one_line=True) == "a\u00a0b "  # (a message's own)
    assert cell_text(cell_text(" a\u3000")) == cell_text(" a\u3000")
    assert json.loads(terminal_safe(json.dumps(["\u200b \ufeff"], ensure_ascii=False))) == [
        "\u200b \ufeff"
    ]
    assert spreadsheet_safe("=HYPERLINK()") == "'=HYPERLINK()"
    assert spreadsheet_safe("-0.5 is text here") == "'-0.5 is text here"
    assert spreadsheet_safe("lr=0.1") == "lr=0.1"


@pytest.mark.parametrize(
    "args",
    [
        ["status"],
        ["status", "--json"],
        ["status", "--csv"],
        ["status", "--summary"],
        ["status", "--summary", "--json"],
        ["status", "--summary", "--csv"],
    ],
    ids=" ".join,
)
def test_status_views_are_safe(evil_runs: Path, args: list[str]) -> None:
    output = run(args[0], str(evil_runs), *args[1:])
    assert_safe(output, " ".join(args))
    assert b"\\u001b]0;owned" in output or b"\\u001b" in output  # shown, escaped, not dropped


def test_status_json_stays_exact_data(evil_runs: Path) -> None:
    runs = json.loads(run("status", str(evil_runs), "--json"))
    done = next(entry for entry in runs if entry["run"].endswith(f"done{EVIL}"))
    assert done["run"] == f"sweep{EVIL}/done{EVIL}"
    assert done["model"]["checkpoint"] == f"/ckpt/{EVIL}.ckpt"
    assert any(entry["run"] == "bytes\\xff\\x9b\x1b" for entry in runs)  # not UTF-8: escaped


def test_summary_shows_the_model_path_escaped(evil_runs: Path) -> None:
    from hpc_runner.stream.text import terminal_safe

    text = run("status", str(evil_runs), "--summary").decode()
    model_line = next(line for line in text.splitlines() if line.startswith("  model: "))
    shown = terminal_safe(f"/ckpt/{EVIL}.ckpt", one_line=True)
    assert model_line == f"  model: {shown} - not on disk any more"  # (a made-up path)


def test_runs_whose_names_differ_in_what_a_terminal_hides_read_apart(tmp_path: Path) -> None:
    """'run', 'run ', 'run' + a zero-width space and 'my run' with a no-break space printed as
    'run', 'run', 'run' and 'my run': --summary ranked a crashed 'run' first and named 'best:
    run' (which one?), and the TUI's rows read the same. Each is now shown apart, escaped."""
    from hpc_runner.stream.text import terminal_safe
    from hpc_runner.tui.columns import row_cells
    from hpc_runner.tui.model import RunEntry
    from hpc_runner.tui.text import printable
    from tests.run_support import run_state

    names = ["run", "run ", "run\u200b", "my\u00a0run", "\ufeffrun"]
    for index, name in enumerate(names):
        fake = FakeTraining(tmp_path / "runs" / name).begin(1, 1)
        fake.epoch(0, [0.5], val_loss=0.1 * (index + 1)).finish()
    for args in (["status"], ["status", "--summary"]):
        lines = run(*args, str(tmp_path / "runs")).decode().splitlines()[1 : 1 + len(names)]
        cells = {line.split()[args.count("--summary")] for line in lines}
        assert len(cells & {"run", "run\\u0020", "run\\u200b", "my\\u00a0run"}) == 4, lines
        assert "\\ufeffrun" in cells
    summary = run("status", "--summary", str(tmp_path / "runs")).decode()
    assert "best: run (best val_loss 0.1)" in summary.splitlines()
    shown = []  # the TUI's name cells
    for name in names:
        run_dir = tmp_path / "runs" / name
        entry = RunEntry(str(run_dir), name, run_dir, run_state(run_dir), loading=False)
        shown.append(row_cells(entry, 0.0)[0].plain)
    assert shown == ["run", "run\\u0020", "run\\u200b", "my\\u00a0run", "\\ufeffrun"]
    assert printable("run\u200b") == "run\\u200b"  # every text view, not only names
    # the space rule is a cell's: a message's lines keep their indentation (a sweep's refusal
    # lists its runs indented, as "  seed=1: ...")
    assert terminal_safe("  seed=1: 1 there", one_line=True) == "  seed=1: 1 there"


def test_csv_cells_are_not_formulas(evil_runs: Path) -> None:
    text = run("status", str(evil_runs), "--csv").decode()
    assert "\n'=cmd|" in text and "\n=cmd" not in text
    summary = run("status", str(evil_runs), "--summary", "--csv").decode()
    assert ",'=cmd|" in summary and ",=cmd" not in summary
    assert "model.bmz_archive" in text and "'=\\u001b" in text


def test_logs_are_shown_as_a_terminal_would_without_control(evil_runs: Path) -> None:
    run_dir = next(evil_runs.glob("sweep*/done*"))
    output = run("logs", str(run_dir))
    assert_safe(output, "logs")
    text = output.decode()
    assert "epoch 1 100%" in text and "epoch 1 10%" not in text  # \r rewrites applied
    assert "\ufffd" in text  # bytes that are not UTF-8
    assert_safe(run("logs", str(run_dir), "-n", "1"), "logs -n 1")


def test_control_commands_are_safe(evil_runs: Path) -> None:
    run_dir = next(evil_runs.glob("sweep*/crashed"))
    assert_safe(run("stop", str(run_dir)), "stop")
    for command in ("cancel", "resume", "logs"):
        assert_safe(run(command, str(run_dir), "--runs-dir", str(evil_runs)), command)
    assert_safe(run("cancel", f"nope{EVIL}"), "cancel of a missing run")


def test_submit_watch_lines_are_safe(evil_runs: Path) -> None:
    """``submit --watch`` without a terminal prints progress lines, the node's messages and the
    exception: its line mode over a run that already ended (no job.json: the file decides)."""
    run_dir = next(evil_runs.glob("sweep*/crashed"))
    answer = subprocess.run(
        [sys.executable, "-c", "import sys; from pathlib import Path; "
         "from hpc_runner.cli.submit_cmd import watch; sys.exit(watch(Path(sys.argv[1])))",
         str(run_dir)],
        capture_output=True, timeout=120, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert answer.returncode == 1  # CRASHED
    assert_safe(answer.stdout + answer.stderr, "submit --watch")
    assert b"CRASHED" in answer.stdout and b"\\u001b]0;owned" in answer.stdout


def test_validation_errors_are_safe(tmp_path: Path) -> None:
    spec_path = write_spec(tmp_path / "spec")
    spec = yaml.safe_load(spec_path.read_text())
    spec["training"][f"epochs{EVIL}"] = 3
    spec["data"]["train"] = f"missing{EVIL}.npy"
    spec["cluster"] = {"profile": f"gpu{EVIL}"}
    spec["name"] = EVIL
    bad = tmp_path / "spec" / "bad.yaml"
    bad.write_text(yaml.safe_dump(spec, allow_unicode=False))
    output = run("submit", str(bad), "--cluster", "local", "--runs-dir", str(tmp_path / "r"))
    assert_safe(output, "spec errors")
    assert output.decode().count("\n") >= 3  # one line per problem, each escaped
    assert_safe(run("submit", str(spec_path), "--cluster", f"x{EVIL}"), "argparse")
    assert_safe(run("submit", f"nope{EVIL}.yaml"), "missing spec")
    assert_safe(run("status", str(tmp_path / f"none{EVIL}")), "missing runs dir")
    assert_safe(run("status", str(tmp_path / "spec" / f"none{EVIL}"), "--json"), "json")


def test_profiles_are_safe(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    profile = {
        "description": f"mine {EVIL}",
        "partition": "cpu",
        "setup": [f"echo {EVIL}"],
        "timeout_min": 10,
    }
    (templates / "evil.yaml").write_text(yaml.safe_dump(profile, allow_unicode=False))
    env = {"HPC_RUNNER_TEMPLATES": str(templates)}
    for args in (["profiles"], ["profiles", "--json"], ["profiles", "evil"]):
        output = run(*args, env=env)
        assert_safe(output, " ".join(args))
        assert b"mine" in output or b"echo" in output
