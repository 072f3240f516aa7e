"""The reader cache: per status file, the folded state and where in the file it stands.

``hpc-runner status`` over a sweep of long trainings would otherwise decode every record of every
run on every call. An entry holds a file's :class:`~hpc_runner.stream.tail.TailPosition` (the
offset covered and the file's identity: device, inode, first bytes, the bytes before the offset)
and its :class:`~hpc_runner.stream.run_state.RunState` as MessagePack (see
:mod:`~hpc_runner.stream.state_codec`); a later read resumes the tail there and decodes only what
was appended. Whether the file is still the one described is the tail's own check
(:meth:`StatusTail._was_replaced <hpc_runner.stream.tail.StatusTail>`): a replaced, truncated or
rewritten file is read from the start.

Where: ``$XDG_CACHE_HOME/hpc-runner/status/`` (default ``~/.cache/hpc-runner``), one file per
status file named by a hash of its absolute path: never in the run directory, which may be
read-only or shared. Entries are written to a temporary file and renamed
(:func:`~hpc_runner.stream.files.replace_file`), so two readers at once never see half an entry.
An entry that is damaged, was written by another format or another version of the fold (a
fingerprint of its source), or describes another path is ignored and replaced: a cache can only
cost a re-read, never change a result. The cache is an optimisation: a cache directory that cannot
be written is not an error.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import struct
import time
import zlib
from pathlib import Path

import msgspec

from hpc_runner.stream.files import read_regular, replace_file
from hpc_runner.stream.tail import TailPosition

#: Bump when the entry layout changes; an entry of another format is ignored (re-read).
CACHE_FORMAT = 2

_MAGIC = b"hpc-runner-cache"
_HEADER = struct.Struct("<16sII")  # magic, format, crc32 of the payload

#: Entries not written or used for this long are deleted (a run directory that is gone).
MAX_AGE_S = 30 * 86400


class _Entry(msgspec.Struct, forbid_unknown_fields=True):
    fingerprint: str
    path: bytes  # the OS's bytes: a run directory's name need not be UTF-8
    position: TailPosition
    state: bytes


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(_Entry)


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/hpc-runner`` (a relative ``XDG_CACHE_HOME`` is ignored, as the XDG
    specification says), else ``~/.cache/hpc-runner``."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"
    return root / "hpc-runner"


def entry_path(status_path: str | os.PathLike[str]) -> Path:
    """The cache file of one status file (the same for every reader of that path)."""
    name = hashlib.sha256(os.fsencode(os.path.abspath(status_path))).hexdigest()[:32]
    return cache_dir() / "status" / f"{name}.bin"


@functools.cache
def fingerprint() -> str:
    """What the stored states depend on: the source of every module of
    :mod:`hpc_runner.stream` (the fold, the record format, the tail, the codec, and what they
    use: the fold of ``system`` records lives in ``resources.py``). Any change there (a new
    ``RunState`` field, a fixed fold) invalidates every entry, so a cached state is always the
    one this code would fold. The whole package rather than a list of its modules: a list
    missed two of them, and a cached result then differed from ``--no-cache``."""
    import hpc_runner.stream as package

    digest = hashlib.sha256(b"%d" % CACHE_FORMAT)
    sources = sorted(Path(package.__file__ or "").parent.glob("*.py"))
    for source in sources:
        try:
            digest.update(source.name.encode() + b"\0" + source.read_bytes())
        except OSError:
            sources = []
            break
    if not sources:  # no source (a frozen install): the installed version
        digest.update(_installed_version().encode())
    return digest.hexdigest()[:24]


def _installed_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("hpc-runner")
    except PackageNotFoundError:
        return ""


def load(status_path: str | os.PathLike[str]) -> tuple[TailPosition, bytes] | None:
    """The cached position and encoded state of a status file, or None (no usable entry)."""
    path = entry_path(status_path)
    try:  # a regular file only: whatever else is there must not block a reader
        data = read_regular(path)
    except OSError:
        return None
    entry = _parse(data, os.path.abspath(status_path))
    if entry is None:
        return None
    with contextlib.suppress(OSError):  # mark it used, for pruning (at most daily)
        if time.time() - path.stat().st_mtime > 86400:
            os.utime(path)
    return entry.position, entry.state


def _parse(data: bytes, absolute: str) -> _Entry | None:
    if len(data) < _HEADER.size:
        return None
    magic, version, checksum = _HEADER.unpack_from(data)
    if magic != _MAGIC or version != CACHE_FORMAT:
        return None  # not an entry, or one of another (newer or older) format
    payload = memoryview(data)[_HEADER.size :]
    if zlib.crc32(payload) != checksum:
        return None  # damaged
    try:
        entry = _DECODER.decode(payload)
    except msgspec.DecodeError:
        return None
    if entry.fingerprint != fingerprint() or entry.path != os.fsencode(absolute):
        return None
    return entry


def save(status_path: str | os.PathLike[str], position: TailPosition, state: bytes) -> None:
    """Store (atomically) the state of a status file folded up to ``position``."""
    absolute = os.path.abspath(status_path)
    payload = _ENCODER.encode(_Entry(fingerprint(), os.fsencode(absolute), position, state))
    data = _HEADER.pack(_MAGIC, CACHE_FORMAT, zlib.crc32(payload)) + payload
    path = entry_path(absolute)
    try:
        try:
            replace_file(path, data)
        except FileNotFoundError:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            replace_file(path, data)
    except OSError:  # a read-only or full home: reading works without the cache, only slower
        return
    _prune_now_and_then(path.parent)


def _prune_now_and_then(folder: Path) -> None:
    """Delete entries unused for :data:`MAX_AGE_S`, at most once a day."""
    marker = folder / ".pruned"
    now = time.time()
    try:
        if now - marker.stat().st_mtime < 86400:
            return
    except FileNotFoundError:
        pass
    except OSError:
        return
    with contextlib.suppress(OSError):
        marker.touch()
        for entry in os.scandir(folder):
            age = now - entry.stat().st_mtime
            # (a .tmp file is what a reader killed while writing left)
            if (entry.name.endswith(".bin") and age > MAX_AGE_S) or (
                entry.name.endswith(".tmp") and age > 86400
            ):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
