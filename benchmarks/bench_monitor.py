"""Cost of the resource monitor: a real careamics training with sampling off, every 10 s, every 1 s.

Each round trains the same N2V model (same seed, same data) three times in one process, once
per setting, in an order that rotates from round to round so that a neighbour's job on a shared
machine weighs on every setting alike; the best time of each setting over the rounds is
compared with sampling off. The losses of every training are compared too: sampling must not
change a single one.

On a shared machine a neighbour's job moves a training's time by more than 1 %, so the
monitor's own costs are also measured directly, which no neighbour blurs much: the batch hooks
the training thread runs at every step (microseconds), and one sample of the sampler thread
(it holds the GIL while psutil and NVML answer); the overhead they add up to is that hook time
per step time plus one sample's time per interval.

Run: ``python benchmarks/bench_monitor.py [--rounds 3] [--epochs 4] [--size 512]`` (about
three minutes with the defaults on a free laptop core). Prints numbers, asserts nothing.
Target (issue 12): < 1 % overhead at 10 s.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

SETTINGS = (("off", 0.0), ("every 10 s", 10.0), ("every 1 s", 1.0))


def config(epochs: int) -> Any:
    """An N2V configuration a CPU trains in a few tens of seconds (64x64 patches)."""
    from careamics.config import create_advanced_n2v_config

    return create_advanced_n2v_config(
        experiment_name="bench_monitor",
        data_type="array",
        axes="YX",
        patch_size=(64, 64),
        batch_size=8,
        num_epochs=epochs,
        n_val_patches=4,
        seed=42,
    )


def train(folder: Path, image: np.ndarray, epochs: int, interval_s: float) -> tuple[float, list]:
    """Seconds one training takes (from building the CAREamist to its end), and its losses."""
    from hpc_runner.node.training import train_with_status
    from hpc_runner.stream.run_state import replay

    status = folder / "status.jsonl"
    start = time.perf_counter()
    train_with_status(
        status, config=config(epochs), train_data=image, monitor_interval_s=interval_s
    )
    took = time.perf_counter() - start
    run = replay(status)
    return took, [list(run.losses), run.resources.samples]


def direct_costs(folder: Path, repeats: int = 20_000) -> tuple[float, float]:
    """Seconds the training thread spends in the monitor's hooks per step, and seconds one
    sample takes (psutil over this process tree; NVML too where there is a GPU)."""
    from types import SimpleNamespace

    from hpc_runner.node.callback import StatusCallback
    from hpc_runner.node.monitor import ResourceMonitor, Sampler

    monitor = ResourceMonitor(StatusCallback(folder / "status.jsonl"), 10.0)
    batch = (SimpleNamespace(shape=(8, 1, 64, 64)),)
    trainer = module = None
    start = time.perf_counter()
    for index in range(repeats):
        monitor.on_train_batch_start(trainer, module, batch, index)  # type: ignore[arg-type]
        monitor.on_train_batch_end(trainer, module, None, batch, index)  # type: ignore[arg-type]
    hooks = (time.perf_counter() - start) / repeats
    sampler = Sampler(monitor)
    sampler._open()
    count = 50
    start = time.perf_counter()
    for _ in range(count):
        sampler.sample()
    one_sample = (time.perf_counter() - start) / count
    monitor.drain()
    monitor.status.writer.close()
    return hooks, one_sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--size", type=int, default=512, help="image side (pixels)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    image = np.random.default_rng(0).random((args.size, args.size), dtype=np.float32)
    times: dict[str, list[float]] = {name: [] for name, _ in SETTINGS}
    losses: dict[str, list[float]] = {}
    samples: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        train(Path(tmp) / "warm-up", image, 1, 0.0)  # imports, first allocations
        for round_index in range(args.rounds):
            shift = round_index % len(SETTINGS)
            for name, interval in SETTINGS[shift:] + SETTINGS[:shift]:
                folder = Path(tmp) / f"{round_index}-{interval}"
                took, (run_losses, run_samples) = train(folder, image, args.epochs, interval)
                times[name].append(took)
                losses.setdefault(name, run_losses)
                samples[name] = run_samples
                print(f"round {round_index + 1}: sampling {name:<10} {took:7.2f} s", flush=True)
    base = min(times["off"])
    print(f"\n{args.epochs} epochs of a {args.size}x{args.size} image, best of {args.rounds}:")
    for name, _ in SETTINGS:
        best = min(times[name])
        overhead = 100.0 * (best - base) / base
        note = "" if name == "off" else f"  overhead {overhead:+.2f} %"
        print(f"  sampling {name:<10} {best:7.2f} s  ({samples[name]} samples){note}")
    same = all(values == losses["off"] for values in losses.values())
    steps = len(losses["off"])
    print(f"losses identical with sampling on and off: {same} ({steps} steps)")
    with tempfile.TemporaryDirectory() as tmp:
        hooks, one_sample = direct_costs(Path(tmp))
    step = base / steps  # an upper bound: set-up and validation are in it
    print(
        f"\ndirect costs: hooks {hooks * 1e6:.1f} us per step, one sample {one_sample * 1e3:.2f} ms"
    )
    for name, interval in SETTINGS[1:]:
        share = hooks / step + one_sample / interval
        print(f"  sampling {name:<10} overhead {100 * share:.3f} % (at {step:.3f} s per step)")


if __name__ == "__main__":
    main()
