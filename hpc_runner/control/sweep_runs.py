"""What each run of a sweep directory was submitted with: the record a submission matches runs by
and ``status --summary`` credits results by.

Every run a sweep creates gets ``<run dir>/sweep_run.json`` before its job is submitted::

    {"version": 1, "sweep": "ident", "sweep_file": "/abs/sweep.yaml",
     "overrides": {"data.train": "d/a/noisy.tif"},           # as the sweep file wrote them
     "values": {"data.train": "/abs/d/a/noisy.tif"}}          # paths absolute: the identity

It lives and moves with the run, and nothing rewrites it. Runs made before it existed (one
sweep-wide ``sweep.yaml`` with ``runs: {name: overrides}``) are read from that file, resolved
against the sweep file it names, and checked against the run's own ``run.yaml`` for the keys it
holds verbatim (the data and ground-truth paths). Older hpc-runner versions rewrote those
entries by position when a sweep was reordered, so where ``run.yaml`` disagrees, its paths are
what the run trained on and the other entries of that run are not trusted (left out).
Submitting side and monitoring side alike; standard library and PyYAML only.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpc_runner.spec.sweep_names import run_identity
from hpc_runner.stream.files import read_regular, replace_file
from hpc_runner.stream.runs import RUN_SPEC_FILE, STATUS_FILE

if TYPE_CHECKING:
    from hpc_runner.spec.sweep import SweepRun, SweepSpec

#: The run's own record of its sweep values.
RUN_VALUES_FILE = "sweep_run.json"
RUN_VALUES_VERSION = 1
#: The sweep as submitted, in the sweep's directory.
SWEEP_FILE = "sweep.yaml"
SWEEP_FILE_VERSION = 1
#: Records larger than this are not read (a sweep.yaml of 10,000 runs is ~2 MB).
MAX_BYTES = 32 * 1024 * 1024
#: Sweep keys whose resolved value ``run.yaml`` holds as it is (section, key in run.yaml).
CONFIRMABLE = {
    "data.train": ("data", "train"),
    "data.val": ("data", "val"),
    "data.train_target": ("data", "train_target"),
    "data.val_target": ("data", "val_target"),
    "evaluate.ground_truth": ("evaluate", "ground_truth"),
}


@dataclass(frozen=True)
class RecordedRun:
    """The values a run directory of a sweep records.

    Attributes
    ----------
    run_dir : Path
        The run directory.
    overrides : dict
        The values as the sweep file wrote them (what results show); empty when unknown.
    values : dict
        The same with absolute paths; empty when unknown.
    complete : bool
        The record covers every key the run was made with (a run can be matched by it).
    where : str
        Where the record came from, for messages.
    """

    run_dir: Path
    overrides: dict[str, Any] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    complete: bool = False
    where: str = "no record of its values"

    @property
    def identity(self) -> str | None:
        """The run's identity, or None when its values are not (all) known. The recorded paths
        are spelled as a submission spells them now (``file.h5:g/d`` recorded by an older
        hpc-runner is ``file.h5:/g/d``), so that a run recorded then is found again."""
        if not self.complete:
            return None
        from hpc_runner.spec.sweep_check import resolved_values

        return run_identity(resolved_values(self.values, self.run_dir.parent))  # (absolute)


def write_run_values(
    run_dir: Path,
    *,
    sweep: str,
    sweep_file: str,
    overrides: dict[str, Any],
    values: dict[str, Any],
) -> None:
    """Write ``<run dir>/sweep_run.json`` (atomically: a reader never sees half of it)."""
    document = {
        "version": RUN_VALUES_VERSION,
        "sweep": sweep,
        "sweep_file": sweep_file,
        "overrides": overrides,
        "values": values,
    }
    text = json.dumps(document, indent=2, default=str) + "\n"
    replace_file(run_dir / RUN_VALUES_FILE, text.encode())  # (an unguessable temporary name)


def sweep_file_path(sweep: SweepSpec) -> str:
    """The sweep file, absolute (where relative paths of its values are resolved)."""
    return str(Path(sweep.directory) / Path(sweep.source).name)


def write_sweep_file(sweep: SweepSpec, sweep_dir: Path, runs: list[SweepRun]) -> Path:
    """Record the sweep and its runs' values in ``<sweep dir>/sweep.yaml`` (runs of earlier
    submissions of the sweep are kept), replacing the file atomically."""
    import yaml

    known = read_sweep_file(sweep_dir).get("runs")
    known = dict(known) if isinstance(known, dict) else {}
    known.update({run.name: run.overrides for run in runs})  # the names of their directories
    document = {
        "version": SWEEP_FILE_VERSION,
        "name": sweep.name,
        "source": sweep_file_path(sweep),
        "base": sweep.base,
        "grid": sweep.grid,
        "zip": sweep.zip,
        "cluster": {**sweep.cluster, "array_parallelism": sweep.array_parallelism},
        "runs": known,
    }
    sweep_dir.mkdir(parents=True, exist_ok=True)
    path = sweep_dir / SWEEP_FILE
    replace_file(path, yaml.dump(document, Dumper=_plain_dumper(), sort_keys=False).encode())
    return path


def _plain_dumper() -> type:
    import yaml

    class PlainDumper(yaml.SafeDumper):
        """Writes a value shared by several runs in full each time (no ``&id001`` anchors)."""

        def ignore_aliases(self, data: Any) -> bool:
            return True

    return PlainDumper


def read_sweep_file(sweep_dir: Path) -> dict[str, Any]:
    """``<sweep dir>/sweep.yaml`` as a mapping; empty when there is none or it is unreadable
    (the runs are still found from their status files)."""
    document = _read_yaml(Path(sweep_dir) / SWEEP_FILE)
    return document if isinstance(document, dict) else {}


def recorded_run(run_dir: Path, manifest: dict[str, Any] | None = None) -> RecordedRun:
    """What ``run_dir`` records about its values: its ``sweep_run.json``, else its entry in the
    sweep's ``sweep.yaml`` (``manifest``: that file read once for the whole sweep) checked
    against its ``run.yaml``."""
    own = _read_json(run_dir / RUN_VALUES_FILE)
    if own is not None:
        overrides, values = own.get("overrides"), own.get("values")
        if isinstance(overrides, dict) and isinstance(values, dict):
            return RecordedRun(run_dir, overrides, values, True, RUN_VALUES_FILE)
        return RecordedRun(run_dir, where=f"{RUN_VALUES_FILE} without its values")
    if manifest is None:
        manifest = read_sweep_file(run_dir.parent)
    entry = (manifest.get("runs") or {}).get(run_dir.name)
    if not isinstance(entry, dict):
        return RecordedRun(run_dir)
    return _legacy(run_dir, entry, manifest)


def recorded_runs(sweep_dir: Path) -> dict[Path, RecordedRun]:
    """Every run directory directly in ``sweep_dir`` (one with a ``run.yaml`` or a status file)
    and what it records."""
    manifest = read_sweep_file(sweep_dir)
    try:
        children = sorted(sweep_dir.iterdir())
    except OSError:  # no sweep directory yet
        return {}
    found = {}
    for child in children:
        if child.is_dir() and ((child / RUN_SPEC_FILE).exists() or (child / STATUS_FILE).exists()):
            found[child] = recorded_run(child, manifest)
    return found


def _legacy(run_dir: Path, entry: dict[str, Any], manifest: dict[str, Any]) -> RecordedRun:
    """A run of a sweep made before ``sweep_run.json``: ``sweep.yaml``'s entry, its paths
    resolved against the sweep file it names, checked against the run's ``run.yaml``."""
    from hpc_runner.spec.sweep_check import rebase_paths, resolved_values

    source = manifest.get("source")
    directory = Path(source).parent if isinstance(source, str) and source else run_dir.parent
    values = resolved_values(entry, directory)
    spec = _read_yaml(run_dir / RUN_SPEC_FILE)
    if not isinstance(spec, dict):
        return RecordedRun(run_dir, dict(entry), values, True, f"{SWEEP_FILE} (no run.yaml)")
    trained = {}
    for key, (section, name) in CONFIRMABLE.items():
        part = spec.get(section)
        if key in entry and isinstance(part, dict) and part.get(name) is not None:
            trained[key] = rebase_paths(key, part[name], directory)  # (spelled as values are)
    if all(values[key] == value for key, value in trained.items()):
        return RecordedRun(run_dir, dict(entry), values, True, SWEEP_FILE)
    # sweep.yaml was rewritten by position: only what run.yaml confirms is the run's own
    complete = set(trained) == set(entry)
    where = f"{SWEEP_FILE}, corrected by {RUN_SPEC_FILE}"
    return RecordedRun(run_dir, dict(trained), dict(trained), complete, where)


