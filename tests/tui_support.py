"""Run folders for the watcher and TUI tests, written by the real :class:`StatusWriter`.

The writer stamps each record with ``time.time()``; here its clock is replaced by a fake one that
advances by a fixed step per record, so that snapshots (elapsed, ETA, debug times) never change.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import ModuleType, SimpleNamespace
from unittest import mock

import pytest
from textual.app import App

from hpc_runner.control.jobfile import JobRecord, Submission, write_job_file
from hpc_runner.stream import writer as writer_module
from hpc_runner.stream.records import EvaluationValue, ModelLocation, RecordedException
from hpc_runner.stream.runs import RUN_SPEC_FILE, STATUS_FILE
from hpc_runner.stream.status import TrainingState, TrainUpdate, TrainUpdateType
from hpc_runner.stream.writer import StatusWriter

#: 2023-11-14 22:13:20 UTC: every fixture run starts at or after this time.
T0 = 1_700_000_000.0


class FakeTraining:
    """Writes what a training would, through the real writer, with a deterministic clock.

    Parameters
    ----------
    run_dir : Path
        The run directory (created).
    start : float
        Time of the first record.
    step : float
        Seconds between two records.
    """

    def __init__(
        self,
        run_dir: Path,
        *,
        start: float = T0,
        step: float = 1.0,
        attempt: int = 0,
        job: str | None = "4242_0",
        host: str = "node01",
    ) -> None:
        self.run_dir = Path(run_dir)
        self.now = start
        self.step = step
        self.writer = StatusWriter(self.run_dir / STATUS_FILE, attempt=attempt, job=job, rank=0)
        self.writer.host = host

    def _clock(self) -> float:
        value = self.now
        self.now += self.step
        return value

    def write(self, kind: TrainUpdateType, value: object = None) -> None:
        with self._fake_clock():
            self.writer.write(TrainUpdate(kind, value))

    @contextlib.contextmanager
    def _fake_clock(self) -> Iterator[None]:
        # The writer imports either the time module or its time() function; replace whichever.
        clock: object = self._clock
        if isinstance(writer_module.time, ModuleType):
            clock = SimpleNamespace(time=self._clock)
        with mock.patch.object(writer_module, "time", clock):
            yield

    def model(self, location: ModelLocation) -> FakeTraining:
        """Record where the trained model lives (best checkpoint, its val_loss and epoch)."""
        self.write(TrainUpdateType.CAREAMIST, location)
        return self

    def evaluation(self, ground_truth: str, before: float, after: float) -> FakeTraining:
        """Record the PSNR against a ground truth, as the node does after training."""
        with self._fake_clock():
            self.writer.write_extension("evaluation", EvaluationValue(ground_truth, before, after))
        return self

    def begin(self, max_epochs: int, max_batches: int) -> FakeTraining:
        self.write(TrainUpdateType.MAX_EPOCH, max_epochs)
        self.write(TrainUpdateType.MAX_BATCH, max_batches)
        self.write(TrainUpdateType.STATE, TrainingState.TRAINING)
        return self

    def epoch(self, index: int, losses: list[float], val_loss: float | None = None) -> FakeTraining:
        self.write(TrainUpdateType.EPOCH, index)
        for batch, loss in enumerate(losses):
            self.write(TrainUpdateType.BATCH, batch)
            self.write(TrainUpdateType.LOSS, loss)
        if val_loss is not None:
            self.write(TrainUpdateType.VAL_LOSS, val_loss)
        return self

    def debug(self, message: str) -> FakeTraining:
        self.write(TrainUpdateType.DEBUG, message)
        return self

    def crash(self, exc_type: str, message: str, traceback: str = "") -> FakeTraining:
        self.write(TrainUpdateType.EXCEPTION, RecordedException(exc_type, message, traceback))
        self.write(TrainUpdateType.STATE, TrainingState.CRASHED)
        return self

    def finish(self, state: TrainingState = TrainingState.DONE) -> FakeTraining:
        checkpoint = str(self.run_dir / "work" / "checkpoints" / "last.ckpt")
        self.write(TrainUpdateType.CAREAMIST, ModelLocation(checkpoint=checkpoint))
        self.write(TrainUpdateType.STATE, state)
        self.writer.close()
        return self


def losses(count: int, first: float = 1.0, factor: float = 0.8) -> list[float]:
    """A decreasing loss curve."""
    return [round(first * factor**index, 6) for index in range(count)]


def write_fixture_runs(root: Path) -> dict[str, Path]:
    """Five runs in every state, a sweep folder, a spec and a job record: the snapshot scene."""
    runs = {}
    done = FakeTraining(root / "n2v_bsd68", start=T0).begin(3, 4)
    for epoch in range(3):
        done.epoch(epoch, losses(4, 0.9 - 0.2 * epoch), val_loss=0.5 - 0.1 * epoch)
    done.debug("checkpoint saved at epoch 2, step 12").finish()
    runs["done"] = done.run_dir

    training = FakeTraining(root / "care_live", start=T0 + 100, job="4243_0").begin(5, 10)
    training.epoch(0, losses(10), val_loss=0.42).epoch(1, losses(10, 0.5), val_loss=0.37)
    training.epoch(2, losses(4, 0.3))
    runs["training"] = training.run_dir

    crashed = FakeTraining(root / "sweep" / "lr_0.1", start=T0 + 200, job="4244_1").begin(4, 5)
    crashed.epoch(0, losses(5, 2.0, 1.3)).debug("loss is growing")
    crashed.crash(
        "FloatingPointError",
        "loss is NaN at step 5",
        'Traceback (most recent call last):\n  File "train.py", line 9, in fit\n'
        "FloatingPointError: loss is NaN at step 5\n",
    )
    runs["crashed"] = crashed.run_dir

    stopped = FakeTraining(root / "sweep" / "lr_0.01", start=T0 + 300, job="4244_0").begin(4, 5)
    stopped.epoch(0, losses(5), val_loss=0.61).debug("stop requested (STOP file found)")
    stopped.finish(TrainingState.STOPPED)
    runs["stopped"] = stopped.run_dir

    queued = FakeTraining(root / "[b]queued[/b]", start=T0 + 400, job=None)
    queued.debug("[red]submitted[/red] \x1b[31m to partition gpu")
    runs["queued"] = queued.run_dir

    (done.run_dir / RUN_SPEC_FILE).write_text(
        "name: n2v_bsd68\nprofile: gpu\ntraining:\n  algorithm: n2v\n  axes: SYX\n"
        "  patch_size: [64, 64]\n  batch_size: 16\n  num_epochs: 3\n",
        encoding="utf-8",
    )
    job = JobRecord(scheduler="slurm", submissions=[Submission(0, "4242_0", T0)], host="login01")
    write_job_file(done.run_dir, job)
    logs = done.run_dir / "submitit"
    logs.mkdir()
    (logs / "4242_0_0_log.out").write_text("epoch 1\nepoch 2\n\x1b[32mdone\x1b[0m\n")
    (logs / "4242_0_0_log.err").write_text("warning: [bold]not markup[/bold]\n")
    return runs


def write_sweep_runs(root: Path, name: str = "n2v_sweep") -> dict[str, Path]:
    """A 4-run sweep as ``hpc-runner sweep`` leaves it: ``sweep.yaml`` in its directory, each
    run's values in its ``sweep_run.json`` (the real writer), runs in four phases, two with a
    PSNR against the spec's ground truth."""
    from hpc_runner.control.sweep_runs import write_run_values

    sweep_dir = root / name
    sweep_dir.mkdir(parents=True)
    (sweep_dir / "sweep.yaml").write_text(
        f"version: 1\nname: {name}\nbase: job.yaml\n"
        "grid: {training.lr: [0.001, 0.01], training.use_n2v2: [false, true]}\n",
        encoding="utf-8",
    )
    runs = {}
    for index, (lr, n2v2) in enumerate(
        [(0.001, False), (0.001, True), (0.01, False), (0.01, True)]
    ):
        run_name = f"lr={lr}_use_n2v2={str(n2v2).lower()}"
        training = FakeTraining(sweep_dir / run_name, start=T0 + 10 * index, job=f"5000_{index}")
        training.begin(2, 4).epoch(0, losses(4, 0.8 - 0.1 * index), val_loss=0.6 - 0.1 * index)
        if index < 2:
            training.epoch(1, losses(4, 0.5 - 0.1 * index), val_loss=0.4 - 0.1 * index)
            training.finish()
            training.evaluation("/data/clean.tif", 20.5, 28.0 + index)
        elif index == 2:
            training.crash("RuntimeError", "CUDA out of memory")
        overrides = {"training.lr": lr, "training.use_n2v2": n2v2}
        write_run_values(
            training.run_dir, sweep=name, sweep_file=str(sweep_dir / "sweep.yaml"),
            overrides=overrides, values=overrides,
        )  # fmt: skip
        runs[run_name] = training.run_dir
    return runs


