"""What made a run: the hpc_runner that submitted it and the files it came from, with hashes.

``run.yaml`` carries a ``provenance:`` section built here, so a run can be traced back to the
exact job spec (and sweep file) it was made from even after those files changed: their paths and
the SHA-256 of their bytes at submission. The environment of each attempt (library versions,
GPUs, node) travels in the status stream instead, since it can differ from attempt to attempt.
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class SourceFile:
    """A file a run was made from.

    Parameters
    ----------
    path : str
        Its absolute path.
    sha256 : str or None
        The SHA-256 of its bytes when it was read; None when there was no file (a sweep built
        in Python) or it could not be read.
    """

    path: str
    sha256: str | None = None

    @classmethod
    def of(cls, path: str | os.PathLike[str]) -> SourceFile:
        """The file at ``path`` with the hash of what it holds now."""
        absolute = Path(path).expanduser().absolute()
        return cls(str(absolute), file_sha256(absolute))

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256}

    @classmethod
    def from_dict(cls, data: Any) -> SourceFile | None:
        if not isinstance(data, dict) or not data.get("path"):
            return None
        return cls(str(data["path"]), data.get("sha256"))


def file_sha256(path: str | os.PathLike[str]) -> str | None:
    """The hex SHA-256 of a file's bytes, None if it is not a readable file."""
    try:
        with open(path, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError:
        return None


def hpc_runner_version() -> str:
    """The running hpc_runner's ``__version__``.

    Read from the package object itself, which Python always imports before any of its
    modules, so the spec layer needs no import of the top-level package; and it is the code
    that runs, also in a checkout whose installed metadata is of another version.
    """
    return str(getattr(sys.modules.get("hpc_runner"), "__version__", "unknown"))


def provenance(spec: SourceFile, sweep: SourceFile | None = None) -> dict[str, Any]:
    """run.yaml's ``provenance:``: the hpc_runner version writing it, the job spec file (a sweep
    run's base spec) and the sweep file, each with the SHA-256 it had when validated."""
    document: dict[str, Any] = {"hpc_runner": hpc_runner_version(), "spec": spec.to_dict()}
    if sweep is not None:
        document["sweep"] = sweep.to_dict()
    return document
