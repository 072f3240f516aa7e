"""Which filesystem a runs directory lies on, read from the kernel's mount table.

inotify reports only changes made through this machine's kernel. On a cluster the status file is
written by a compute node onto a shared filesystem (NFS, Lustre, GPFS, ...), so the login node's
inotify never hears of the appends: there the watcher must poll. The mount table tells which case
applies; where it cannot be read (not Linux), the caller assumes a local filesystem.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

#: The kernel's view of this process' mounts (Linux).
MOUNTS_FILE = "/proc/self/mounts"

#: Filesystem types on which another machine may write: inotify does not see those writes.
NETWORK_FILESYSTEMS = frozenset(
    {
        "nfs",
        "nfs4",
        "lustre",
        "gpfs",
        "cifs",
        "smb3",
        "smbfs",
        "beegfs",
        "ceph",
        "glusterfs",
        "fuse.glusterfs",
        "fuse.sshfs",
        "fuse.ceph-fuse",
        "fuse.beegfs",
        "afs",
        "panfs",
        "pvfs2",
        "orangefs",
        "wekafs",
        "9p",
        "fuse.s3fs",
        "fuse.rclone",
        "fuse.juicefs",
    }
)

_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True)
class Mount:
    """One line of the mount table."""

    device: str
    mount_point: str
    fs_type: str


def _unescape(field: str) -> str:
    # The kernel writes space, tab, newline and backslash in paths as octal escapes (\040 ...).
    return _OCTAL_ESCAPE.sub(lambda match: chr(int(match.group(1), 8)), field)


def parse_mounts(text: str) -> list[Mount]:
    """The mounts listed in a ``/proc/self/mounts`` text, in table order; odd lines are skipped."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 3:
            mounts.append(Mount(_unescape(fields[0]), _unescape(fields[1]), fields[2]))
    return mounts


def mount_of(path: str | os.PathLike[str], mounts: list[Mount]) -> Mount | None:
    """The mount that holds ``path``: the longest mount point containing it, the last if stacked."""
    resolved = os.path.realpath(path)
    best: Mount | None = None
    for mount in mounts:
        point = mount.mount_point.rstrip("/") or "/"
        inside = point == "/" or resolved == point or resolved.startswith(point + "/")
        if inside and (best is None or len(point) >= len(best.mount_point.rstrip("/") or "/")):
            best = mount
    return best


def filesystem_type(
    path: str | os.PathLike[str], mounts_file: str | os.PathLike[str] = MOUNTS_FILE
) -> str | None:
    """The type (``ext4``, ``nfs4``, ``lustre`` ...) of the filesystem holding ``path``.

    Returns None where the mount table cannot be read (other operating systems).
    """
    try:
        with open(mounts_file, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return None
    mount = mount_of(path, parse_mounts(text))
    return mount.fs_type if mount else None


def is_network_filesystem(fs_type: str | None) -> bool:
    """Whether writes from other machines may land on this filesystem type unseen by inotify."""
    if fs_type is None:
        return False
    return fs_type in NETWORK_FILESYSTEMS or fs_type.removeprefix("fuse.") in NETWORK_FILESYSTEMS
