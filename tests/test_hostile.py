"""Hostile run directories (issue 10): one bad run never hides the others, and nothing hangs.

Everything here is real: FIFOs, symlink loops, device files, directories where files should be,
a full filesystem (a real tmpfs, mounted when the tests run as root). Commands run in a fresh
interpreter with a timeout: before the fixes a FIFO made ``status`` wait forever for a writer,
so the timeout is what turns that hang into a failure (it is not a speed assertion).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from hpc_runner.api import results
from hpc_runner.stream.run_state import replay
from hpc_runner.stream.runs import STATUS_FILE, find_runs, safe_run_name
from hpc_runner.stream.status import TrainingState
from hpc_runner.stream.tail import StatusTail
from tests.run_support import cli, write_spec
from tests.tui_support import FakeTraining, write_run_spec

GOOD_LINE = b'{"v":1,"type":"state","value":"TRAINING","t":1.0,"seq":0,"attempt":0}\n'


def error_lines(stderr: str) -> list[str]:
    """stderr without careamics' notes about the spec (submit prints them first)."""
    return [line for line in stderr.splitlines() if not line.startswith("note: ")]


def good_run(run_dir: Path) -> Path:
    FakeTraining(run_dir).begin(3, 4).epoch(0, [0.5, 0.4], val_loss=0.3)
    return run_dir


def _deep_line(path: Path) -> None:
    path.write_bytes(b"[" * 2048 + b"\n" + b'{"a":' * 5000 + b"\n" + GOOD_LINE)


#: A status.jsonl that is not a status file, by what it is instead.
BAD_STATUS: dict[str, Callable[[Path], None]] = {
    "fifo": lambda path: os.mkfifo(path),
    "symlink-loop": lambda path: path.symlink_to(path.name),
    "directory": lambda path: path.mkdir(),
    "device": lambda path: path.symlink_to("/dev/zero"),
    "socket-dir-link": lambda path: path.symlink_to(path.parent),
    "deep-lines": _deep_line,
}


@pytest.fixture
def hostile_runs(tmp_path: Path) -> Path:
    """A good run beside each kind of bad one."""
    root = tmp_path / "runs"
    good_run(root / "good")
    for name, make in BAD_STATUS.items():
        (root / name).mkdir(parents=True)
        make(root / name / STATUS_FILE)
    return root


def test_the_tail_refuses_what_is_not_a_regular_file_without_blocking(tmp_path: Path) -> None:
    from hpc_runner.stream.files import UnreadableFile, open_regular

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(UnreadableFile, match="FIFO"):
        StatusTail(fifo).read()  # before the fix: os.open blocked until a writer came
    loop = tmp_path / "loop"
    loop.symlink_to("loop")
    with pytest.raises(UnreadableFile, match="symlink loop"):
        open_regular(loop)
    with pytest.raises(UnreadableFile, match="directory"):
        StatusTail(tmp_path).read()
    assert StatusTail(tmp_path / "missing").read().records == []  # not there yet: nothing


def test_a_deeply_nested_line_is_skipped_and_counted(tmp_path: Path) -> None:
    """A 2 KB line of ``[[[[`` raised RecursionError out of the reader (status listed nothing)."""
    _deep_line(tmp_path / STATUS_FILE)
    run = replay(tmp_path / STATUS_FILE)
    assert run.skipped == {"invalid": 2}
    assert run.status.state is TrainingState.TRAINING and run.error is None


def test_every_bad_run_is_listed_with_its_problem_beside_the_good_one(hostile_runs: Path) -> None:
    answer = cli("status", str(hostile_runs), "--json", timeout=60)
    assert answer.returncode == 0, answer.stderr
    runs = {entry["run"]: entry for entry in json.loads(answer.stdout)}
    assert sorted(runs) == sorted(["good", *BAD_STATUS])
    assert runs["good"]["state"] == "TRAINING" and runs["good"]["epoch_idx"] == 0
    assert runs["good"]["error"] is None
    assert "FIFO" in runs["fifo"]["error"]
    assert "symlink loop" in runs["symlink-loop"]["error"]
    assert "a directory, not a regular file" in runs["directory"]["error"]
    assert "a directory, not a regular file" in runs["socket-dir-link"]["error"]
    assert "character device" in runs["device"]["error"]
    deep = runs["deep-lines"]
    assert deep["skipped_lines"] == 2 and deep["state"] == "TRAINING" and deep["error"] is None