def write_run_spec(
    run_dir: Path, profile: str = "example_site_a100", extra_setup: tuple[str, ...] = ()
) -> Path:
    """A ``run.yaml`` as ``submit`` writes it (its own writer), for ``resume``'s plan.

    The careamics section is left empty: nothing here trains, and filling it would import
    careamics. ``extra_setup`` adds setup lines the user's own profile does not have.
    """
    import dataclasses

    from hpc_runner.spec.data_section import DataSpec
    from hpc_runner.spec.job import JobSpec, dump_run_spec
    from hpc_runner.spec.profiles import load_profile

    resolved = load_profile(profile)
    resolved = dataclasses.replace(resolved, setup=(*resolved.setup, *extra_setup))
    spec = JobSpec(
        name=run_dir.name,
        careamics={},
        data=DataSpec(train=str(run_dir.absolute() / "train.npy")),
        profile=resolved,
    )
    path = run_dir / RUN_SPEC_FILE
    path.write_text(dump_run_spec(spec), encoding="utf-8")
    return path


def write_job(
    run_dir: Path,
    job_id: str,
    *,
    scheduler: str = "slurm",
    folder: str | None = None,
    submitted: float = T0,
) -> JobRecord:
    """A ``job.json`` naming one submission (``folder``: submitit's, relative to the run)."""
    record = JobRecord(scheduler=scheduler, submissions=[Submission(0, job_id, submitted)])
    if folder is not None:
        record.submitit_folder = folder
    write_job_file(run_dir, record)
    return record


