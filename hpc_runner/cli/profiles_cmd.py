"""``hpc-runner profiles [NAME] [--json]``: the cluster profiles in slurm_templates/.

Without NAME, one line per profile; with NAME, the sbatch script header submitit would write
for it, so a user can check partition, gres and setup lines before submitting anything.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "profiles",
        help="list the cluster profiles",
        description="List the cluster profiles found in $HPC_RUNNER_TEMPLATES, ./slurm_templates "
        "and the installed slurm_templates/; with NAME, show the sbatch script it produces.",
    )
    parser.add_argument("name", nargs="?", help="show this profile's sbatch script")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from hpc_runner.spec.profiles import (
        executor_parameters,
        list_profiles,
        load_profile,
        sbatch_preview,
        templates_dirs,
    )
    from hpc_runner.stream.runs import default_runs_dir
    from hpc_runner.stream.text import terminal_safe

    if args.name:
        profile = load_profile(args.name)
        if args.json:
            print(terminal_safe(json.dumps(_as_json(profile, executor_parameters), indent=2)))
        else:
            header = f"# {profile.name}: {profile.description} ({profile.source})"
            print(terminal_safe(header, one_line=True))
            folder = default_runs_dir().absolute() / "RUN" / "submitit" / "%j"
            preview = sbatch_preview(profile, folder, job_name="RUN", python=sys.executable)
            print(terminal_safe(preview))
        return 0
    profiles = list_profiles()
    if args.json:
        print(
            terminal_safe(
                json.dumps([_as_json(p, executor_parameters) for p in profiles], indent=2)
            )
        )
        return 0
    if not profiles:
        dirs = ", ".join(str(d) for d in templates_dirs())
        print(terminal_safe(f"no profiles found (searched {dirs})"), file=sys.stderr)
        return 0
    rows: list[tuple[str, ...]] = [
        ("NAME", "PARTITION", "GPUS", "CPUS", "MEM", "TIME", "DESCRIPTION")
    ]
    rows += [tuple(terminal_safe(cell, one_line=True) for cell in _row(p)) for p in profiles]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1]]).rstrip())
    return 0


def _row(profile: Any) -> tuple[str, ...]:
    gpus = profile.gres or str(profile.gpus_per_node)
    mem = "-" if profile.mem_gb is None else f"{profile.mem_gb:g}G"
    hours, minutes = divmod(profile.timeout_min, 60)
    return (
        profile.name,
        profile.partition or "(default)",
        gpus,
        str(profile.cpus_per_task or "all"),
        mem,
        f"{hours}:{minutes:02d}",
        profile.description,
    )


def _as_json(profile: Any, executor_parameters: Any) -> dict[str, Any]:
    return {
        "name": profile.name,
        **profile.to_dict(),
        "source": profile.source,
        "slurm_parameters": executor_parameters(profile, "slurm"),
    }
