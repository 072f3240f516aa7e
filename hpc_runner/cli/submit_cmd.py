"""``hpc-runner submit JOB.yaml``: validate a job spec, write the run directory, submit the job."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

CLUSTERS = ("auto", "slurm", "local", "debug")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "submit",
        help="submit a job spec to SLURM or a local process",
        description=(
            "Validate JOB.yaml, write its run directory below the runs directory and submit "
            "the training. --cluster auto uses SLURM where sbatch is on PATH, else a local "
            "process that keeps running after this command returns."
        ),
    )
    parser.add_argument("spec", type=Path, metavar="JOB.yaml", help="the job spec")
    parser.add_argument(
        "--cluster", choices=CLUSTERS, default="auto", help="where to run (default: auto)"
    )
    parser.add_argument("--profile", help="cluster profile (replaces the spec's cluster.profile)")
    parser.add_argument(
        "--runs-dir",
        type=Path,
        help="where run directories go (default: $HPC_RUNNER_RUNS_DIR or ./runs)",
    )
    parser.add_argument(
        "--watch", action="store_true", help="follow the run until it ends (the TUI if available)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hpc_runner.control.submit import run_debug, submit_specs
    from hpc_runner.errors import HpcRunnerError
    from hpc_runner.spec.job import load_job_spec
    from hpc_runner.stream.runs import default_runs_dir
    from hpc_runner.stream.text import terminal_safe

    spec = load_job_spec(args.spec, profile=args.profile)
    for note in spec.notes:
        print(terminal_safe(f"note: {note}"), file=sys.stderr)
    runs_dir: Path = args.runs_dir or default_runs_dir()
    (submitted,) = submit_specs([spec], runs_dir, cluster=args.cluster)
    print(terminal_safe(f"run directory: {submitted.run_dir}", one_line=True))
    print(f"job: {submitted.job_id} ({submitted.scheduler})", flush=True)
    if submitted.scheduler == "debug":  # runs here and now
        try:
            result = run_debug(submitted)
        except Exception as exc:  # the training's own error; the status file has the traceback
            raise HpcRunnerError(f"the training failed: {type(exc).__name__}: {exc}") from None
        print(f"state: {result['state']}")
        return 0
    if args.watch:
        return watch(submitted.run_dir)
    return 0


def watch(run_dir: Path) -> int:
    """Hand over to the ``hpc-runner watch`` TUI on a terminal, else print progress lines until
    the run ends (a full-screen UI makes no sense in a pipe or a log file)."""
    tui = importlib.util.find_spec("hpc_runner.cli.watch_cmd") is not None
    if tui and sys.stdin.isatty() and sys.stdout.isatty():
        sys.stdout.flush()
        os.execv(sys.executable, [sys.executable, "-m", "hpc_runner", "watch", str(run_dir)])
    from hpc_runner.control.phase import Phase
    from hpc_runner.stream.text import terminal_safe
    from hpc_runner.watch.follow import follow_run

    # the lines quote the node's messages and exception texts
    final = follow_run(run_dir, print_line=lambda line: print(terminal_safe(line), flush=True))
    return 0 if final.phase in (Phase.DONE, Phase.STOPPED) else 1