class RecordedScheduler:
    """A command runner for :class:`~hpc_runner.control.scheduler.SchedulerPoller` that answers
    ``sacct`` and ``squeue`` from recorded text and remembers every command.

    A declared fake: SLURM states such as OUT_OF_MEMORY, a JobArrayTaskLimit wait or a requeue
    cannot be produced on demand in a TUI test; the text is in the format the test cluster's
    SLURM 22.05 prints (see tests/test_scheduler.py). Each command's output holds every job;
    ``query_slurm`` keeps the ones it asked about.
    """

    def __init__(self, sacct: str, squeue: str = "") -> None:
        self.answers = {"sacct": sacct, "squeue": squeue}
        self.commands: list[list[str]] = []
        self._lock = threading.Lock()

    def __call__(self, command: list[str]) -> subprocess.CompletedProcess[str]:
        with self._lock:
            self.commands.append(list(command))
        out = self.answers.get(command[0])
        return subprocess.CompletedProcess(command, 0 if out is not None else 1, out or "", "")

    def count(self, name: str = "sacct") -> int:
        with self._lock:
            return sum(1 for command in self.commands if command[0] == name)

    def asked(self, name: str = "sacct") -> list[str]:
        """The job ids of the last ``name`` command (its ``-j`` argument)."""
        with self._lock:
            command = [c for c in self.commands if c[0] == name][-1]
        return command[command.index("-j") + 1].split(",")