#: What a run trains with, among the sections of ``run.yaml``: the data and careamics'
#: configuration. (The cluster section is not: a longer time limit trains the same model.)
TRAINING_SECTIONS = ("data", "careamics")
#: careamics keys that name the run or the configuration's format, not what it trains.
NOT_TRAINING = {("careamics", "version"), ("careamics", "experiment_name")}
#: Mappings careamics passes on as the user gave them (to torch and Lightning), with no
#: defaults of its own: a key set on one side only is a difference there.
FREE_FORM = {
    ("careamics", "algorithm_config", "optimizer", "parameters"),
    ("careamics", "algorithm_config", "lr_scheduler", "parameters"),
    ("careamics", "training_config", "trainer_params"),
    ("careamics", "data_config", "train_dataloader_params"),
    ("careamics", "data_config", "val_dataloader_params"),
    ("careamics", "data_config", "pred_dataloader_params"),
}


class _Unset:
    """A key one side of :func:`training_changes` does not set."""

    def __repr__(self) -> str:
        return "unset"


UNSET: Any = _Unset()


def run_document(run_dir: Path, read: dict[Path, Any] | None = None) -> Any:
    """The run's ``run.yaml`` as read (None when missing or unreadable); ``read`` holds the
    documents read so far, so that one plan reads each run's file once."""
    if read is not None and run_dir in read:
        return read[run_dir]
    document = _read_yaml(run_dir / RUN_SPEC_FILE)
    if read is not None:
        read[run_dir] = document
    return document