@pytest.mark.parametrize("extra", [[], ["--summary"], ["--csv"], ["--summary", "--json"]])
def test_every_status_view_lists_the_good_run(hostile_runs: Path, extra: list[str]) -> None:
    answer = cli("status", str(hostile_runs), *extra, timeout=60)
    assert answer.returncode == 0, answer.stderr
    assert "Traceback" not in answer.stderr
    lines = answer.stdout.splitlines()
    for name in ["good", *BAD_STATUS]:
        assert any(name in line for line in lines), (name, answer.stdout)


def test_the_api_lists_the_good_run(hostile_runs: Path) -> None:
    rows = {row["run"]: row for row in results(hostile_runs)}
    assert rows["good"]["state"] == "TRAINING"
    assert set(rows) == {"good", *BAD_STATUS}


def test_discovery_does_not_follow_directory_symlink_loops(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    good_run(root / "a" / "good")
    (root / "a" / "loop").symlink_to("..")  # runs/a/loop -> runs/a ...
    (root / "self").mkdir()
    (root / "self" / "me").symlink_to("../self")
    assert [path.relative_to(root).as_posix() for path in find_runs(root)] == ["a/good"]


@pytest.mark.parametrize("poll", [None, 0.05], ids=["inotify", "polling"])
def test_runs_named_like_a_runs_internals_are_found(tmp_path: Path, poll: float | None) -> None:
    """A run named ``work`` (``submit`` takes the name) was missing from every view, and so was
    every run of a sweep named ``work``: discovery skipped those names at any depth. A run's
    own ``work/`` stays out (its checkpoints are not runs), and a sweep's ``submitit/``."""
    import queue

    from hpc_runner.watch.watcher import RunWatcher

    root = tmp_path / "runs"
    sweep = root / "project" / "work"
    for run in ("work", "submitit", "__pycache__", "project/work/lr=0.1", "project/work/lr=0.2"):
        good_run(root / run)
    good_run(root / "work" / "work" / "nested")  # inside a run: its internals, not a run
    (sweep / "submitit").mkdir()
    (sweep / "submitit" / "40_0_0_log.out").write_text("log\n")
    expected = ["__pycache__", "project/work/lr=0.1", "project/work/lr=0.2", "submitit", "work"]
    assert [run.relative_to(root).as_posix() for run in find_runs(root)] == expected

    batches: queue.Queue = queue.Queue()
    watcher = RunWatcher(root, batches.put, poll=poll, min_interval=0.0)
    watcher.start()
    try:
        labels = set()
        while True:
            batch = batches.get(timeout=30)
            watcher.acknowledge()
            labels |= {update.label for update in batch.updates}
            if batch.initial_scan_done:
                break
        good_run(sweep / "lr=0.3")  # a run added later to the sweep named work
        while "project/work/lr=0.3" not in labels:
            batch = batches.get(timeout=30)
            watcher.acknowledge()
            labels |= {update.label for update in batch.updates}
    finally:
        watcher.stop()
    assert labels == {*expected, "project/work/lr=0.3"}


def test_commands_over_bad_files_end_in_one_line(hostile_runs: Path) -> None:
    """stop, cancel, resume, logs over runs whose status or job file is not a file: no traceback,
    no hang, exit 1 or 2 with one line."""
    fifo_job = hostile_runs / "fifo-job"
    good_run(fifo_job)
    os.mkfifo(fifo_job / "job.json")
    corrupt = hostile_runs / "corrupt-job"
    good_run(corrupt)
    (corrupt / "job.json").write_bytes(b'{"x":' + b"[" * 3000 + b"\n")
    dir_job = hostile_runs / "dir-job"
    good_run(dir_job)
    (dir_job / "job.json").mkdir()
    for run in ("directory", "fifo", "fifo-job", "corrupt-job", "dir-job"):
        for command in ("cancel", "resume", "logs"):
            answer = cli(command, run, "--runs-dir", str(hostile_runs), timeout=60)
            assert answer.returncode in (1, 2), (run, command, answer.stdout)
            assert "Traceback" not in answer.stderr, (run, command, answer.stderr)
            assert len(error_lines(answer.stderr)) == 1, (run, command, answer.stderr)
            assert answer.stderr.startswith(f"hpc-runner {command}: ")
    listed = json.loads(cli("status", str(hostile_runs), "--json", timeout=60).stdout)
    assert {"fifo-job", "corrupt-job", "dir-job", "good"} <= {entry["run"] for entry in listed}
    assert "a FIFO" in cli("logs", "fifo-job", "--runs-dir", str(hostile_runs)).stderr
    assert (
        "nested too deeply" in cli("cancel", "corrupt-job", "--runs-dir", str(hostile_runs)).stderr
    )


def test_a_file_where_the_runs_directory_should_be(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec")
    not_a_dir = tmp_path / "runs-file"
    not_a_dir.write_text("")
    commands = [
        ("status", str(not_a_dir)),
        ("watch", str(not_a_dir)),
        ("submit", str(spec), "--cluster", "local", "--runs-dir", str(not_a_dir)),
        ("submit", str(spec), "--cluster", "local", "--runs-dir", str(not_a_dir / "below")),
        ("stop", "x", "--runs-dir", str(not_a_dir)),
        ("cancel", "x", "--runs-dir", str(not_a_dir)),
        ("resume", "x", "--runs-dir", str(not_a_dir)),
        ("logs", "x", "--runs-dir", str(not_a_dir)),
    ]
    for command in commands:
        answer = cli(*command, timeout=120)
        assert answer.returncode == 2, (command, answer.stderr)
        assert "Traceback" not in answer.stderr
        assert len(error_lines(answer.stderr)) == 1, answer.stderr
    assert "not a directory" in cli(*commands[2]).stderr


@pytest.fixture
def full_filesystem(tmp_path: Path):
    """A real, full filesystem: a 256 KiB tmpfs filled up (needs root and mount(8))."""
    mount_point = tmp_path / "full"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        filler = os.open(mount_point / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while os.write(filler, b"\0" * 4096):
                pass
        except OSError:  # ENOSPC: full
            pass
        finally:
            os.close(filler)
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=False)


def test_a_full_disk_leaves_no_half_made_run(tmp_path: Path, full_filesystem: Path) -> None:
    """Before: an OSError traceback and a run directory holding an empty run.yaml."""
    spec = write_spec(tmp_path / "spec")
    runs = full_filesystem / "runs"
    answer = cli("submit", str(spec), "--cluster", "local", "--runs-dir", str(runs))
    assert answer.returncode == 1
    assert "Traceback" not in answer.stderr
    assert answer.stderr.splitlines()[-1] == (
        f"hpc-runner submit: cannot write the run directory {runs / 'tiny'}: no space left on "
        "device (nothing was submitted)"
    )
    assert list(runs.iterdir()) == []  # no run, no staging directory


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("名前", "名前"),
        ("日本", "日本"),
        ("Straße_é", "Straße_é"),
        ("e\u0301clair", "\u00e9clair"),  # NFC: one spelling on disk
        ("a/b\\c", "a_b_c"),
        ("../../etc", "_._etc"),
        (".hidden", "hidden"),
        ("tab\tand\x1b[31mesc", "tab_and_31mesc"),
        ("\u202eevil", "_evil"),
        ("", "run"),
    ],
)
def test_run_names_keep_unicode_letters(name: str, safe: str) -> None:
    """名前 and 日本 both became ``_`` (and ``_-2``) before."""
    assert safe_run_name(name) == safe


