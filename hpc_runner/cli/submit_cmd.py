"""``hpc-runner submit JOB.yaml``: validate a job spec, write the run directory, submit the job."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hpc_runner.watch.events import EventCommand

CLUSTERS = ("auto", "slurm", "local", "debug")

EXAMPLES = """\
examples:
  hpc-runner submit job.yaml                      SLURM where sbatch is on PATH, else locally
  hpc-runner submit job.yaml --profile gpu        a cluster profile (hpc-runner profiles)
  hpc-runner submit job.yaml --cluster local --watch
                                                  train here, watch it, end with its PSNR
  hpc-runner submit job.yaml --cluster debug      train in this process (for a debugger)
  hpc-runner submit job.yaml --watch --on-event 'notify-send hpc-runner'

A spec whose run directory exists already gets a new one (NAME-2, NAME-3, ...); to continue
the earlier run instead: hpc-runner resume runs/NAME. Every key of a job spec:
slurm_templates/README.md; a commented example: examples/n2v_demo.yaml.
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "submit",
        help="submit a job spec to SLURM or a local process",
        description=(
            "Validate JOB.yaml (every problem at once, nothing written on error, exit code 2), "
            "write its run directory below the runs directory and submit the training."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("spec", type=Path, metavar="JOB.yaml", help="the job spec")
    parser.add_argument(
        "--cluster",
        choices=CLUSTERS,
        default="auto",
        help="where to run: slurm (sbatch), local (a process on this machine that outlives "
        "this command), debug (in this process, now: for pdb), auto = slurm where sbatch is "
        "on PATH, else local (default: auto)",
    )
    parser.add_argument(
        "--profile",
        help="cluster profile, replacing the spec's cluster.profile (list: hpc-runner profiles)",
    )
    parser.add_argument(
        "--runs-dir",
        type=Path,
        help="where run directories go (default: $HPC_RUNNER_RUNS_DIR or ./runs)",
    )
    parser.add_argument(
        "--watch",
        action="store_true",
        help="follow the run until it ends (the TUI on a terminal, progress lines otherwise), "
        "then print its summary: phase, time, PSNR, model path; q leaves early",
    )
    parser.add_argument(
        "--on-event",
        metavar="COMMAND",
        help="with --watch: run COMMAND (no shell) when the run ends; it gets "
        "HPC_RUNNER_RUN, HPC_RUNNER_PHASE, HPC_RUNNER_REASON, HPC_RUNNER_RUN_DIR",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hpc_runner.control.submit import run_debug, submit_specs
    from hpc_runner.errors import UsageError
    from hpc_runner.spec.job import load_job_spec
    from hpc_runner.stream.runs import default_runs_dir
    from hpc_runner.stream.text import terminal_safe
    from hpc_runner.watch.events import EventCommand

    if args.on_event is not None and not args.watch:
        raise UsageError("--on-event needs --watch (or use: hpc-runner watch --on-event ...)")
    on_event = EventCommand(args.on_event) if args.on_event is not None else None
    spec = load_job_spec(args.spec, profile=args.profile)
    for note in spec.notes:
        print(terminal_safe(f"note: {note}"), file=sys.stderr)
    runs_dir: Path = args.runs_dir or default_runs_dir()
    (submitted,) = submit_specs([spec], runs_dir, cluster=args.cluster)
    print(terminal_safe(f"run directory: {submitted.run_dir}", one_line=True))
    if submitted.run_dir.name != spec.name:
        earlier = submitted.run_dir.with_name(spec.name)
        print(
            terminal_safe(
                f"note: {earlier} exists already, so this is a new run, "
                f"{submitted.run_dir.name}; to continue the earlier one instead: "
                f"hpc-runner resume {earlier}",
                one_line=True,
            ),
            file=sys.stderr,
        )
    print(f"job: {submitted.job_id} ({submitted.scheduler})", flush=True)
    if submitted.scheduler == "debug":  # runs here and now; a failure ends in one line
        print(f"state: {run_debug(submitted)['state']}")
        return 0
    if args.watch:
        return watch(submitted.run_dir, on_event)
    return 0


def watch(run_dir: Path, on_event: EventCommand | None = None) -> int:
    """Follow the run to its end - the ``hpc-runner watch`` TUI on a terminal, progress lines
    otherwise (a full-screen UI makes no sense in a pipe or a log file) - then print its
    summary. Exit code 0 when it is DONE or STOPPED (or the user left it running), else 1."""
    from hpc_runner.stream.text import terminal_safe
    from hpc_runner.watch.follow import final_summary, follow_run

    command = on_event
    if sys.stdin.isatty() and sys.stdout.isatty():
        from hpc_runner.tui.app import WatchApp

        sys.stdout.flush()
        app = WatchApp(run_dir, on_event=command, exit_when_final=True)
        app.run()
        app.ends.wait()
    else:
        # the lines quote the node's messages and exception texts
        follow_run(
            run_dir,
            print_line=lambda line: print(terminal_safe(line), flush=True),
            on_event=command,
        )
        if command is not None:
            command.wait()
    lines, phase = final_summary(run_dir)
    print("")
    for line in lines:
        print(terminal_safe(line), flush=True)
    if phase.phase.live:
        return 0  # the user left; the run goes on
    return 0 if phase.phase.value in ("DONE", "STOPPED") else 1
