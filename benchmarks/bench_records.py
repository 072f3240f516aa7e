"""Cost of the status stream: writing records on the node, replaying files on the login node.

Run: ``python benchmarks/bench_records.py [--records N]``. Prints numbers and ratios, asserts
nothing (shared machines are noisy: each timing is the best of several repeats).

Targets (issue 2): writer <= 2 us per record and >= 4x cheaper than Lightning's CSVLogger per
logged step; replay of 1,000,000 records < 1.5 s and >= 3x a plain ``json.loads`` loop.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from hpc_runner.stream.records import make_record
from hpc_runner.stream.run_state import replay
from hpc_runner.stream.status import TrainingState, TrainUpdate, TrainUpdateType
from hpc_runner.stream.writer import StatusWriter

T = TrainUpdateType


def optional_orjson() -> object | None:
    """orjson when installed (a comparison only; the ``[dev]`` install does not bring it)."""
    try:
        import orjson
    except ImportError:
        return None
    return orjson


def best_of(repeats: int, run: Callable[[], float]) -> float:
    return min(run() for _ in range(repeats))


def bench_writer(folder: Path, n: int) -> float:
    """Seconds per record of StatusWriter.write (LOSS updates, the hot path)."""

    def run() -> float:
        path = folder / "writer.jsonl"
        path.unlink(missing_ok=True)
        writer = StatusWriter(path)
        update = TrainUpdate(T.LOSS, 0.123456)
        start = time.perf_counter()
        for _ in range(n):
            writer.write(update)
        elapsed = time.perf_counter() - start
        writer.close()
        return elapsed / n

    return best_of(5, run)


def bench_os_write(folder: Path, n: int) -> float:
    """Seconds per bare os.write of a ready, encoded line: the floor of any appending writer."""
    record = make_record(T.LOSS, 0.123456, t=time.time(), seq=1, attempt=0, host="node01")
    line = msgspec.json.encode(record) + b"\n"

    def run() -> float:
        path = folder / "bare.jsonl"
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        start = time.perf_counter()
        for _ in range(n):
            os.write(fd, line)
        elapsed = time.perf_counter() - start
        os.close(fd)
        return elapsed / n

    return best_of(5, run)


def bench_json_dumps_writer(folder: Path, n: int) -> float:
    """Seconds per record of the obvious stdlib writer: build a dict, json.dumps, os.write."""

    def run() -> float:
        path = folder / "stdlib.jsonl"
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        start = time.perf_counter()
        for seq in range(n):
            record = {"v": 1, "type": "loss", "value": 0.123456, "t": time.time(), "seq": seq}
            os.write(fd, (json.dumps(record) + "\n").encode())
        elapsed = time.perf_counter() - start
        os.close(fd)
        return elapsed / n

    return best_of(3, run)


def bench_csv_logger(folder: Path, n: int) -> float:
    """Seconds per logged step of Lightning's CSVLogger, saved every 100 steps as Lightning does."""
    from lightning.pytorch.loggers import CSVLogger

    def run() -> float:
        logger = CSVLogger(folder / "csv", name="bench")
        start = time.perf_counter()
        for step in range(n):
            logger.log_metrics({"train_loss_step": 0.123456, "epoch": 0}, step=step)
            if step % 100 == 99:
                logger.save()
        logger.finalize("success")
        return (time.perf_counter() - start) / n

    return best_of(3, run)


def write_status_file(path: Path, n_records: int) -> None:
    """A realistic file by the real writer: BATCH+LOSS per batch, EPOCH+VAL_LOSS per epoch."""
    batches = 500
    with StatusWriter(path) as writer:
        writer.write(TrainUpdate(T.MAX_EPOCH, 10**6))
        writer.write(TrainUpdate(T.MAX_BATCH, batches))
        writer.write(TrainUpdate(T.STATE, TrainingState.TRAINING))
        written, epoch = 3, 0
        while written < n_records:
            writer.write(TrainUpdate(T.EPOCH, epoch))
            written += 1
            for batch in range(batches):
                if written >= n_records - 1:
                    break
                writer.write(TrainUpdate(T.BATCH, batch))
                writer.write(TrainUpdate(T.LOSS, 1.0 / (1 + batch)))
                written += 2
            writer.write(TrainUpdate(T.VAL_LOSS, 0.5))
            written += 1
            epoch += 1