def test_sweep_names_of_long_unicode_values_stay_unique() -> None:
    """Capped by bytes, names cut to the same prefix must still differ (by their hashes)."""
    from hpc_runner.spec.sweep_names import run_names

    combos = [{"tag": "名" * 100}, {"tag": "名" * 100 + "a"}, {"tag": "名" * 101}]
    names = run_names(combos, ["tag"])
    assert len(set(names)) == 3
    assert all(len(name.encode()) <= 200 and "名" in name for name in names)


def test_run_names_are_capped_in_bytes_and_keep_their_suffix() -> None:
    long = safe_run_name("名" * 300)
    assert len(long.encode()) <= 200 and set(long) == {"名"}
    with_suffix = safe_run_name("名" * 300, suffix="-2")
    assert with_suffix.endswith("名-2") and len(with_suffix.encode()) <= 200


def test_sweep_files_and_runs_that_are_not_files(tmp_path: Path) -> None:
    """`status --summary` read a FIFO sweep.yaml forever; `sweep` over a file as runs dir."""
    sweep_dir = tmp_path / "runs" / "s"
    good_run(sweep_dir / "a")
    (sweep_dir / "b").mkdir()
    os.mkfifo(sweep_dir / "b" / STATUS_FILE)
    os.mkfifo(sweep_dir / "sweep.yaml")
    answer = cli("status", str(sweep_dir), "--summary", timeout=60)
    assert answer.returncode == 0, answer.stderr
    lines = answer.stdout.splitlines()
    assert any(line.split()[1] == "a" for line in lines[1:3])  # listed beside the FIFO run
    assert any(line.startswith("b: ") and "FIFO" in line for line in lines)
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    spec = write_spec(tmp_path / "spec")
    sweep = spec.with_name("sweep.yaml")
    sweep.write_text(f"name: sw\nbase: {spec.name}\ngrid:\n  training.seed: [1, 2]\n")
    answer = cli("sweep", str(sweep), "--runs-dir", str(not_a_dir), "--cluster", "local")
    assert answer.returncode == 2 and "Traceback" not in answer.stderr
    assert error_lines(answer.stderr) == [
        f"hpc-runner sweep: {not_a_dir / 'sw'}: not a directory (give a directory for the runs)"
    ]


