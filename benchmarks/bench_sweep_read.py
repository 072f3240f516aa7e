"""How fast a big sweep is read: ``status --json`` and ``watch`` against ``cat | wc -l``.

Builds a sweep of 200 runs x ~50,000 records (100 epochs x 250 batches, as a long training writes
them) with the real :class:`~hpc_runner.stream.writer.StatusWriter`, then times, side by side in
one run, each as its own process:

- ``cat */status.jsonl | wc -l``: the cost of reading the bytes once, the yardstick;
- ``status --json`` of the code before the reader cache (``--baseline-rev``, extracted with
  ``git archive``), and ``status --json --no-cache`` of this code;
- ``status --json`` with an empty cache (first call), again with nothing appended, and again after
  appending 1 % to every file;
- ``watch``, the real command in a pseudo-terminal (see bench_tui.py), until every run is read and
  shown, with an empty cache and with a warm one; its RSS then and at its peak;
- in-process, how the first read scales: one process, threads, worker processes (spawn, fork);
- the detail view of one run of 1,000,000 records: from the key press to its curves on screen.

Targets (issue 15): repeated call <= 2x ``cat | wc``; after 1 % appended <= 3x; first call >= 2x
faster than before; watch all-read <= first-call status + 0.5 s, RSS <= 150 MB. The machine may be
shared: each measurement is repeated (``--repeat``) and the median printed, with the load average.

Run: ``python benchmarks/bench_sweep_read.py`` (builds 1.2 GB in a temporary directory, about ten
minutes; ``--runs 40 --repeat 1`` for a quick look; ``--dir DIR`` keeps the sweep for next time).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench_tui import Terminal, write_run

from hpc_runner.stream.run_reader import RunReader
from hpc_runner.stream.run_state import replay
from hpc_runner.stream.status import TrainingState, TrainUpdate, TrainUpdateType
from hpc_runner.stream.writer import StatusWriter

T = TrainUpdateType
REPO = Path(__file__).resolve().parent.parent
#: The last commit before the reader cache (issue 15): what "before" means.
BASELINE_REV = "f373b47"


def build_sweep(root: Path, runs: int, epochs: int, batches: int) -> None:
    """``runs`` runs written by the real writer; every other one finished (DONE)."""
    for index in range(runs):
        run_dir = root / f"run_{index:03d}"
        if not (run_dir / "status.jsonl").exists():
            final = TrainingState.DONE if index % 2 else None
            write_run(run_dir, epochs, batches, final)


def append_share(root: Path, share: float) -> int:
    """Append ``share`` of each file's records (batch + loss pairs); records appended in all."""
    added = 0
    for status in sorted(root.glob("*/status.jsonl")):
        with status.open("rb") as file:
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: file.read(1 << 20), b""))
        writer = StatusWriter(status, job="1000_1", rank=0)
        for batch in range(max(1, int(lines * share)) // 2):
            writer.write(TrainUpdate(T.BATCH, batch))
            writer.write(TrainUpdate(T.LOSS, 0.3))
            added += 2
        writer.close()
    return added


def timed(
    command: list[str] | str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> tuple[float, float]:
    """Wall and CPU seconds (user + system, children included) of a command. ``cwd`` matters:
    ``python -m`` imports from the current directory first (run from the repository, the
    baseline would silently be this code)."""
    before = os.times()
    start = time.perf_counter()
    subprocess.run(
        command,
        shell=isinstance(command, str),
        check=True,
        stdout=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )
    wall = time.perf_counter() - start
    after = os.times()
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return wall, cpu


def status_command(root: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "hpc_runner", "status", str(root), "--json", *extra]


def baseline_tree(rev: str, into: Path) -> Path | None:
    """The package as it was at ``rev`` (``git archive``), or None without git or the commit."""
    try:
        into.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", rev, "hpc_runner"],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return into


def watch_read(root: Path, env: dict[str, str]) -> tuple[float, float, float]:
    """Seconds until ``watch`` shows every run read; its RSS then and its peak RSS (MB)."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        terminal = Terminal([str(root)], cwd=root.parent)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    try:
        loaded = terminal.wait_for(b"inotify", timeout=600) - terminal.started
        rss, peak = memory_mb(terminal.process.pid)
    finally:
        terminal.quit()
    return loaded, rss, peak


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def detail_view(root: Path, env: dict[str, str]) -> tuple[float, float, float]:
    """Open the detail view of the only run (Enter); seconds until its curves are drawn, RSS."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        terminal = Terminal([str(root)], cwd=root.parent)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    try:
        terminal.wait_for(b"inotify", timeout=600)
        time.sleep(0.5)
        since = terminal.mark()
        pressed = time.perf_counter()
        os.write(terminal.master, b"\r")
        # A braille cell (U+2800-U+28FF: e2 a0-a3 xx in UTF-8) is a plotted point.
        shown = min(
            terminal.wait_for(prefix, since, timeout=60) for prefix in (b"\xe2\xa1", b"\xe2\xa2")
        )
        time.sleep(0.5)
        rss, peak = memory_mb(terminal.process.pid)
    finally:
        terminal.quit()
    return shown - pressed, rss, peak


def in_process(root: Path) -> dict[str, float]:
    """Seconds to read every run from the start: here, threads, worker processes."""
    paths = sorted(root.glob("*/status.jsonl"))

    def serial() -> None:
        with RunReader(cache=False, workers=0) as reader:
            reader.submit(paths)
            while reader.pending:
                reader.collect()

    def threads() -> None:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(replay, paths))

    def processes(method: str) -> Callable[[], None]:
        def run() -> None:
            with RunReader(
                cache=False, workers=2, start_method=method, parallel_min_bytes=0
            ) as reader:
                reader.submit(paths)
                while reader.pending:
                    reader.collect()

        return run

    ways = {
        "one process": serial,
        "2 threads": threads,
        "2 worker processes (spawn)": processes("spawn"),
        "2 worker processes (fork)": processes("fork"),
    }
    results = {}
    for name, way in ways.items():
        start = time.perf_counter()
        way()
        results[name] = time.perf_counter() - start
    return results


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=100, help="epochs per run (250 batches)")
    parser.add_argument("--repeat", type=int, default=3, help="measure this many times")
    parser.add_argument("--dir", type=Path, help="build (or reuse) the sweep here")
    parser.add_argument("--baseline-rev", default=BASELINE_REV, help="the code before (git)")
    parser.add_argument("--skip-detail", action="store_true", help="no 1M-record detail view")
    options = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    try:
        root = options.dir or scratch / "sweep"
        started = time.perf_counter()
        build_sweep(root, options.runs, options.epochs, 250)
        files = sorted(root.glob("*/status.jsonl"))
        size = sum(path.stat().st_size for path in files) / 1e6
        print(f"sweep: {len(files)} runs, {size:.0f} MB ({time.perf_counter() - started:.0f} s)")
        print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}, "
              f"{os.cpu_count()} CPUs")  # fmt: skip
        cache = scratch / "cache"
        env = {"XDG_CACHE_HOME": str(cache)}
        baseline = baseline_tree(options.baseline_rev, scratch / "baseline")
        cat = f"cat {root}/*/status.jsonl | wc -l"
        rows: dict[str, list[tuple[float, float]]] = {}

        def measure(name: str, command: list[str] | str, extra: dict[str, str] | None = None):
            rows.setdefault(name, []).append(timed(command, {**env, **(extra or {})}, scratch))

        watch: dict[str, list[tuple[float, float, float]]] = {"cold": [], "warm": []}
        for round_ in range(options.repeat):
            print(f"round {round_ + 1}/{options.repeat} ...", flush=True)
            measure("cat | wc -l", cat)
            if baseline is not None:
                measure(f"status --json, code of {options.baseline_rev}",
                        status_command(root), {"PYTHONPATH": str(baseline)})  # fmt: skip
            measure("status --json --no-cache", status_command(root, "--no-cache"))
            shutil.rmtree(cache, ignore_errors=True)
            measure("status --json, first call", status_command(root))
            measure("status --json, repeated", status_command(root))
            append_share(root, 0.01)
            measure("status --json, after 1 % appended", status_command(root))
            shutil.rmtree(cache, ignore_errors=True)
            watch["cold"].append(watch_read(root, env))
            watch["warm"].append(watch_read(root, env))

        cat_wall = median([wall for wall, _ in rows["cat | wc -l"]])
        print(f"\n== medians of {options.repeat} ({len(files)} runs, {size:.0f} MB) ==")
        print(f"{'':44s} {'wall s':>8s} {'cpu s':>8s} {'x cat':>7s}")
        for name, samples in rows.items():
            wall = median([w for w, _ in samples])
            cpu = median([c for _, c in samples])
            print(f"{name:44s} {wall:8.2f} {cpu:8.2f} {wall / cat_wall:7.1f}")
        for name, samples3 in watch.items():
            loaded = median([s[0] for s in samples3])
            rss = median([s[1] for s in samples3])
            peak = median([s[2] for s in samples3])
            print(f"{'watch all read, ' + name + ' cache':44s} {loaded:8.2f} {'':8s} "
                  f"{loaded / cat_wall:7.1f}   RSS {rss:.0f} MB, peak {peak:.0f} MB")  # fmt: skip

        first = median([w for w, _ in rows["status --json, first call"]])
        repeated = median([w for w, _ in rows["status --json, repeated"]])
        appended = median([w for w, _ in rows["status --json, after 1 % appended"]])
        before_key = f"status --json, code of {options.baseline_rev}"
        before = median([w for w, _ in rows[before_key]]) if before_key in rows else float("nan")
        cold = median([s[0] for s in watch["cold"]])
        peak = max(s[2] for samples3 in watch.values() for s in samples3)
        print("\n== targets ==")
        checks = [
            ("repeated <= 2x cat | wc", repeated / cat_wall, 2.0, "x"),
            ("after 1 % appended <= 3x cat | wc", appended / cat_wall, 3.0, "x"),
            ("first call >= 2x faster than before", before / first, 2.0, "x faster"),
            ("watch all read (cold) <= first call + 0.5 s", cold - first, 0.5, "s over"),
            ("watch RSS (peak) <= 150 MB", peak, 150.0, "MB"),
        ]
        for name, value, target, unit in checks:
            met = value >= target if "faster" in unit else value <= target
            print(f"  {name:46s} {value:7.2f} {unit:9s} {'ok' if met else 'MISSED'}")

        print("\n== first read in one process, reading every run from its start ==")
        for name, seconds in in_process(root).items():
            print(f"  {name:32s} {seconds:6.2f} s")

        if not options.skip_detail:
            single = scratch / "single" / "runs"
            write_run(single / "huge", 1, 500_000, None)
            shutil.rmtree(cache, ignore_errors=True)
            opened, rss, peak_detail = detail_view(single, env)
            print("\n== detail view of one run of 1,000,000 records ==")
            print(f"  key press to curves on screen {opened:.2f} s; RSS {rss:.0f} MB, "
                  f"peak {peak_detail:.0f} MB")  # fmt: skip
        print(f"\nload average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
