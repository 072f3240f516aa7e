"""``hpc-runner profiles [NAME] [--json]`` and ``hpc-runner profiles new NAME ...``.

Without NAME, one line per profile and the file it comes from (and the files it shadows); with
NAME, the sbatch script submitit would write for it, so a user can check partition, gres and
setup lines before submitting anything. ``new`` writes a profile (see :mod:`.profiles_new`).
A broken profile file is reported, one line per problem, and does not hide the others.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

from hpc_runner.errors import UsageError

USAGE = (
    "hpc-runner profiles [--json] [NAME]\n"
    "       hpc-runner profiles new NAME [--from-slurm] [--partition P] [--force]"
)

EXAMPLES = """\
examples:
  hpc-runner profiles                          every profile, its file, what it shadows
  hpc-runner profiles gpu                      the sbatch script the gpu profile produces
  hpc-runner profiles new mine --from-slurm    a profile for this cluster, asked of SLURM
  hpc-runner submit job.yaml --profile mine    ... then use it
Every profile field: slurm_templates/README.md.
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "profiles",
        help="list, show or write cluster profiles",
        usage=USAGE,
        description="List the cluster profiles, each with the file it comes from. Searched in "
        "this order, a later place overriding an earlier one by name: the profiles shipped "
        "with hpc-runner, the site's ($HPC_RUNNER_SITE_PROFILES, default "
        "/etc/hpc-runner/profiles), the user's ($XDG_CONFIG_HOME/hpc-runner/profiles, default "
        "~/.config/hpc-runner/profiles), ./slurm_templates, then $HPC_RUNNER_TEMPLATES. With "
        "NAME, show the sbatch script the profile produces. `new NAME` writes a commented "
        "profile into the user's directory (--from-slurm: filled in from sinfo and scontrol).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("name", nargs="?", metavar="NAME", help="show this profile's sbatch script")
    parser.add_argument("new_name", nargs="?", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    parser.add_argument(
        "--from-slurm",
        action="store_true",
        help="new: ask the cluster (sinfo, scontrol; read-only) for partition, GPU, CPUs, "
        "memory and time limit",
    )
    parser.add_argument("--partition", metavar="P", help="new: use partition P")
    parser.add_argument("--force", action="store_true", help="new: replace an existing file")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.name == "new":
        if not args.new_name:
            raise UsageError("profiles new: give the new profile's NAME (usage: " + USAGE + ")")
        from hpc_runner.cli.profiles_new import write_new_profile

        return write_new_profile(args.new_name, args.from_slurm, args.partition, args.force)
    wrong = [flag for flag in ("from_slurm", "partition", "force") if getattr(args, flag)]
    if args.new_name or wrong:
        extra = args.new_name or "--" + wrong[0].replace("_", "-")
        raise UsageError(f"profiles: '{extra}' only goes with `profiles new NAME` ({USAGE})")
    if args.name:
        return show(args.name, args.json)
    return list_all(args.json)


def show(name: str, as_json: bool) -> int:

    from hpc_runner.spec.profile_search import scan_profiles
    from hpc_runner.spec.profiles import (
        executor_parameters,
        job_python,
        load_profile,
        sbatch_preview,
    )
    from hpc_runner.stream.runs import default_runs_dir
    from hpc_runner.stream.text import json_text

    profile = load_profile(name)
    found = scan_profiles().files.get(name)
    if as_json:
        print(json_text(_as_json(profile, found, executor_parameters)))
        return 0
    origin = f"{found.place}: {found.path}" if found else profile.source
    if found and found.shadows:
        origin += "; shadows " + "; ".join(f"{place}: {path}" for place, path in found.shadows)
    _print(f"# {profile.name}: {profile.description} ({origin})")
    folder = default_runs_dir().absolute() / "RUN" / "submitit" / "%j"
    python = shlex.join(job_python())
    _print(sbatch_preview(profile, folder, job_name="RUN", python=python))
    return 0


def list_all(as_json: bool) -> int:

    from hpc_runner.spec.errors import SpecError
    from hpc_runner.spec.profiles import executor_parameters, find_profiles
    from hpc_runner.stream.text import json_text

    listing = find_profiles()
    files = listing.scan.files
    if as_json:
        listed = [_as_json(p, files[p.name], executor_parameters) for p in listing.profiles]
        print(json_text(listed))
    elif listing.profiles:
        print_table(listing.profiles, files)
    else:
        _print(f"no profiles found (searched {listing.scan.searched()})", file=sys.stderr)
    if listing.problems:  # after the good ones, so a broken file hides nothing
        raise SpecError(listing.problems)
    return 0


def print_table(profiles: list[Any], files: dict[str, Any]) -> None:
    """One row per profile, its file on the line below, then the search order."""
    rows: list[tuple[str, ...]] = [
        ("NAME", "PARTITION", "GPUS", "CPUS", "MEM", "TIME", "DESCRIPTION")
    ]
    rows += [_row(profile) for profile in profiles]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for index, row in enumerate(rows):
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        _print("  ".join([*cells, row[-1]]).rstrip())
        if index:
            found = files[row[0]]
            line = f"    {found.place}: {found.path}"
            for place, path in found.shadows:
                line += f"\n      shadows {place}: {path}"
            _print(line)
    from hpc_runner.spec.profile_search import search_dirs

    _print("searched, a later place overriding an earlier one by name:")
    for directory in search_dirs():
        _print(f"    {directory.describe()}")


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


def _as_json(profile: Any, found: Any, executor_parameters: Any) -> dict[str, Any]:
    return {
        "name": profile.name,
        **profile.to_dict(),
        "source": profile.source,
        "place": found.place if found else None,
        "shadows": [{"place": place, "path": str(path)} for place, path in found.shadows]
        if found
        else [],
        "slurm_parameters": executor_parameters(profile, "slurm"),
    }


def _print(text: str, file: Any = None) -> None:
    """Profiles are files anyone may have written (a site's, a project's): what they say is
    shown with control characters escaped (:func:`hpc_runner.stream.text.terminal_safe`)."""
    from hpc_runner.stream.text import terminal_safe

    print(terminal_safe(text), file=file)
