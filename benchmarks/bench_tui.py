"""How fast `hpc-runner watch` is, measured as a user sees it: the real command in a terminal.

Every number comes from the real ``hpc-runner watch`` process running in a pseudo-terminal (its
own process, Textual's real terminal driver), fed by status files written with the real
:class:`~hpc_runner.stream.writer.StatusWriter`:

- first paint with 500 runs, and with one run of 1,000,000 records: from starting the command to
  the first frame, and to the frame that shows every run read to its end;
- append-to-screen latency: from a record's ``write()`` to the moment its value reaches the
  terminal, with inotify and with ``--poll``;
- idle CPU with 500 runs (nothing changing), as a share of one core;
- resident memory;
- a flood of 10,000 records per second across 20 runs: CPU, and the latency of a marker record
  written during the flood (a frozen screen would show as huge latencies).

Run: ``python benchmarks/bench_tui.py`` (about two minutes; ``--quick`` for a smaller run).
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import random
import select
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

from hpc_runner.control.sweep_runs import write_run_values
from hpc_runner.stream.records import EvaluationValue
from hpc_runner.stream.status import TrainingState, TrainUpdate, TrainUpdateType
from hpc_runner.stream.writer import StatusWriter
from hpc_runner.watch.watcher import DEFAULT_NETWORK_POLL

T = TrainUpdateType
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- fixtures ----------------------------------------------------------------------------------


def write_run(run_dir: Path, epochs: int, batches: int, final: TrainingState | None) -> None:
    """A run as the callback writes it: ~2 records per batch, val_loss per epoch; a DONE run
    then its PSNR against a ground truth, as the node does after training."""
    writer = StatusWriter(run_dir / "status.jsonl", job="1000_1", rank=0)
    writer.write(TrainUpdate(T.MAX_EPOCH, epochs))
    writer.write(TrainUpdate(T.MAX_BATCH, batches))
    writer.write(TrainUpdate(T.STATE, TrainingState.TRAINING))
    for epoch in range(epochs):
        writer.write(TrainUpdate(T.EPOCH, epoch))
        for batch in range(batches):
            writer.write(TrainUpdate(T.BATCH, batch))
            writer.write(TrainUpdate(T.LOSS, 0.2 + 0.1 / (1 + epoch * batches + batch)))
        writer.write(TrainUpdate(T.VAL_LOSS, 0.2 + 0.05 / (1 + epoch)))
    if final is TrainingState.DONE:
        writer.write_extension("evaluation", EvaluationValue("clean.tif", 20.0, 28.5))
    if final is not None:
        writer.write(TrainUpdate(T.STATE, final))
    writer.close()


def make_runs(root: Path, count: int, *, training_share: float = 0.1) -> None:
    """``count`` runs of 3 epochs x 50 batches (~310 records each); some still TRAINING.

    They are sweeps of 100 runs each, as ``hpc-runner sweep`` leaves them (``sweep.yaml``, each
    run's values in ``sweep_run.json``), so that the table groups them and shows their two
    parameters as columns, and DONE runs have a PSNR: every column on.
    """
    finals = [TrainingState.DONE, TrainingState.DONE, TrainingState.STOPPED, TrainingState.CRASHED]
    for index in range(count):
        final = None if index < count * training_share else finals[index % len(finals)]
        sweep_dir = root / f"sweep_{index // 100}"
        run_dir = sweep_dir / f"run_{index:04d}"
        write_run(run_dir, 3, 50, final)
        sweep_file = sweep_dir / "sweep.yaml"
        if not sweep_file.exists():
            sweep_file.write_text(
                f"version: 1\nname: {sweep_dir.name}\nbase: job.yaml\n"
                "grid: {training.lr: [0.001, 0.01], training.batch_size: [8, 16, 32]}\n",
                encoding="utf-8",
            )
        values = {"training.lr": [0.001, 0.01][index % 2], "training.batch_size": 8 << index % 3}
        write_run_values(
            run_dir,
            sweep=sweep_dir.name,
            sweep_file=str(sweep_file),
            overrides=values,
            values=values,
        )


# -- the command in a terminal -----------------------------------------------------------------


class Terminal:
    """``hpc-runner watch`` in a pseudo-terminal; a thread drains and timestamps its output."""

    def __init__(self, args: list[str], cwd: Path, size: tuple[int, int] = (160, 48)) -> None:
        master, slave = pty.openpty()
        columns, rows = size
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        env = {**os.environ, "TERM": "xterm-256color"}
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hpc_runner", "watch", *args],
            stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env, close_fds=True,
        )  # fmt: skip
        os.close(slave)
        self.master = master
        self.output = bytearray()
        self.arrivals: list[tuple[int, float]] = []  # (end offset, perf_counter) per chunk
        self.changed = threading.Condition()
        self.reader = threading.Thread(target=self._drain, daemon=True)
        self.reader.start()

    def _drain(self) -> None:
        while True:
            ready, _, _ = select.select([self.master], [], [], 0.5)
            if not ready:
                if self.process.poll() is not None:
                    return
                continue
            try:
                chunk = os.read(self.master, 1 << 16)
            except OSError:
                return
            if not chunk:
                return
            with self.changed:
                self.output += chunk
                self.arrivals.append((len(self.output), time.perf_counter()))
                self.changed.notify_all()

    def mark(self) -> int:
        with self.changed:
            return len(self.output)

    def wait_for(self, needle: bytes, since: int = 0, timeout: float = 120.0) -> float:
        """perf_counter time at which ``needle`` reached the terminal (after offset ``since``)."""
        deadline = time.perf_counter() + timeout
        with self.changed:
            while True:
                index = self.output.find(needle, since)
                if index >= 0:
                    end = index + len(needle)
                    return next(t for offset, t in self.arrivals if offset >= end)
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    raise TimeoutError(f"{needle!r} never appeared")
                self.changed.wait(remaining)

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def quit(self) -> None:
        os.write(self.master, b"q")
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.reader.join(2)
        os.close(self.master)


def loaded_marker(poll: float | None) -> bytes:
    # The status line says "scanning…" until every run was read to its end, then the mode.
    return b"inotify" if poll is None else f"polling every {poll:g} s".encode()


def start(root: Path, poll: float | None = None) -> Terminal:
    args = ["runs"] + ([] if poll is None else ["--poll", str(poll)])
    return Terminal(args, cwd=root.parent)


# -- measurements ------------------------------------------------------------------------------


def first_paint(root: Path, label: str, runs: int) -> dict[str, float]:
    """Seconds from starting the command to: the first frame, every run listed, every run read."""
    terminal = start(root)
    try:
        first = terminal.wait_for(b"Run") - terminal.started
        listed = terminal.wait_for(f"{runs} run".encode()) - terminal.started
        loaded = terminal.wait_for(loaded_marker(None)) - terminal.started
        if runs > 1:  # grouped sweeps, their parameter columns and PSNR are on screen
            for needle in ("sweep_0", "PSNR", "batch_size", "28.50"):
                terminal.wait_for(needle.encode(), timeout=10)
        time.sleep(1.0)
        rss = terminal.rss_mb()
    finally:
        terminal.quit()
    print(
        f"  {label}: first frame {first:.2f} s, all runs listed {listed:.2f} s, "
        f"all read and shown {loaded:.2f} s, RSS {rss:.0f} MB"
    )
    return {"first": first, "listed": listed, "loaded": loaded, "rss": rss}


def latency(root: Path, poll: float | None, samples: int) -> list[float]:
    """Append a loss to the first run on screen; time until its value is in the terminal."""
    run_dir = root / "sweep_0" / "run_0000"
    writer = StatusWriter(run_dir / "status.jsonl", job="1000_1", rank=0)
    terminal = start(root, poll)
    delays = []
    # Each append follows the previous one's detection, hence a poll: a random pause breaks
    # that phase lock, so that appends land uniformly within the poll interval.
    pauses = random.Random(42)
    try:
        terminal.wait_for(loaded_marker(poll))
        time.sleep(1.0)
        for index in range(samples):
            value = 0.5 + (index + 1) / 10_000  # shown as 0.5001, 0.5002, ...: unique on screen
            since = terminal.mark()
            written = time.perf_counter()
            writer.write(TrainUpdate(T.LOSS, value))
            shown = terminal.wait_for(f"{value:.4g}".encode(), since)
            delays.append(shown - written)
            time.sleep(pauses.uniform(0.1, 0.1 + (poll or 0.3)))
    finally:
        terminal.quit()
        writer.close()
    return delays


def idle_cpu(root: Path, seconds: float, poll: float | None = None) -> tuple[float, float]:
    """CPU share of one core while nothing changes, and RSS."""
    terminal = start(root, poll)
    try:
        terminal.wait_for(loaded_marker(poll))
        time.sleep(2.0)
        before, t0 = terminal.cpu_seconds(), time.perf_counter()
        time.sleep(seconds)
        used = terminal.cpu_seconds() - before
        share = 100 * used / (time.perf_counter() - t0)
        rss = terminal.rss_mb()
    finally:
        terminal.quit()
    return share, rss


def flood(root: Path, seconds: float, rate: int = 10_000, runs: int = 20) -> dict[str, float]:
    """``rate`` records/s across ``runs`` runs; marker latencies and CPU meanwhile."""
    flood_root = root / "flood"
    writers = [
        StatusWriter(flood_root / f"f{index:02d}" / "status.jsonl", rank=0) for index in range(runs)
    ]
    for writer in writers:
        writer.write(TrainUpdate(T.MAX_EPOCH, 1))
        writer.write(TrainUpdate(T.MAX_BATCH, 10**9))
        writer.write(TrainUpdate(T.STATE, TrainingState.TRAINING))
    marker_writer = StatusWriter(root / "sweep_0" / "run_0000" / "status.jsonl", rank=0)
    terminal = start(root)
    stop = threading.Event()
    written = [0]

    def pump() -> None:
        batch = 0
        next_time = time.perf_counter()
        while not stop.is_set():
            for writer in writers:  # 2 records per writer per round
                writer.write(TrainUpdate(T.BATCH, batch))
                writer.write(TrainUpdate(T.LOSS, 0.3))
            written[0] += 2 * len(writers)
            batch += 1
            next_time += 2 * len(writers) / rate
            time.sleep(max(0.0, next_time - time.perf_counter()))

    delays = []
    try:
        terminal.wait_for(loaded_marker(None))
        time.sleep(1.0)
        cpu_before, t0 = terminal.cpu_seconds(), time.perf_counter()
        thread = threading.Thread(target=pump, daemon=True)
        thread.start()
        index = 0
        while time.perf_counter() - t0 < seconds:
            index += 1
            value = 0.7 + index / 10_000
            since = terminal.mark()
            sent = time.perf_counter()
            marker_writer.write(TrainUpdate(T.LOSS, value))
            delays.append(terminal.wait_for(f"{value:.4g}".encode(), since, timeout=30) - sent)
            time.sleep(0.2)
        stop.set()
        thread.join()
        elapsed = time.perf_counter() - t0
        cpu = 100 * (terminal.cpu_seconds() - cpu_before) / elapsed
    finally:
        stop.set()
        terminal.quit()
        for writer in [*writers, marker_writer]:
            writer.close()
    return {
        "rate": written[0] / elapsed,
        "cpu": cpu,
        "median": statistics.median(delays),
        "max": max(delays),
        "markers": len(delays),
    }


def describe(delays: list[float]) -> str:
    ordered = sorted(delays)
    p90 = ordered[int(0.9 * (len(ordered) - 1))]
    return (
        f"median {1000 * statistics.median(delays):.0f} ms, p90 {1000 * p90:.0f} ms, "
        f"max {1000 * max(delays):.0f} ms (n={len(delays)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller and shorter")
    options = parser.parse_args()
    quick = options.quick
    n_runs, big, samples, idle_s, poll = (100, 100_000, 10, 3.0, 1.0) if quick else (
        500, 1_000_000, 30, 10.0, 1.0)  # fmt: skip

    with tempfile.TemporaryDirectory() as scratch:
        many = Path(scratch) / "many" / "runs"
        started = time.perf_counter()
        make_runs(many, n_runs)
        print(f"wrote {n_runs} runs in {time.perf_counter() - started:.1f} s")
        single = Path(scratch) / "single" / "runs"
        started = time.perf_counter()
        write_run(single / "huge", 1, big // 2, None)
        size = (single / "huge" / "status.jsonl").stat().st_size / 1e6
        print(
            f"wrote one run of {big:,} records ({size:.0f} MB) "
            f"in {time.perf_counter() - started:.1f} s"
        )

        print("first paint (target: < 1 s for 500 runs)")
        many_paint = first_paint(many, f"{n_runs} runs", n_runs)
        big_paint = first_paint(single, f"{big:,} records", 1)

        print("append-to-screen latency (targets: < 50 ms inotify, < poll + 100 ms polling)")
        inotify = latency(many, None, samples)
        print(f"  inotify: {describe(inotify)}")
        polled = latency(many, poll, samples)
        print(f"  --poll {poll:g}: {describe(polled)}")

        print(f"idle CPU with {n_runs} runs over {idle_s:g} s (target: < 2 %)")
        cpu, rss = idle_cpu(many, idle_s)
        print(
            f"  inotify, {n_runs // 10} training / rest finished: {cpu:.2f} % of a core, "
            f"RSS {rss:.0f} MB"
        )
        cpu_poll, _ = idle_cpu(many, idle_s, poll)
        print(f"  --poll {poll:g}: {cpu_poll:.2f} % of a core")
        cpu_poll, _ = idle_cpu(many, idle_s, DEFAULT_NETWORK_POLL)
        print(f"  --poll {DEFAULT_NETWORK_POLL:g} (the default on network filesystems): "
              f"{cpu_poll:.2f} % of a core")  # fmt: skip
        all_training = Path(scratch) / "training" / "runs"
        make_runs(all_training, n_runs, training_share=1.0)
        cpu_training, _ = idle_cpu(all_training, idle_s)
        print(
            f"  inotify, all {n_runs} TRAINING (elapsed/ETA tick every second): "
            f"{cpu_training:.2f} %"
        )

        print("flood: 10,000 records/s across 20 runs")
        result = flood(many, 3.0 if quick else 8.0)
        print(
            f"  {result['rate']:.0f} records/s written; TUI CPU {result['cpu']:.0f} % of a core; "
            f"marker latency median {1000 * result['median']:.0f} ms, "
            f"max {1000 * result['max']:.0f} ms (n={result['markers']:.0f})"
        )

        print("\nsummary")
        checks = [
            (f"first paint, {n_runs} runs (all listed)", many_paint["listed"], 1.0, "s"),
            (f"first paint, {n_runs} runs (all read, shown)", many_paint["loaded"], 1.0, "s"),
            ("append-to-screen median, inotify", statistics.median(inotify), 0.05, "s"),
            (
                f"append-to-screen median, --poll {poll:g}",
                statistics.median(polled),
                poll + 0.1,
                "s",
            ),
            (f"idle CPU, {n_runs} runs", cpu, 2.0, "%"),
        ]
        for name, value, target, unit in checks:
            verdict = "ok" if value < target else "MISSED"
            print(f"  {name:44s} {value:8.3f} {unit}  (target < {target:g} {unit})  {verdict}")
        records = f"{big:,} records"
        facts = [
            (f"first paint, {records} (first frame)", f"{big_paint['first']:8.3f} s"),
            (f"first paint, {records} (all read)", f"{big_paint['loaded']:8.3f} s"),
            (
                f"RSS, {n_runs} runs / {records}",
                f"{many_paint['rss']:.0f} / {big_paint['rss']:.0f} MB",
            ),
        ]
        for name, value in facts:
            print(f"  {name:44s} {value}")


if __name__ == "__main__":
    main()