def test_the_detail_views_never_wait_on_a_fifo(tmp_path: Path) -> None:
    """The TUI's details read run.yaml and the job logs: a FIFO there is reported, not read."""
    from hpc_runner.watch.meta import load_meta, read_tail

    run_dir = good_run(tmp_path / "run")
    os.mkfifo(run_dir / "run.yaml")
    os.mkfifo(tmp_path / "log")
    meta = load_meta(run_dir)
    assert meta.problems == [f"{run_dir / 'run.yaml'}: cannot read the run spec (a FIFO (named "
                             "pipe), not a regular file)"]  # fmt: skip
    with pytest.raises(OSError, match="FIFO"):
        read_tail(tmp_path / "log")


def alias_bomb(levels: int = 6, width: int = 9) -> str:
    """A few hundred bytes of YAML mapping whose aliases stand for ``width ** levels`` values
    (531,441 by default: enough to be refused, few enough that walking them without the limit
    ends within seconds, so the tests below fail rather than hang without it)."""
    lines = ["a0: &a0 {" + ", ".join(f"x{i}: 1" for i in range(width)) + "}"]
    for level in range(1, levels):
        items = ", ".join(f"k{i}: *a{level - 1}" for i in range(width))
        lines.append(f"a{level}: &a{level} {{{items}}}")
    return "\n".join(lines) + "\n"


def test_yaml_alias_bombs_are_refused_wherever_yaml_is_read(tmp_path: Path) -> None:
    """A run.yaml of ~500 bytes expanding to a billion values froze the detail view (listing a
    run's settings walked them all); sweep.yaml and specs are read through the same loader."""
    from hpc_runner.control.sweep_runs import read_sweep_file
    from hpc_runner.watch.meta import load_meta

    bomb = alias_bomb()
    assert len(bomb) < 1000
    run_dir = good_run(tmp_path / "runs" / "sweep" / "run")
    (run_dir / "run.yaml").write_text(bomb)
    (run_dir.parent / "sweep.yaml").write_text(bomb)
    refused = "the document holds more than 100,000 values once its aliases (*name) are written out"
    [problem] = load_meta(run_dir).problems
    assert problem.startswith(f"{run_dir / 'run.yaml'}: cannot read the run spec ({refused}")
    assert read_sweep_file(run_dir.parent) == {}  # unreadable: the runs are still listed
    spec = tmp_path / "bomb.yaml"
    spec.write_text("name: bomb\n" + bomb)
    answer = cli("submit", str(spec), timeout=60)
    assert answer.returncode == 2 and "Traceback" not in answer.stderr
    assert error_lines(answer.stderr)[0].startswith(
        f"hpc-runner submit: {spec}: -: YAML error: {refused}"
    )


