"""A scripted sweep over the demo job, end to end: build, submit, wait, rank, use the best model.

    python examples/make_demo_data.py       # once: writes examples/data/{noisy,clean}.tif
    python examples/sweep_script.py         # SLURM (one job array) where sbatch exists, else local

Four runs (learning rate x N2V2) of examples/n2v_demo.yaml go out as one job array, a progress
bar follows them, the runs are ranked by their best validation loss, and the best model is
loaded back to denoise the demo image (with its PSNR against the clean image). Run it again and
it submits nothing new (the runs exist) but still waits, ranks and denoises.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from hpc_runner import Sweep
from hpc_runner.api import best

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, default=HERE / "n2v_demo.yaml", help="job spec")
    parser.add_argument("--epochs", type=int, default=12, help="epochs of every run")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"), help="where runs go")
    parser.add_argument("--cluster", default="auto", help="auto, slurm, local or debug")
    args = parser.parse_args()

    sweep = Sweep(
        base=args.base,
        grid={
            "training.optimizer_params.lr": [2e-4, 1e-3],  # Adam's learning rate
            "training.use_n2v2": [False, True],
            "training.epochs": [args.epochs],  # one value: every run (and in every name)
        },
        name="n2v_script_sweep",
        cluster={"array_parallelism": 2},  # at most 2 runs at once on SLURM
    )
    for run in sweep.expand():
        print(f"{run.name}: {run.overrides}")

    submitted = sweep.submit(args.runs_dir, cluster=args.cluster)
    print(f"{len(submitted)} runs submitted to {sweep.directory}")
    rows = sweep.wait(progress=True)  # a progress bar until every run has ended

    print(f"{'rank':>4}  {'run':<32} {'state':<8} {'best val_loss':>13}  epochs")
    for row in rows:
        loss = "-" if row["best_val_loss"] is None else f"{row['best_val_loss']:.4f}"
        rank = row["rank"] or "-"
        print(f"{rank:>4}  {row['run']:<32} {row['state']:<8} {loss:>13}  {row['epoch']}")
    winner = best(rows)
    if winner is None:
        raise SystemExit("no run finished with a validation loss")
    print(f"best: {winner['run']} -> {winner['model']}")
    denoise_with(winner, args.base)


def denoise_with(winner: dict[str, object], base: Path) -> None:
    """Load the best model (careamics is imported only now) and denoise the training image."""
    from hpc_runner.data.sources import load_source, psnr
    from hpc_runner.spec.job import load_job_spec
    from hpc_runner.stream.records import ModelLocation

    spec = load_job_spec(base)
    with tempfile.TemporaryDirectory() as scratch:  # careamics wants a work_dir
        model = ModelLocation(checkpoint=str(winner["model"]), work_dir=scratch)
        careamist = model.load_careamist()
        noisy = load_source(spec.data.train)
        (denoised,), _ = careamist.predict(pred_data=noisy, data_type="array")
    print(f"denoised {Path(spec.data.train).name}: {denoised.squeeze().shape}")
    if spec.ground_truth:
        clean = load_source(spec.ground_truth)
        print(f"PSNR {psnr(noisy, clean):.2f} dB -> {psnr(denoised, clean):.2f} dB")


if __name__ == "__main__":
    main()
