"""``hpc-runner sweep SWEEP.yaml``: expand a sweep, validate every run, submit them as one array."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from hpc_runner.stream.text import json_text, terminal_safe

CLUSTERS = ("auto", "slurm", "local", "debug")

EXAMPLES = """\
examples:
  hpc-runner sweep examples/sweep_demo.yaml --dry-run     the runs it would make, validated
  hpc-runner sweep examples/sweep_demo.yaml --watch       submit, watch, then the ranking
  hpc-runner sweep sweep.yaml --cluster local             every run as a local process
  hpc-runner sweep sweep.yaml --cluster debug             one after another in this process
  hpc-runner sweep sweep.yaml --only-failed               resubmit what crashed or was lost
  hpc-runner status runs/<sweep name> --summary           the runs ranked, the best model
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "sweep",
        help="submit every run of a sweep (a grid over a job spec) as one job array",
        description=(
            "Expand SWEEP.yaml (a base job spec, a grid and/or zip of values), validate every "
            "run, and submit the runs that do not exist yet as one job array into "
            "RUNS_DIR/<sweep name>/<run>. A run is its values: one that exists (a run "
            "directory records the same values, whatever its name) is skipped; --only-failed "
            "resubmits those that crashed, were cancelled or never started."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("sweep", type=Path, metavar="SWEEP.yaml", help="the sweep spec")
    parser.add_argument(
        "--dry-run", action="store_true", help="print the runs (validated), write nothing"
    )
    parser.add_argument("--json", action="store_true", help="with --dry-run: a JSON array")
    parser.add_argument(
        "--only-failed",
        action="store_true",
        help="resubmit runs that CRASHED, were cancelled or never started",
    )
    parser.add_argument(
        "--cluster",
        choices=CLUSTERS,
        default="auto",
        help="where to run: slurm (one job array), local (processes on this machine), debug "
        "(in this process, one run after another), auto = slurm where sbatch is on PATH, "
        "else local (default: auto)",
    )
    parser.add_argument(
        "--profile", help="cluster profile for every run (list: hpc-runner profiles)"
    )
    parser.add_argument(
        "--runs-dir",
        type=Path,
        help="where the sweep's directory goes (default: $HPC_RUNNER_RUNS_DIR or ./runs)",
    )
    parser.add_argument(
        "--watch",
        action="store_true",
        help="follow the sweep until every run ended (the TUI on a terminal, else a progress "
        "bar), then print the summary",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hpc_runner.control.sweep_submit import plan_sweep
    from hpc_runner.errors import UsageError
    from hpc_runner.spec.sweep_check import check_sweep
    from hpc_runner.spec.sweep_file import load_sweep
    from hpc_runner.stream.runs import default_runs_dir

    sweep = load_sweep(args.sweep)
    checked = check_sweep(sweep, profile=args.profile)
    sweep_dir: Path = (args.runs_dir or default_runs_dir()) / sweep.name
    plan = plan_sweep(checked, sweep_dir, only_failed=args.only_failed)
    for item in plan:
        if item.note:
            print(f"hpc-runner sweep: {item.note}", file=sys.stderr)
    if args.dry_run:
        print_plan(plan, as_json=args.json)
        return 0
    if args.json:
        raise UsageError("--json goes with --dry-run (a submission prints run directories)")
    for note in sorted({note for _, spec in checked for note in spec.notes}):
        print(terminal_safe(f"note: {note}"), file=sys.stderr)
    return submit(plan, sweep, sweep_dir, args)


def submit(plan: list[Any], sweep: Any, sweep_dir: Path, args: argparse.Namespace) -> int:
    from hpc_runner.control.sweep_submit import submit_plan

    skipped = [item for item in plan if item.action == "skip"]
    for item in skipped:
        print(terminal_safe(f"skipped {item.run.name}: {item.reason}", one_line=True))
    if len(skipped) == len(plan):
        hint = "" if args.only_failed else " (--only-failed resubmits failed ones)"
        print(terminal_safe(f"nothing to submit: all {len(plan)} runs of {sweep_dir} exist{hint}"))
        return watch(sweep_dir) if args.watch else 0
    submitted = submit_plan(plan, sweep, sweep_dir, cluster=args.cluster)
    print(terminal_safe(f"sweep directory: {sweep_dir.absolute()}", one_line=True))
    for item, one in zip([i for i in plan if i.action != "skip"], submitted, strict=True):
        again = f" ({item.reason}, attempt {item.attempt})" if item.action == "retry" else ""
        print(f"{item.run.name}: job {one.job_id}{again}")
    scheduler = submitted[0].scheduler
    throttle = ""
    if scheduler == "slurm" and sweep.array_parallelism:
        throttle = f": one job array, at most {sweep.array_parallelism} at once"
    elif scheduler == "local" and len(submitted) > 1:
        throttle = ": all at once, array_parallelism applies to SLURM only"
    print(f"{len(submitted)} runs submitted ({scheduler}{throttle})", flush=True)
    if scheduler == "debug":
        from hpc_runner.control.submit import run_debug

        for one in submitted:  # a failure ends in one line naming the run (run_debug)
            print(f"{one.run_dir.name}: {run_debug(one)['state']}")
    if args.watch:
        return watch(sweep_dir)
    return 0


def watch(sweep_dir: Path) -> int:
    """The ``hpc-runner watch`` TUI on a terminal; elsewhere a progress bar on stderr until
    every run has ended, then the ranked summary."""
    import os

    if sys.stdin.isatty() and sys.stdout.isatty():
        sys.stdout.flush()
        os.execv(sys.executable, [sys.executable, "-m", "hpc_runner", "watch", str(sweep_dir)])
    from hpc_runner.api import wait
    from hpc_runner.cli.summary import print_summary

    wait(sweep_dir, progress=True)
    return print_summary(sweep_dir)


def print_plan(plan: list[Any], *, as_json: bool) -> None:
    """The runs a submission would make: as text lines, or a JSON array for scripts."""
    if as_json:
        entries = [
            {
                "run": item.run.name,
                "overrides": item.run.overrides,
                "action": item.action,
                "reason": item.reason,
                "note": item.note,
            }
            for item in plan
        ]
        print(json_text(entries))
        return
    width = max((len(item.run.name) for item in plan), default=0)
    for item in plan:
        values = "  ".join(
            f"{key}={json.dumps(value)}" for key, value in item.run.overrides.items()
        )
        action = {"new": "", "retry": f"  [resubmit: {item.reason}]"}.get(
            item.action, f"  [skip: {item.reason}]"
        )
        print(terminal_safe(f"{item.run.name.ljust(width)}  {values}{action}", one_line=True))
    submitted = sum(item.action != "skip" for item in plan)
    print(f"{len(plan)} runs, {submitted} to submit (dry run: nothing written)")