def test_yaml_aliases_that_stay_small_and_ones_that_contain_themselves(tmp_path: Path) -> None:
    """The limit counts what aliases stand for: a spec's few aliases load as before, and an
    alias inside its own anchor (a cycle, endless once written out) is refused, not walked."""
    import yaml

    from hpc_runner.spec.yaml_load import TooManyValues, safe_load

    assert safe_load("base: &b {lr: 0.001, seed: [1, 2]}\nrun: {<<: *b, seed: 3}\nalso: *b\n") == {
        "base": {"lr": 0.001, "seed": [1, 2]},
        "run": {"lr": 0.001, "seed": 3},
        "also": {"lr": 0.001, "seed": [1, 2]},
    }
    assert safe_load(alias_bomb(levels=4)) is not None  # ~15,000 nodes: under the limit
    with pytest.raises(TooManyValues):
        safe_load("loop: &a [1, *a]\n")
    with pytest.raises(yaml.YAMLError):
        safe_load(alias_bomb())


def _job_json(run_dir: Path, **fields: object) -> None:
    """A job.json as hpc-runner writes it, with ``fields`` of its one submission changed."""
    import socket

    submission = {"attempt": 0, "job_id": "4242", "submitted": 1.0, **fields}
    document = {"v": 1, "scheduler": "local", "host": socket.gethostname(),
                "submissions": [submission]}  # fmt: skip
    (run_dir / "job.json").write_text(json.dumps(document))


def test_a_job_file_naming_no_real_job_is_reported_in_every_view(tmp_path: Path) -> None:
    """job.json ids go to sacct, scancel and file names. One run's "abc" made the batched sacct
    fail and every other run look purged (LOST); a NUL byte made ``status`` fail ("embedded
    null byte"); and an unusable job.json was ignored in silence, a dead run's last record
    shown as TRAINING. Now the file is refused with why, every view gives that as the reason
    the phase is unconfirmed, and the other runs are untouched."""
    from hpc_runner.control.jobfile import JobFileError, read_job_file
    from hpc_runner.watch.scheduler_watch import SchedulerWatcher

    root = tmp_path / "runs"
    bad = {
        "letters": {"job_id": "abc"},
        "list": {"job_id": "220,221"},
        "nul-id": {"job_id": "12\x003"},
        "path-id": {"job_id": "../../x"},
        "nul-folder": {"folder": "sub\x00mit"},
    }
    for name, fields in bad.items():
        FakeTraining(root / name, start=time.time()).begin(3, 4).epoch(0, [0.5, 0.4])
        _job_json(root / name, **fields)
        with pytest.raises(JobFileError, match=r"hpc-runner writes|NUL byte"):
            read_job_file(root / name)
    good_run(root / "good")
    answer = cli("status", str(root), "--json", timeout=60)
    assert answer.returncode == 0, answer.stderr
    rows = {row["run"]: row for row in json.loads(answer.stdout)}
    assert rows.pop("good")["reason"].startswith("no record for")  # no job.json: as before
    for name, row in rows.items():
        assert row["phase"] == "TRAINING", name
        assert row["reason"].startswith("its job cannot be asked about: "), row
    views = SchedulerWatcher(lambda: sorted(root.iterdir()), lambda views: None).check()
    for name in bad:  # the TUI's scheduler thread gives the table the same reason
        scheduler = views[root / name].scheduler
        assert scheduler is not None and scheduler.state == "UNKNOWN"
        assert scheduler.reason is not None and "cannot be asked about" in scheduler.reason


def test_a_planted_processes_file_never_stops_or_blocks_a_monitor(tmp_path: Path) -> None:
    """A local run's ``<job>_processes.json`` is read by every view: ``[[[[...`` nesting made
    ``status`` fail with RecursionError (and the TUI's scheduler thread die in silence), and
    a FIFO or a device there would block it."""
    from hpc_runner.stream.processes import read_processes

    folder = tmp_path / "submitit"
    folder.mkdir()
    (folder / "1_processes.json").write_text('{"x": ' + "[" * 100_000 + "]" * 100_000 + "}")
    os.mkfifo(folder / "2_processes.json")
    (folder / "3_processes.json").symlink_to("/dev/zero")
    assert [read_processes(folder, job) for job in ("1", "2", "3")] == [None, None, None]
    run_dir = good_run(tmp_path / "runs" / "local")
    (run_dir / "submitit").symlink_to(folder)
    _job_json(run_dir, job_id="1")
    answer = cli("status", str(run_dir.parent), "--json", timeout=60)
    assert answer.returncode == 0 and "Traceback" not in answer.stderr, answer.stderr


