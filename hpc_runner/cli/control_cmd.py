"""``hpc-runner stop|cancel|resume|logs RUN``: control a submitted run.

RUN is a run directory, or a run name below the runs directory (``--runs-dir``,
``$HPC_RUNNER_RUNS_DIR`` or ``./runs``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hpc_runner.watch.log_tail import LogTail

from hpc_runner.stream.text import terminal_safe

#: Each command's examples (``--help``).
EXAMPLES = {
    "stop": """\
examples:
  hpc-runner stop runs/n2v_demo        the training stops after its batch, saves a checkpoint
  hpc-runner stop n2v_demo             a run name, looked up below ./runs (or --runs-dir)
Only while the run starts, trains or stalls; hpc-runner resume continues it later.
""",
    "cancel": """\
examples:
  hpc-runner cancel runs/n2v_demo      scancel its job(s), or end its local process tree
  hpc-runner cancel lr=0.01 --runs-dir runs/n2v_demo_sweep
No checkpoint is written (hpc-runner stop is the graceful way).
""",
    "resume": """\
examples:
  hpc-runner resume runs/n2v_demo                   the next attempt, where the run ran before
  hpc-runner resume runs/n2v_demo --cluster local   ... as a local process this time
  hpc-runner resume runs/n2v_demo --cluster debug   ... in this process (for a debugger)
From the newest checkpoint; only when nothing runs any more and the run is not DONE. It
prints what it will do (attempt, checkpoint, the setup lines of your own profile).
""",
    "logs": """\
examples:
  hpc-runner logs runs/n2v_demo              stdout and stderr of the newest attempt's job
  hpc-runner logs runs/n2v_demo -n 50        their last 50 lines
  hpc-runner logs runs/n2v_demo -f           follow them as they grow (ctrl-c stops)
  hpc-runner logs runs/n2v_demo --attempt 0  the first attempt's (e.g. before a resume)