def recorded_training(run_dir: Path, read: dict[Path, Any] | None = None) -> dict[str, Any] | None:
    """The data and careamics configuration a run was made with (its ``run.yaml``, through
    :func:`run_document`), or None when that file is missing or unreadable (then nothing can be
    said about them)."""
    spec = run_document(run_dir, read)
    if not isinstance(spec, dict):
        return None
    sections = {name: spec.get(name) for name in TRAINING_SECTIONS}
    return sections if all(isinstance(part, dict) for part in sections.values()) else None


def training_changes(
    recorded: Any, now: Any, path: tuple[str, ...] = ()
) -> list[tuple[str, Any, Any]]:
    """Where two trainings differ: (dotted key, recorded value, value now), in key order.

    Keys only one side has are passed over: an upgraded careamics adds fields with their
    defaults (or drops some) and trains the same, and a run must not be taken for another one
    because of it. Not so in the mappings of :data:`FREE_FORM`, which hold only what the user
    set (a learning rate set now, unset before, is :data:`UNSET` there). The keys of
    :data:`NOT_TRAINING` are passed over. Data sources compare in one spelling
    (:func:`~hpc_runner.data.sources.canonical_source`).
    """
    if path in NOT_TRAINING:
        return []
    if isinstance(recorded, dict) and isinstance(now, dict):
        free = path in FREE_FORM
        keys = [*recorded, *(key for key in now if key not in recorded)] if free else recorded
        return [
            change
            for key in keys
            if free or key in now
            for change in training_changes(
                recorded.get(key, UNSET), now.get(key, UNSET), (*path, str(key))
            )
        ]
    if isinstance(recorded, list) and isinstance(now, list) and len(recorded) == len(now):
        return [
            change
            for index, (old, new) in enumerate(zip(recorded, now, strict=True))
            for change in training_changes(old, new, (*path, str(index)))
        ]
    if path[:1] == ("data",) and isinstance(recorded, str) and isinstance(now, str):
        from hpc_runner.data.sources import canonical_source

        # (one dataset, however an older hpc-runner spelled its inner path: file.h5:g/d)
        recorded, now = canonical_source(recorded), canonical_source(now)
    if recorded == now and type(recorded) is type(now):
        return []
    numbers = isinstance(recorded, int | float) and isinstance(now, int | float)  # (bool too)
    if numbers and recorded == now and isinstance(recorded, bool) == isinstance(now, bool):
        return []  # 12 and 12.0 (YAML writes what JSON read), never True and 1
    return [(".".join(path), recorded, now)]


def _read_json(path: Path) -> dict[str, Any] | None:
    """The file's JSON object; None when there is no such file, ``{}`` when it is there but
    unreadable (then the run's values are unknown)."""
    if not os.path.lexists(path):
        return None
    text = _read_text(path)
    try:
        document = json.loads(text) if text is not None else None
    except (ValueError, RecursionError):
        return {}
    return document if isinstance(document, dict) else {}


def _read_yaml(path: Path) -> Any:
    import yaml

    from hpc_runner.spec.yaml_load import safe_load

    text = _read_text(path)
    try:
        return safe_load(text) if text is not None else None
    except (yaml.YAMLError, RecursionError):
        return None


def _read_text(path: Path) -> str | None:
    """A regular file's text (at most :data:`MAX_BYTES`), else None: run directories may hold
    anything (a FIFO would block the reader, a symlink loop raise)."""
    try:
        data = read_regular(path, MAX_BYTES + 1)  # opened non-blocking, checked after open
    except OSError:
        return None
    if len(data) > MAX_BYTES:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None