def test_a_fifo_run_spec_never_blocks_the_summary_or_the_api(tmp_path: Path) -> None:
    """``status --summary`` and ``api.results`` look up each run's algorithm in run.yaml."""
    root = tmp_path / "runs"
    good_run(root / "good")
    os.mkfifo(good_run(root / "fifo") / "run.yaml")
    answer = cli("status", str(root), "--summary", timeout=60)
    assert answer.returncode == 0, answer.stderr
    assert sorted(row["run"] for row in results(root)) == ["fifo", "good"]


def test_cancel_never_signals_a_process_that_a_planted_job_file_names(tmp_path: Path) -> None:
    """job.json lies in the run directory: one naming any of the user's processes (its pid and
    start time, as ``cancel`` checks) got that process killed (found by an adversarial review).
    A process is signalled only when its own command line names the run's submitit folder."""
    from hpc_runner.control.jobfile import JobRecord, Submission, write_job_file
    from hpc_runner.control.local_process import job_processes
    from hpc_runner.stream.processes import identify

    victim = subprocess.Popen(["sleep", "300"])
    try:
        process = identify(victim.pid)
        assert process is not None
        run_dir = good_run(tmp_path / "runs" / "planted")
        submission = Submission(0, str(victim.pid), time.time(), process=process)
        write_job_file(run_dir, JobRecord(scheduler="local", submissions=[submission]))
        # the process is not taken for the run's: the run is LOST, there is nothing to cancel
        answer = cli("cancel", str(run_dir), timeout=60)
        assert answer.returncode == 1, answer.stdout
        assert "planted is LOST (its processes ended without reporting how)" in answer.stderr
        folder = run_dir / "submitit"
        folder.mkdir()
        assert job_processes(folder, str(victim.pid), process) == ([], [])  # what cancel ends
        time.sleep(0.5)
        assert victim.poll() is None  # still running
    finally:
        victim.kill()
        victim.wait()


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("additional_parameters", {"wckey=x\ntouch /tmp/p\n#x": "y"}, "is not an sbatch flag name"),
        ("additional_parameters", {"comment": "a\ntouch /tmp/p"}, "control character '\\n'"),
        ("partition", "cpu\ntouch /tmp/p", "control character '\\n'"),
        ("mem_gb", float("inf"), "expected a number of GB > 0"),
    ],
)
def test_a_run_yaml_changed_to_run_commands_is_refused(
    tmp_path: Path, key: str, value: object, words: str
) -> None:
    """run.yaml's resolved profile went into a resumed job's batch script unchecked: an sbatch
    flag named ``wckey=x\\ntouch ...`` (or a value with a line break) started a line of its own,
    which ran as a shell command on the node (found by the submission helper on the SLURM test
    cluster), and every #SBATCH line after it was ignored. run.yaml is checked again as a
    profile is, and a profile file or job spec giving the same is refused too."""
    import yaml

    from hpc_runner.spec.errors import SpecError
    from hpc_runner.spec.job import load_run_spec
    from hpc_runner.spec.profile_fields import Bad, check_field

    run_dir = tmp_path / "runs" / "changed"  # crashed: resume would submit its next attempt
    FakeTraining(run_dir).begin(3, 4).epoch(0, [0.5], val_loss=0.3).crash("ValueError", "x")
    write_run_spec(run_dir, profile="test_cpu")
    document = yaml.safe_load((run_dir / "run.yaml").read_text())
    document["cluster"]["resolved"][key] = value
    (run_dir / "run.yaml").write_text(yaml.safe_dump(document))
    with pytest.raises(SpecError) as caught:
        load_run_spec(run_dir)
    (line,) = str(caught.value).splitlines()
    assert line.startswith(f"{run_dir / 'run.yaml'}: cluster.resolved.{key}: ")
    assert words in line and line.endswith("resubmit the job spec)")
    checked = check_field(key, value)  # a profile or a job spec's cluster: the same check
    assert isinstance(checked, Bad) and words in checked.reason
    answer = cli("resume", str(run_dir), timeout=120)
    assert answer.returncode == 1 and "Traceback" not in answer.stderr
    assert f"cluster.resolved.{key}" in answer.stderr and "submitted" not in answer.stdout