def slurm_commands_on_path(
    directory: Path, monkeypatch: pytest.MonkeyPatch, answers: Mapping[str, str] | None = None
) -> Path:
    """``sacct``, ``squeue``, ``scontrol`` that exit 99 first on PATH: hpc-runner sees a SLURM
    machine (it asks the recorded scheduler), and a command that really ran one would find no
    answer - never a real cluster's job that happens to have a test's job id.

    ``answers``: commands that print this recorded text instead (every job, as
    :class:`RecordedScheduler` does), for what asks SLURM outside the app's poller - the
    control functions behind the TUI's actions, which take a job SLURM did not answer about
    for one that may still run."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("sacct", "squeue", "scontrol"):
        tool = directory / name
        if answers and name in answers:
            (directory / f"{name}.txt").write_text(answers[name])
            tool.write_text(f"#!/bin/sh\nexec cat '{directory / name}.txt'\n")
        else:
            tool.write_text("#!/bin/sh\nexit 99\n")
        tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{os.environ.get('PATH', '')}")
    return directory


def append_line(path: Path, line: bytes) -> None:
    """Append raw bytes as one write, as a writer on another process would."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


async def wait_for(
    condition: Callable[[], object], pause: Callable[[], object], *, tries: int = 1500
) -> None:
    """Await ``pause()`` until ``condition()`` holds; fail after ``tries`` pauses *and* 60 s of
    patience (a bound on waiting, not a timing: under a loaded CI, 1,500 pauses of ~1 ms were
    shorter than one scheduler query in a worker thread, and a correct app failed the test)."""
    deadline = time.monotonic() + 60.0
    count = 0
    while count < tries or time.monotonic() < deadline:
        if condition():
            return
        result = pause()
        if asyncio.iscoroutine(result):
            await result
        count += 1
    raise AssertionError(f"condition never became true: {condition}")


_SVG_TEXT = re.compile(r'<text [^>]*clip-path="url\(#[\w-]+-line-(\d+)\)"[^>]*>([^<]*)</text>')


def screen_text(app: App[object]) -> str:
    """What the app's screen shows, as plain text lines (from its public SVG screenshot)."""
    lines: dict[int, list[str]] = {}
    for line, text in _SVG_TEXT.findall(app.export_screenshot()):
        lines.setdefault(int(line), []).append(html.unescape(text).replace("\xa0", " "))
    return "\n".join("".join(lines[number]) for number in sorted(lines))


@contextlib.contextmanager
def timezone(name: str) -> Iterator[None]:
    """Format local times in ``name`` (debug message times in snapshots)."""
    import time

    old = os.environ.get("TZ")
    os.environ["TZ"] = name
    time.tzset()
    try:
        yield
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()


class TerminalSession:
    """A command running in a pseudo-terminal of a given size, its output collected.

    This is how a user runs ``hpc-runner watch``: a real terminal driver, real key presses.
    """

    def __init__(self, command: list[str], *, size: tuple[int, int] = (120, 30), **popen) -> None:
        import fcntl
        import pty
        import struct
        import subprocess
        import termios

        master, slave = pty.openpty()
        columns, rows = size
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(columns), "LINES": str(rows)}
        self.process = subprocess.Popen(
            command, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True, **popen
        )
        os.close(slave)
        self.master = master
        self.output = bytearray()

    def read_until(self, needle: bytes, timeout: float = 60.0) -> bool:
        """Collect output until ``needle`` appears (True) or ``timeout`` passes (False)."""
        import select
        import time

        deadline = time.monotonic() + timeout
        start = max(0, len(self.output) - len(needle))
        while needle not in self.output[start:]:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            ready, _, _ = select.select([self.master], [], [], min(remaining, 0.5))
            if ready:
                try:
                    chunk = os.read(self.master, 1 << 16)
                except OSError:  # the child closed the terminal
                    return needle in self.output[start:]
                self.output += chunk
        return True

    def send(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def close(self, timeout: float = 10.0) -> int | None:
        """Wait for the process to end (draining its output); kill it after ``timeout``.

        Returns its exit code, or None if it had to be killed.
        """
        import time

        deadline = time.monotonic() + timeout
        try:
            while self.process.poll() is None and time.monotonic() < deadline:
                self.read_until(b"\0", 0.2)  # keeps the terminal drained while it shuts down
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
                return None
            return self.process.returncode
        finally:
            os.close(self.master)