def bench_replay(path: Path) -> float:
    def run() -> float:
        start = time.perf_counter()
        replay(path)
        return time.perf_counter() - start

    return best_of(3, run)


def bench_plain_loop(path: Path, loads: Callable[[bytes], object]) -> float:
    def run() -> float:
        start = time.perf_counter()
        with path.open("rb") as file:
            for line in file:
                loads(line)
        return time.perf_counter() - start

    return best_of(2, run)


def bench_encode(n: int) -> dict[str, float]:
    """Seconds per record to encode one record with each candidate codec."""
    record = make_record(T.LOSS, 0.123456, t=time.time(), seq=12345, attempt=0, host="node01")
    as_dict = {"type": "loss", **msgspec.structs.asdict(record)}
    encoder, buffer = msgspec.json.Encoder(), bytearray()
    candidates: dict[str, Callable[[], object]] = {
        "json.dumps(dict)": lambda: json.dumps(as_dict),
        "msgspec encode_into(Struct)": lambda: encoder.encode_into(record, buffer),
    }
    orjson: Any = optional_orjson()
    if orjson is not None:
        candidates["orjson.dumps(dict)"] = lambda: orjson.dumps(as_dict)
    results = {}
    for name, encode in candidates.items():

        def run(encode: Callable[[], object] = encode) -> float:
            start = time.perf_counter()
            for _ in range(n):
                encode()
            return (time.perf_counter() - start) / n

        results[name] = best_of(5, run)
    return results


def bench_status_startup(folder: Path) -> float:
    empty = folder / "empty"
    empty.mkdir(exist_ok=True)
    command = [sys.executable, "-m", "hpc_runner", "status", str(empty)]

    def run() -> float:
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        return time.perf_counter() - start

    return best_of(5, run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="records in replay file")
    parser.add_argument("--writes", type=int, default=100_000, help="records per writer timing")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        folder = Path(tmp)
        print("== writing (per record, best of several runs) ==")
        writer = bench_writer(folder, args.writes)
        bare = bench_os_write(folder, args.writes)
        stdlib = bench_json_dumps_writer(folder, args.writes)
        csv = bench_csv_logger(folder, args.writes)
        print(f"StatusWriter.write              {writer * 1e6:7.2f} us/record")
        print(f"bare os.write of a ready line   {bare * 1e6:7.2f} us/record")
        print(f"dict + json.dumps + os.write    {stdlib * 1e6:7.2f} us/record")
        print(f"Lightning CSVLogger             {csv * 1e6:7.2f} us/step")
        print(f"-> writer vs CSVLogger: {csv / writer:.1f}x cheaper (target >= 4x, <= 2 us)")
        print(f"-> writer overhead over bare os.write: {(writer - bare) * 1e6:.2f} us")

        print("\n== encoding one record (codec choice) ==")
        for name, seconds in bench_encode(200_000).items():
            print(f"{name:30s} {seconds * 1e6:7.2f} us")

        path = folder / "status.jsonl"
        write_status_file(path, args.records)
        size_mb = path.stat().st_size / 1e6
        print(f"\n== replay of {args.records:,} records ({size_mb:.0f} MB) ==")
        ours = bench_replay(path)
        plain = bench_plain_loop(path, json.loads)
        rows = [("replay() into RunState", ours), ("plain json.loads loop", plain)]
        orjson: Any = optional_orjson()
        if orjson is not None:
            rows.append(("plain orjson.loads loop", bench_plain_loop(path, orjson.loads)))
        else:
            print("(orjson not installed: its row is left out)")
        for label, seconds in rows:
            rate = args.records / seconds / 1e6
            print(f"{label:30s} {seconds:6.2f} s  {rate:5.2f} M records/s")
        print(f"-> replay vs json.loads loop: {plain / ours:.1f}x (target >= 3x, < 1.5 s)")

        print("\n== start-up ==")
        startup = bench_status_startup(folder)
        print(f"hpc-runner status on an empty dir  {startup * 1e3:6.0f} ms (best of 5)")


if __name__ == "__main__":
    main()
