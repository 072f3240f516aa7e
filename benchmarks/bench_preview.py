"""Cost of preview pictures: the README demo's training with previews at the default rate vs off.

Run: ``python benchmarks/bench_preview.py [--repeats N]``. Trains the demo (``examples/
n2v_demo.yaml``: 30 epochs, 10 previews of a 192x192 crop by default) through the node's own
path (``run.yaml`` -> ``_prepare`` -> ``preview_callback`` -> ``train_with_status``), alternating
previews off and on, and prints each training's wall time, the best and median of each mode,
and the time spent inside the preview callback itself (the overhead without the machine's
noise). Asserts nothing: shared machines are noisy.

``--quick`` (for a busy machine, where whole trainings take too long to compare): one short
training of the demo with a preview after every epoch; prints the mean cost of a preview and of
an epoch without it, and their projection to the demo's default (10 previews in 30 epochs).

Target (issue 13): previews at the default rate cost < 2 % of the training time.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def demo_spec(folder: Path) -> Any:
    """The demo's job spec, its data written into ``folder``."""
    from hpc_runner.spec.job import load_job_spec

    shutil.copy(EXAMPLES / "n2v_demo.yaml", folder)
    subprocess.run(
        [sys.executable, str(EXAMPLES / "make_demo_data.py"), "--out", str(folder / "data")],
        check=True,
        capture_output=True,
    )
    return load_job_spec(folder / "n2v_demo.yaml")


def train_once(
    spec: Any, run_dir: Path, previews: bool, epochs: int | None = None, every: int | None = None
) -> tuple[float, float, int]:
    """Train one run; (training seconds, seconds inside the preview callback, previews written)."""
    from hpc_runner.node.callback import StatusCallback
    from hpc_runner.node.job import _prepare
    from hpc_runner.node.preview import PreviewCallback, preview_callback
    from hpc_runner.node.training import train_with_status
    from hpc_runner.spec.job import dump_run_spec
    from hpc_runner.spec.preview_section import PreviewSpec
    from hpc_runner.stream.runs import RUN_SPEC_FILE, STATUS_FILE

    run_dir.mkdir(parents=True)
    spec = dataclasses.replace(spec, preview=PreviewSpec(enabled=previews, every_n_epochs=every))
    (run_dir / RUN_SPEC_FILE).write_text(dump_run_spec(spec))
    spec, config, train_kwargs = _prepare(run_dir, resume=False)
    status = StatusCallback(run_dir / STATUS_FILE)
    preview = preview_callback(spec, run_dir, train_kwargs, status)
    spent = [0.0]
    if preview is not None:
        time_hooks(preview, spent)
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # Lightning's model summary
        train_with_status(
            run_dir / STATUS_FILE,
            config=config,
            status_callback=status,
            callbacks=[preview] if preview is not None else [],
            enable_progress_bar=False,
            max_epochs=epochs,
            **train_kwargs,
        )
    elapsed = time.perf_counter() - start
    written = len(preview.written) if isinstance(preview, PreviewCallback) else 0
    return elapsed, spent[0], written


def time_hooks(callback: Any, spent: list[float]) -> None:
    """Make ``callback`` add the time its hooks take: the crop read at the start, the previews
    at epoch ends."""
    for name in ("on_train_start", "on_train_epoch_end"):
        hook = getattr(callback, name)

        def timed(trainer: Any, module: Any, hook: Any = hook) -> None:
            start = time.perf_counter()
            hook(trainer, module)
            spent[0] += time.perf_counter() - start

        setattr(callback, name, timed)


def quick(spec: Any, folder: Path, epochs: int) -> None:
    """A preview after every epoch of a short training: the cost of one preview vs one epoch."""
    from hpc_runner.spec.preview_section import DEFAULT_PREVIEWS

    elapsed, spent, written = train_once(spec, folder / "quick", True, epochs=epochs, every=1)
    per_preview = spent / written
    per_epoch = (elapsed - spent) / epochs
    demo_epochs = spec.careamics["training_config"]["trainer_params"]["max_epochs"]
    projected = DEFAULT_PREVIEWS * per_preview / (demo_epochs * per_epoch)
    print(
        f"{epochs} epochs, {written} previews: {per_preview:.3f} s a preview, "
        f"{per_epoch:.3f} s an epoch without it; at the default rate ({DEFAULT_PREVIEWS} "
        f"previews in {demo_epochs} epochs): {100 * projected:.2f} % (target < 2 %)",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="trainings per mode (default 3)")
    parser.add_argument(
        "--quick", type=int, metavar="EPOCHS", help="one short training, a preview every epoch"
    )
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats: 1 or more")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        spec = demo_spec(folder)
        train_once(spec, folder / "warm-up", True, epochs=2)  # imports, first-call costs
        if args.quick:
            quick(spec, folder, args.quick)
            return 0
        times: dict[bool, list[float]] = {False: [], True: []}
        inside: list[float] = []
        for repeat in range(args.repeats):
            for previews in (False, True):
                name = f"{'on' if previews else 'off'}-{repeat}"
                elapsed, spent, written = train_once(spec, folder / name, previews)
                times[previews].append(elapsed)
                if previews:
                    inside.append(spent / elapsed)
                print(
                    f"previews {'on ' if previews else 'off'}: {elapsed:6.2f} s"
                    + (f"  ({written} previews, {spent:.2f} s inside them)" if previews else ""),
                    flush=True,
                )
    off, on = times[False], times[True]
    print(f"off: best {min(off):.2f} s, median {statistics.median(off):.2f} s")
    print(f"on:  best {min(on):.2f} s, median {statistics.median(on):.2f} s")
    print(
        f"overhead: best {100 * (min(on) / min(off) - 1):+.2f} %, "
        f"median {100 * (statistics.median(on) / statistics.median(off) - 1):+.2f} %, "
        f"time inside the previews {100 * statistics.median(inside):.2f} % of the training "
        "(target < 2 %)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
