"""Fuzzing ``hpc-runner status --json`` over trees of hostile run directories (issue 10).

Each example builds a tree of runs whose ``status.jsonl`` is a regular file, a FIFO, a directory,
a symlink (to a file, to nothing, to itself, to its own directory), a device, and whose content
mixes good records with binary noise, a line over the size limit, deep ``[[[[`` nesting, invalid
UTF-8 and a truncated last line. Whatever the tree, the command exits 0 within the subprocess
timeout (a hang fails the example; this is not a speed assertion), lists every run directory,
and reports each readable run's state from its good records.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

STATES = ("IDLE", "TRAINING", "DONE", "STOPPED", "CRASHED")
SKIPPED_NAMES = {"status.jsonl"}


def record(kind: str, value: object, seq: int = 0) -> bytes:
    line = {"v": 1, "type": kind, "value": value, "t": 1.0 + seq, "seq": seq, "attempt": 0}
    return json.dumps(line).encode() + b"\n"


#: Junk that must be skipped (and counted) without hiding what follows it.
JUNK = {
    "binary": st.binary(max_size=300).map(lambda data: data.replace(b"\n", b" ") + b"\n"),
    "huge_line": st.just(b"x" * (1 << 20 | 4096) + b"\n"),
    "deep": st.integers(900, 60_000).map(lambda depth: b"[" * depth + b"\n"),
    "deep_object": st.integers(900, 20_000).map(lambda depth: b'{"a":' * depth + b"\n"),
    "invalid_utf8": st.just(record("debug message", "x")[:-30] + b"\xff\xfe\xc0\n"),
    "bad_value": st.just(record("epoch_idx", "three")),
    "newer": st.just(record("loss", 0.5).replace(b'"v": 1', b'"v": 99')),
    "unknown_type": st.just(record("mystery", 1)),
    # integers beyond 64 bits: JSON allows them, the reader cache's MessagePack does not (the
    # cache's encoder raised OverflowError and status printed a traceback)
    "huge_int": st.sampled_from([2**64, -(2**63) - 1, 10**30]).map(
        lambda n: record("epoch_idx", n)
    ),
    "huge_seq": st.just(record("loss", 0.5, seq=2**70)),
    "huge_extension": st.just(record("environment", {"mem_bytes": 2**70, "cpus": 4})),
    "huge_sample": st.just(record("system", {"rss_bytes": 10**40})),
}

#: What a status.jsonl can be besides a regular file, and whether its run must report an error.
SPECIAL = {
    "fifo": True,
    "directory": True,
    "symlink_loop": True,
    "dir_symlink": True,
    "device": True,
    "dangling": False,  # nothing there yet: an IDLE run, as for a job still queued
}

names = st.text(
    st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=12,
).filter(lambda name: not name.startswith(".") and name not in SKIPPED_NAMES)


@st.composite
def runs(draw: st.DrawFn) -> dict[str, tuple[str, bytes, str]]:
    """{label: (kind, content, expected state)} for up to 8 runs, some inside a sweep folder."""
    labels = draw(st.lists(names, min_size=1, max_size=8, unique_by=str.casefold))
    tree = {}
    for index, name in enumerate(labels):
        label = f"sweep/{name}" if draw(st.booleans()) and name != "sweep" else name
        kind = draw(st.sampled_from(["regular", "regular", "symlink", *SPECIAL]))
        states = draw(st.lists(st.sampled_from(STATES), max_size=3))
        lines = [record("max_epochs", 5)] + [record("state", s, n) for n, s in enumerate(states)]
        junk = draw(st.lists(st.sampled_from(sorted(JUNK)), max_size=3))
        for position, name_of_junk in enumerate(junk):
            lines.insert(position % (len(lines) + 1), draw(JUNK[name_of_junk]))
        content = b"".join(lines)
        if draw(st.booleans()):  # a last line still being written: not applied yet
            content += record("state", "CRASHED", 99)[: draw(st.integers(1, 40))]
        tree[f"{label}#{index}"] = (kind, content, states[-1] if states else "IDLE")
    return tree


def build(root: Path, tree: dict[str, tuple[str, bytes, str]]) -> dict[str, tuple[str, str]]:
    """Write the tree; returns {run label: (kind, expected state)}."""
    expected = {}
    for key, (kind, content, state) in tree.items():
        label = key.rsplit("#", 1)[0]
        if label in expected or any(other.startswith(label + "/") for other in expected):
            continue  # "sweep" both a run and a folder of runs: keep the first
        run_dir = root / label
        run_dir.mkdir(parents=True, exist_ok=True)
        status = run_dir / "status.jsonl"
        if kind == "regular":
            status.write_bytes(content)
        elif kind == "symlink":
            target = root.parent / f"elsewhere-{len(expected)}.jsonl"
            target.write_bytes(content)
            status.symlink_to(target)
        elif kind == "fifo":
            os.mkfifo(status)
        elif kind == "directory":
            status.mkdir()
        elif kind == "symlink_loop":
            status.symlink_to(status.name)
        elif kind == "dir_symlink":
            status.symlink_to(".")
        elif kind == "device":
            status.symlink_to("/dev/zero")
        elif kind == "dangling":
            status.symlink_to(root.parent / "nowhere")
        expected[label] = (kind, state if kind in ("regular", "symlink") else "IDLE")
    return expected


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(tree=runs())
def test_status_json_lists_every_run_whatever_the_files(
    tree: dict[str, tuple[str, bytes, str]],
) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "runs"
        root.mkdir()
        expected = build(root, tree)
        answer = subprocess.run(
            [sys.executable, "-m", "hpc_runner", "status", str(root), "--json"],
            capture_output=True,
            timeout=60,  # a FIFO opened for reading blocked forever before the fix
            check=False,
        )
        assert answer.returncode == 0, answer.stderr.decode(errors="replace")
        listed = {entry["run"]: entry for entry in json.loads(answer.stdout)}
        assert set(listed) == set(expected)
        for label, (kind, state) in expected.items():
            entry = listed[label]
            assert entry["state"] == state, (label, kind, entry)
            assert (entry["error"] is not None) is SPECIAL.get(kind, False), (label, kind, entry)
