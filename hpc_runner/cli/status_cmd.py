"""``hpc-runner status [DIR] [--json|--csv] [--summary]``: every run below DIR, rebuilt from its
status file; ``--summary`` ranks them (a sweep) by best validation loss."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

EXAMPLES = """\
examples:
  hpc-runner status runs                       one line per run: phase, progress, losses, PSNR
  hpc-runner status runs --json                one JSON object per run (keys: see the README)
  hpc-runner status runs/n2v_demo_sweep --summary
                                               a sweep's runs ranked (PSNR, else val_loss)
  hpc-runner status runs/n2v_demo_sweep --summary --csv > results.csv
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "status",
        help="show every run below DIR",
        description="One line (or, with --json, one JSON object) per run directory below DIR.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("dir", nargs="?", type=Path, help="runs directory (default: ./runs)")
    parser.add_argument("--json", action="store_true", help="print a JSON array for scripts")
    parser.add_argument(
        "--summary",
        action="store_true",
        help="rank the runs (a sweep) by PSNR against the spec's ground truth where every "
        "finished run has one, else by best val_loss, and name the best run's model",
    )
    parser.add_argument(
        "--csv",
        action="store_true",
        help="print CSV (rows as with --json; text cells safe for spreadsheets)",
    )
    parser.add_argument(
        "--no-cache",
        dest="cache",
        action="store_false",
        help="read every status file from its start, bypassing the reader cache "
        "($XDG_CACHE_HOME/hpc-runner, default ~/.cache/hpc-runner)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hpc_runner.errors import UsageError
    from hpc_runner.stream.runs import default_runs_dir
    from hpc_runner.stream.text import json_text
    from hpc_runner.watch.report import summaries as run_summaries

    root: Path = args.dir or default_runs_dir()
    if not root.is_dir():
        raise UsageError(f"{root}: no such directory (give the runs directory, e.g. ./runs)")
    if args.json and args.csv:
        raise UsageError("choose one of --json and --csv")
    if args.summary:
        from hpc_runner.cli.summary import print_summary

        return print_summary(root, as_json=args.json, as_csv=args.csv, cache=args.cache)
    summaries = run_summaries(root, cache=args.cache)
    if args.json:
        print(json_text(summaries))
    elif args.csv:
        from hpc_runner.cli.summary import status_csv

        print(status_csv(summaries), end="")
    else:
        print_table(summaries, root)
    return 0


COLUMNS = ("RUN", "PHASE", "EPOCH", "BATCH", "LOSS", "VAL_LOSS", "GPU%", "MEM", "ATTEMPT", "REASON")
#: Shown after VAL_LOSS when some run has a PSNR (its spec names a ground truth).
PSNR_COLUMN = "PSNR"


def _printable(text: str) -> str:
    """Names come from the filesystem: show control characters escaped, never interpret them."""
    from hpc_runner.stream.text import cell_text

    return cell_text(text)


def _progress(index: int, total: int) -> str:
    if index < 0:
        return "-"
    return f"{index + 1}/{total}" if total > 0 else str(index + 1)


def table_row(summary: dict[str, Any], psnr: bool = False) -> tuple[str, ...]:
    from hpc_runner.watch.numbers import format_loss
    from hpc_runner.watch.resources import gpu_cell, memory_cell

    resources = summary.get("resources")
    cells = [
        _printable(summary["run"]),
        summary["phase"],
        _progress(summary["epoch_idx"], summary["max_epochs"]),
        _progress(summary["batch_idx"], summary["max_batches"]),
        format_loss(summary["loss"]),
        format_loss(summary["val_loss"]),
        gpu_cell(resources),
        memory_cell(resources),
        str(summary["attempt"]),
        _printable(summary["reason"] or "-"),
    ]
    if psnr:
        cells.insert(6, "-" if summary.get("psnr") is None else f"{summary['psnr']:.2f}")
    return tuple(cells)


def print_table(summaries: list[dict[str, Any]], root: Path) -> None:
    if not summaries:
        print(f"no runs below {_printable(str(root))}")
        return
    psnr = any(summary.get("psnr") is not None for summary in summaries)
    header = (*COLUMNS[:6], PSNR_COLUMN, *COLUMNS[6:]) if psnr else COLUMNS
    rows = [header, *(table_row(summary, psnr) for summary in summaries)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    for summary in summaries:
        if summary.get("error"):
            print(_printable(f"{summary['run']}: {summary['error']}"))
        if summary.get("time_limit_warning"):
            print(_printable(f"{summary['run']}: time limit: {summary['time_limit_warning']}"))
