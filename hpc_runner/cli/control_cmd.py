"""``hpc-runner stop|cancel|resume|logs RUN``: control a submitted run.

RUN is a run directory, or a run name below the runs directory (``--runs-dir``,
``$HPC_RUNNER_RUNS_DIR`` or ``./runs``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hpc_runner.stream.text import terminal_safe


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    commands = {
        "stop": ("stop a run gracefully (after the current batch, with a checkpoint)", stop),
        "cancel": ("cancel a run's job through its scheduler (scancel)", cancel),
        "resume": ("submit a run's next attempt from its newest checkpoint", resume),
        "logs": ("show the stdout/stderr of a run's current job", logs),
    }
    for name, (help_text, func) in commands.items():
        parser = subparsers.add_parser(name, help=help_text, description=help_text + ".")
        parser.add_argument("run", metavar="RUN", help="run directory or run name")
        parser.add_argument(
            "--runs-dir", type=Path, help="where run names are looked up (default: ./runs)"
        )
        if name == "resume":
            parser.add_argument(
                "--cluster",
                choices=("auto", "slurm", "local", "debug"),
                help="where to run the new attempt (default: where the run ran)",
            )
        if name == "logs":
            parser.add_argument(
                "-n", "--lines", type=int, default=0, help="only the last N lines of each file"
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

    plan, job_id = resume_run(_run_dir(args), cluster=args.cluster)
    for line in plan.describe():
        print(terminal_safe(line))
    print(f"submitted: job {job_id}")
    return 0


def logs(args: argparse.Namespace) -> int:
    """Each log as a terminal would show it: colours dropped, progress-bar rewrites applied,
    other control characters escaped (``hpc_runner.stream.text.log_text``)."""
    from hpc_runner.control.jobs import log_files
    from hpc_runner.errors import HpcRunnerError
    from hpc_runner.stream.files import read_regular
    from hpc_runner.stream.text import log_text

    run_dir = _run_dir(args)
    files = log_files(run_dir, args.attempt)
    if not files:
        which = "its job" if args.attempt is None else f"attempt {args.attempt}"
        raise HpcRunnerError(f"{run_dir.name}: no log yet ({which} has written none)")
    for path in files:
        print(terminal_safe(f"==> {path} <==", one_line=True), flush=True)
        data = read_regular(path)
        if args.lines > 0:
            data = b"\n".join(data.splitlines()[-args.lines :]) + b"\n"
        sys.stdout.write(log_text(data.decode("utf-8", errors="replace")))
        sys.stdout.flush()
    return 0
