"""Check the monitor's GPU figures on a GPU machine against ``nvidia-smi``: run it as is there.

What it does:

1. prints the ``environment`` record's GPU facts (names, memory, driver, CUDA) next to what
   ``nvidia-smi`` says about the same devices (matched by UUID, so ``CUDA_VISIBLE_DEVICES`` and
   SLURM's renumbering are taken into account);
2. trains a small N2V model on the GPU with sampling every second, while this script asks
   ``nvidia-smi`` every second too; then prints each ``system`` sample's utilisation and memory
   next to the ``nvidia-smi`` reading nearest in time.

Utilisation is NVML's busy share over the driver's last sample period (1/6 s to 1 s), so the two
columns agree within a few percent when the load is steady, and may differ at an epoch's edge;
memory used should agree to the MiB (both read the same counter). Needs ``nvidia-ml-py``
(``pip install nvidia-ml-py``) and a CUDA build of torch. On a machine without GPU it says so
and exits 1.

Run: ``python benchmarks/gpu_check.py [--epochs 5] [--size 1024]`` (e.g. inside
``srun --gres=gpu:1 --pty``).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

MIB = 1 << 20
QUERY = "uuid,index,name,utilization.gpu,memory.used,memory.total,driver_version"


def smi() -> list[dict[str, str]]:
    """One ``nvidia-smi`` reading of every GPU (memory in MiB, as it prints it)."""
    answer = subprocess.run(
        ["nvidia-smi", f"--query-gpu={QUERY}", "--format=csv,noheader,nounits"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    keys = QUERY.split(",")
    rows = [
        dict(zip(keys, (c.strip() for c in line.split(",")), strict=True))
        for line in answer.stdout.splitlines()
        if line.strip()
    ]
    return rows


def job_uuids() -> list[str]:
    """The UUIDs of the GPUs the job sees, in CUDA's order (what the samples' indices mean)."""
    from hpc_runner.node.gpus import Gpus

    gpus, why = Gpus.open()
    if gpus is None:
        sys.exit(f"no GPU to check: {why or 'CUDA_VISIBLE_DEVICES is empty'}")
    uuids = [_text(gpus.nvml.nvmlDeviceGetUUID(handle)) for handle in gpus.handles]
    gpus.close()
    return uuids


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def check_environment(uuids: list[str]) -> None:
    from hpc_runner.node.environment import collect_environment

    value, notes = collect_environment(job="gpu-check")
    by_uuid = {row["uuid"]: row for row in smi()}
    print(f"torch {value.torch}, CUDA {value.cuda}, available {value.cuda_available}")
    driver = next(iter(by_uuid.values()))["driver_version"] if by_uuid else "-"
    print(f"driver: environment {value.nvidia_driver}, nvidia-smi {driver}")
    print(f"{'GPU':>3}  {'environment record':<40}  {'nvidia-smi':<40}")
    for gpu in value.gpus or []:
        row = by_uuid.get(uuids[gpu.index], {}) if gpu.index < len(uuids) else {}
        ours = f"{gpu.name}, {(gpu.memory_total_bytes or 0) // MIB} MiB"
        theirs = f"{row.get('name', '?')}, {row.get('memory.total', '?')} MiB (#{row.get('index')})"
        print(f"{gpu.index:>3}  {ours:<40}  {theirs:<40}")
    for note in notes:
        print(f"note: {note}")


def check_samples(uuids: list[str], epochs: int, size: int) -> None:
    from careamics.config import create_advanced_n2v_config

    from hpc_runner.node.training import train_with_status
    from hpc_runner.stream.records import SystemRecord, decode_lines

    readings: list[tuple[float, dict[str, dict[str, str]]]] = []
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            readings.append((time.time(), {row["uuid"]: row for row in smi()}))
            done.wait(1.0)

    config = create_advanced_n2v_config(
        experiment_name="gpu_check",
        data_type="array",
        axes="YX",
        patch_size=(128, 128),
        batch_size=32,
        num_epochs=epochs,
        seed=42,
    )
    image = np.random.default_rng(0).random((size, size), dtype=np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        status = Path(tmp) / "status.jsonl"
        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        try:
            train_with_status(status, config=config, train_data=image, monitor_interval_s=1.0)
        finally:
            done.set()
            poller.join()
        records, _ = decode_lines(status.read_bytes().splitlines())
    samples = [r.value for r in records if isinstance(r, SystemRecord)]
    print(f"\n{len(samples)} samples; util % and memory used MiB: monitor | nvidia-smi (nearest)")
    print(
        f"{'t':>6} {'GPU':>3}  {'util':>5} {'mem':>7} | {'util':>5} {'mem':>7}  {'torch peak':>10}"
    )
    start = samples[0].time if samples and samples[0].time else 0.0
    for sample in samples:
        if not sample.gpus or sample.time is None:
            print(f"{(sample.time or start) - start:6.1f}   -  no GPU figures in this sample")
            continue
        nearest = min(readings, key=lambda reading: abs(reading[0] - sample.time))[1]
        peak = sample.torch_peak_bytes
        for gpu in sample.gpus:
            row = nearest.get(uuids[gpu.index], {}) if gpu.index < len(uuids) else {}
            used = (gpu.mem_used_bytes or 0) // MIB
            theirs = f"{row.get('utilization.gpu', '?'):>5} {row.get('memory.used', '?'):>7}"
            torch_peak = "-" if peak is None else f"{peak // MIB} MiB"
            moment = f"{sample.time - start:6.1f} {gpu.index:>3}"
            print(f"{moment}  {gpu.util_percent or 0:5.0f} {used:7d} | {theirs}  {torch_peak:>10}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--size", type=int, default=1024, help="image side (pixels)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    if shutil.which("nvidia-smi") is None:
        sys.exit("nvidia-smi not found: run this on a GPU node")
    uuids = job_uuids()
    check_environment(uuids)
    check_samples(uuids, args.epochs, args.size)


if __name__ == "__main__":
    main()