""",
}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    commands = {
        "stop": ("stop a run gracefully (after the current batch, with a checkpoint)", stop),
        "cancel": ("cancel a run's job through its scheduler (scancel)", cancel),
        "resume": ("submit a run's next attempt from its newest checkpoint", resume),
        "logs": ("show (or follow) the stdout/stderr of a run's own job", logs),
    }
    for name, (help_text, func) in commands.items():
        parser = subparsers.add_parser(
            name,
            help=help_text,
            description=help_text + ".",
            epilog=EXAMPLES[name],
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        parser.add_argument("run", metavar="RUN", help="run directory or run name")
        parser.add_argument(
            "--runs-dir", type=Path, help="where run names are looked up (default: ./runs)"
        )
        if name == "resume":
            parser.add_argument(
                "--cluster",
                choices=("auto", "slurm", "local", "debug"),
                help="where to run the new attempt: slurm, local (a process here), debug (in "
                "this process), auto = slurm where sbatch is on PATH (default: where it ran)",
            )
        if name == "logs":
            parser.add_argument(
                "-n", "--lines", type=int, default=0, help="only the last N lines of each file"
            )
            parser.add_argument(
                "-f",
                "--follow",
                action="store_true",
                help="keep printing what the logs gain, as tail -f (a later attempt's logs "
                "too); ctrl-c stops",
            )
            parser.add_argument(
                "--attempt",
                type=int,
                help="the logs of attempt N (default: the newest); requeued attempts of one "
                "job share its files",
            )
        parser.set_defaults(func=func)


def _run_dir(args: argparse.Namespace) -> Path:
    from hpc_runner.control.jobs import resolve_run

    return resolve_run(args.run, args.runs_dir)


def stop(args: argparse.Namespace) -> int:
    from hpc_runner.control.jobs import stop_run

    path = stop_run(_run_dir(args))
    print(
        terminal_safe(
            f"stop requested: {path} (the training stops after its current batch, checkpointed)"
        )
    )
    return 0


def cancel(args: argparse.Namespace) -> int:
    from hpc_runner.control.jobs import cancel_run

    print(terminal_safe(cancel_run(_run_dir(args))))
    return 0


def resume(args: argparse.Namespace) -> int:
    from hpc_runner.control.jobs import resume_run
    from hpc_runner.control.submit import run_debug

    plan, submitted = resume_run(_run_dir(args), cluster=args.cluster)
    for line in plan.describe():
        print(terminal_safe(line))
    print(f"submitted: job {submitted.job_id} ({submitted.scheduler})", flush=True)
    if submitted.scheduler == "debug":  # trains here and now, as submit's; said first
        print(f"state: {run_debug(submitted)['state']}")
    return 0


def logs(args: argparse.Namespace) -> int:
    """Each log as a terminal would show it: colours dropped, progress-bar rewrites applied,
    other control characters escaped (``hpc_runner.stream.text.log_text``)."""
    from hpc_runner.control.jobs import log_files
    from hpc_runner.errors import HpcRunnerError
    from hpc_runner.stream.files import read_regular
    from hpc_runner.stream.text import last_lines, log_text

    run_dir = _run_dir(args)
    if args.follow:
        return follow_logs(run_dir, args.attempt, args.lines)
    files = log_files(run_dir, args.attempt)
    if not files:
        which = "its job" if args.attempt is None else f"attempt {args.attempt}"
        raise HpcRunnerError(f"{run_dir.name}: no log yet ({which} has written none)")
    for path in files:
        print(terminal_safe(f"==> {path} <==", one_line=True), flush=True)
        text = log_text(read_regular(path).decode("utf-8", errors="replace"))
        sys.stdout.write(last_lines(text, args.lines) if args.lines > 0 else text)
        sys.stdout.flush()
    return 0


#: Seconds between two looks at the logs with ``--follow``.
FOLLOW_INTERVAL = 0.5


def follow_logs(run_dir: Path, attempt: int | None, last: int) -> int:
    """``logs -f``: what the run's own job logs hold (the last ``last`` lines of each, if
    given), then what they gain, until ctrl-c. Without ``--attempt``, the logs of a later
    attempt are followed as soon as its job writes them. Each line as a terminal would show
    it (``log_text``: colours dropped, ``\\r`` rewrites applied, controls escaped)."""
    import time

    from hpc_runner.control.jobs import log_files
    from hpc_runner.errors import HpcRunnerError
    from hpc_runner.stream.files import reason_of
    from hpc_runner.watch.log_tail import LogTail

    tails: dict[Path, LogTail] = {}
    header: Path | None = None
    waiting_said = False
    log_files(run_dir, attempt)  # a run without job.json, or no such attempt: said at once
    while True:
        try:
            files = log_files(run_dir, attempt)
        except HpcRunnerError:
            files = []  # job.json being rewritten by a resume: look again
        if not files and not tails and not waiting_said:
            print("(no log yet: waiting for its job to write one; ctrl-c stops)", file=sys.stderr)
            waiting_said = True
        for path in files:
            tail = tails.get(path)
            fresh = tail is None
            if tail is None:
                tail = tails[path] = LogTail(path, None if last <= 0 else max(64 << 10, last << 10))
            try:
                lines = _read_all(tail)
            except OSError as exc:
                print(terminal_safe(f"{path}: {reason_of(exc)}", one_line=True), file=sys.stderr)
                continue
            if fresh and last > 0:
                lines = lines[-last:]
            if not lines:
                continue
            if header != path:
                print(terminal_safe(f"==> {path} <==", one_line=True))
                header = path
            sys.stdout.write("".join(line + "\n" for line in lines))
            sys.stdout.flush()
        time.sleep(FOLLOW_INTERVAL)


def _read_all(tail: LogTail) -> list[str]:
    """Every complete line the tail has now (a large log is read in slices)."""
    lines: list[str] = []
    while True:
        chunk = tail.read()
        lines = chunk.lines if chunk.reset else lines + chunk.lines
        if not chunk.pending:
            return lines
