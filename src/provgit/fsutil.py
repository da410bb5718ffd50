"""Files written so a reader (or a crash) never sees half of one."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
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


class StateFileIsDirectory(OSError):
    """A file provgit keeps (a key) is a directory: replacing it would drop
    whatever is in it, and writing into it is not what was meant."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(
            errno.EISDIR,
            f"{os.fspath(path)} is a directory where provgit keeps a file; move it away "
            "(and check who made it), then run again",
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


# A state directory's key is 64 hex digits; a file far longer is no key of ours.
_MAX_STATE_KEY_BYTES = 4096


def read_state_key(path: Path) -> bytes | None:
    """The state directory's key; None when the file is missing or damaged.
    A regular file only, not a link, read up to a bound: a named pipe there
    (read would wait for a writer for ever), a link (to /dev/zero, read until
    memory ran out; to a file of the user's, taken as the key and chmod'ed)
    is a damaged key, as a torn one is: `secrets.local_key` puts a new one in its
    place, the link's target untouched. A directory there is refused
    (`StateFileIsDirectory`): replacing it would drop what it holds."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError:
        return None
    if stat.S_ISDIR(os.fstat(fd).st_mode):  # not replaced: whatever is in it would go
        os.close(fd)
        raise StateFileIsDirectory(path)
    try:
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return None
            data = f.read(_MAX_STATE_KEY_BYTES + 1)
            if len(data) > _MAX_STATE_KEY_BYTES:
                return None
            key = bytes.fromhex(data.decode("ascii").strip())
            if len(key) < 16:
                return None
            # A key file made by an older provgit, or copied in, may be readable by others.
            if stat.S_IMODE(st.st_mode) & 0o077:
                with contextlib.suppress(OSError):
                    os.fchmod(fd, 0o600)
    except (OSError, ValueError):
        return None
    return key


def opened_path(fd: int, path: Path) -> Path:
    """Where the open file `fd` is: what was opened, not what `path` names now."""
    try:
        return Path(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:  # no /proc: the name as it resolves now
        return path.resolve()
