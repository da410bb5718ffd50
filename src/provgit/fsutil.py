"""Files written so a reader (or a crash) never sees half of one."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path


def atomic_write(
    path: str | os.PathLike[str], data: bytes, fsync: bool = True, mode: int | None = None
) -> None:
    """Write to a temporary file beside `path`, then rename over it.

    The file keeps mkstemp's 0600 (right for state) unless `mode` says otherwise
    (reports a web server or a colleague's browser must read use 0644).
    """
    atomic_write_pieces(path, (data,), fsync, mode)


def atomic_write_pieces(
    path: str | os.PathLike[str],
    pieces: Iterable[bytes],
    fsync: bool = True,
    mode: int | None = None,
) -> None:
    """`atomic_write` of the pieces' bytes, each written as it comes (the
    whole is never held): nothing is at `path` until every piece is written."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            if mode is not None:
                os.fchmod(f.fileno(), mode)
            for piece in pieces:
                f.write(piece)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# SQLite creates a database's -wal, -shm and -journal files with the database
# file's own mode, so making the database 0600 first keeps all of them private.
_SQLITE_SIDE_FILES = ("", "-wal", "-shm", "-journal")


class PlantedLink(OSError):
    """A file provgit keeps private (a store, the journal, a key) is a symbolic
    link: chmod and SQLite would act on whatever it points at."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(
            errno.ELOOP,
            f"{os.fspath(path)} is a symbolic link; provgit keeps its state files itself "
            "and does not write through links: remove the link (and check who made it)",
        )


def private_file(path: str | os.PathLike[str]) -> None:
    """Make `path` a file only its owner may read (0600), creating it empty if absent.

    For files that hold element data or keys (element stores hold PINs as the
    element does). An existing file written by an older version is narrowed too.
    """
    # An existing file is never opened: closing any descriptor of a file drops
    # every POSIX lock this process holds on it, and an SQLite database open
    # here (the journal: the watcher holds several connections) would lose the
    # locks that keep another process from checkpointing or resetting its WAL
    # underneath: "database disk image is malformed".
    if os.path.islink(path):
        raise PlantedLink(path)
    try:
        os.chmod(path, 0o600)
        return
    except FileNotFoundError:
        pass
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # created meanwhile by someone else
        os.chmod(path, 0o600)
        return
    os.close(fd)


def private_sqlite(path: str | os.PathLike[str]) -> None:
    """`private_file` for an SQLite database and whichever side files it has now."""
    private_file(path)
    for suffix in _SQLITE_SIDE_FILES[1:]:
        side = Path(f"{os.fspath(path)}{suffix}")
        with contextlib.suppress(FileNotFoundError, PermissionError):
            os.chmod(side, 0o600)
