"""Opening files that someone else controls, without hanging on them or being fooled by them.

Run directories, job specs and data files are written by users and trainings, and a monitoring
command may run over other people's runs (an admin as root). A name that should be a file may be
a FIFO (opening it for reading waits for a writer, forever), a terminal or other device (opening
it may make it the controlling terminal, reading it may never end), a directory, a socket or a
symlink loop. :func:`open_regular` opens whatever the name is *without blocking* and then checks
what it opened: the check uses ``fstat`` on the open descriptor, so there is no window between a
``stat`` and the ``open`` in which the name could be swapped for something else.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

#: Flags for opening an untrusted name for reading: a FIFO without a writer opens at once instead
#: of blocking, a terminal never becomes the controlling one, and nothing leaks into children.
_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class UnreadableFile(OSError):
    """A path that exists but cannot be read as a regular file; ``str()`` is one line.

    It is an :class:`OSError` (with the underlying ``errno`` where there is one), so that code
    which already handles "cannot read" handles this too.
    """

    def __init__(self, path: str | os.PathLike[str], reason: str, code: int = 0) -> None:
        super().__init__(code, reason, os.fspath(path))
        self.path = os.fspath(path)
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def kind_of(mode: int) -> str:
    """``a directory``, ``a FIFO (named pipe)``, ... for a non-regular ``st_mode``."""
    for test, name in _KINDS:
        if test(mode):
            return name
    return "an unknown kind of file"


def reason_of(error: OSError) -> str:
    """A short, user-facing reason for an OSError (``too many levels of symbolic links``)."""
    if isinstance(error, UnreadableFile):
        return error.reason
    if error.errno == errno.ELOOP:
        return "a symlink loop (too many levels of symbolic links)"
    text = error.strerror or str(error) or type(error).__name__
    return text[:1].lower() + text[1:]


def open_regular(path: str | os.PathLike[str]) -> int:
    """A read-only descriptor of ``path``, which must be a regular file (symlinks followed).

    Raises
    ------
    FileNotFoundError
        Nothing is there (also when a directory on the way is missing).
    UnreadableFile
        Anything else: not a regular file (saying what it is), a symlink loop, no permission.
    """
    try:
        fd = os.open(path, _READ_FLAGS)
    except FileNotFoundError:
        raise
    except NotADirectoryError as error:  # a file where a directory was expected: nothing here
        raise FileNotFoundError(errno.ENOENT, "no such file", os.fspath(path)) from error
    except OSError as error:
        raise UnreadableFile(path, reason_of(error), error.errno or 0) from None
    try:
        mode = os.fstat(fd).st_mode
    except OSError as error:
        os.close(fd)
        raise UnreadableFile(path, reason_of(error), error.errno or 0) from None
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise UnreadableFile(path, f"{kind_of(mode)}, not a regular file", errno.EINVAL)
    return fd


def read_regular(path: str | os.PathLike[str], max_bytes: int | None = None) -> bytes:
    """The content of a regular file (see :func:`open_regular` for what is refused).

    Parameters
    ----------
    max_bytes : int | None
        Refuse (:class:`UnreadableFile`) a file larger than this: a job spec or ``job.json`` is
        a few KiB, and reading gigabytes into memory because of a hostile name helps nobody.
    """
    fd = open_regular(path)
    try:
        size = os.fstat(fd).st_size
        if max_bytes is not None and size > max_bytes:
            raise UnreadableFile(path, f"too large ({size} bytes, at most {max_bytes} expected)")
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
            if max_bytes is not None and sum(map(len, chunks)) > max_bytes:
                raise UnreadableFile(path, f"too large (more than {max_bytes} bytes)")
        return b"".join(chunks)
    except UnreadableFile:
        raise
    except OSError as error:
        raise UnreadableFile(path, reason_of(error), error.errno or 0) from None
    finally:
        os.close(fd)


def read_regular_text(path: str | os.PathLike[str], max_bytes: int | None = None) -> str:
    """:func:`read_regular` decoded as UTF-8 (``UnicodeDecodeError`` if it is not)."""
    return read_regular(path, max_bytes).decode("utf-8")


def is_regular(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a regular file now (symlinks followed; loops and errors: False)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def exists_entry(path: str | os.PathLike[str]) -> bool:
    """Whether a directory entry of this name exists, of any kind (a dangling symlink too)."""
    try:
        os.lstat(Path(path))
    except (OSError, ValueError):
        return False
    return True


def same_file(one: str | os.PathLike[str], other: str | os.PathLike[str]) -> bool:
    """Whether two names are one file or directory (links followed); False when either is
    missing or unreadable."""
    try:
        return os.path.samefile(one, other)
    except (OSError, ValueError):  # (ValueError: a NUL byte in a name)
        return False


def replace_file(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``path`` atomically: a reader sees the old or the new content, never half.

    The temporary file gets an unpredictable name, created exclusively (``mkstemp``), so that a
    link planted in a run directory at a guessable name cannot redirect the write - an admin
    running ``cancel`` as root over a user's run must not write through the user's symlinks.
    ``os.replace`` then replaces a link at ``path`` itself, never its target.
    """
    import tempfile

    target = Path(path)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def write_new(path: str | os.PathLike[str], data: bytes) -> None:
    """Write a small file, never following a symlink at ``path`` (``O_NOFOLLOW``)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    fd = os.open(path, flags, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
