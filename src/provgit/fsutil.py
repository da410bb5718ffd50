"""Files written so a reader (or a crash) never sees half of one."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO


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


# What provgit reads back from its state directory (memos, caches, stamps) is
# its own: opened no-follow and non-blocking, a regular file only, read up to
# a bound. One who can write there could otherwise make every command wait for
# ever (a named pipe: a read waits for a writer) or hold all memory (a link to
# /dev/zero, a sparse file of a terabyte). Such a file reads as damaged: the
# caller's miss (planned in full, read again), never a hang.
# The largest of them, an element's observation, is bounded by what one full
# read may receive (observe/received.py, 1 GiB); the bound here is twice that.
MAX_STATE_FILE_BYTES = 2048 * 2**20
# A stamp, a time, a lock's holder: a few hundred bytes.
SMALL_STATE_FILE_BYTES = 2**20


class NotRegularFile(OSError):
    """A file provgit reads back from its state directory is not a regular
    file (a named pipe, a device, a directory, a socket)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(errno.EINVAL, f"{os.fspath(path)} is not a regular file: not read")


class StateFileTooLarge(OSError):
    """A file provgit reads back from its state directory is past its bound."""

    def __init__(self, path: str | os.PathLike[str], limit: int, size: int) -> None:
        self.size = size  # as found (a file that grew while read: what was read)
        super().__init__(errno.EFBIG, f"{os.fspath(path)} is over {limit / 2**20:g} MiB: not read")


def open_state_file(
    path: str | os.PathLike[str], limit: int = MAX_STATE_FILE_BYTES, follow: bool = False
) -> BinaryIO:
    """`path` opened to read, when it is a regular file (not a link, not a
    pipe) of at most `limit` bytes; OSError otherwise (FileNotFoundError when
    absent, `PlantedLink` for a link, `NotRegularFile`, `StateFileTooLarge`).
    `follow`: a link is followed (a config file, whose links the walk checks)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise PlantedLink(path) from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(path)
        if st.st_size > limit:
            raise StateFileTooLarge(path, limit, st.st_size)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_state_file(
    path: str | os.PathLike[str], limit: int = MAX_STATE_FILE_BYTES, follow: bool = False
) -> bytes:
    """The bytes of `path` as `open_state_file` allows it, read up to `limit`
    (a file that grew past it meanwhile: `StateFileTooLarge`)."""
    with open_state_file(path, limit, follow) as f:
        size = os.fstat(f.fileno()).st_size
        data = f.read(size + 1)
        if len(data) > size:  # grew since: read on, up to the bound
            data += f.read(limit + 1 - len(data))
        if len(data) > limit:
            raise StateFileTooLarge(path, limit, len(data))
        return data


def regular_or_absent(path: str | os.PathLike[str]) -> bool:
    """Whether `path` is a regular file, not a link (True), or absent (False),
    before a library that opens it itself (SQLite) does: anything else there
    raises as `open_state_file` does, so a named pipe is never opened to wait."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(st.st_mode):
        raise PlantedLink(path)
    if not stat.S_ISREG(st.st_mode):
        raise NotRegularFile(path)
    return True


# Kernel and device files: reading them is never a secret's value (/proc/self/environ
# is every variable of the job; /dev/zero never ends).
_PSEUDO = (Path("/proc"), Path("/sys"), Path("/dev"))


def pseudo_file(path: Path) -> bool:
    """Whether `path` (after links) is a kernel or device file, not a stored secret."""
    try:
        real = path.resolve()
    except (OSError, RuntimeError):
        return False
    return any(real == p or p in real.parents for p in _PSEUDO) or any(
        path == p or p in path.parents for p in _PSEUDO
    )


class UnsafeStateDir(OSError):
    """The state directory provgit chose itself (`<config>/.provgit`) is not a
    directory of the user's own: a link, another user's, or writable by others."""

    def __init__(self, path: str | os.PathLike[str], what: str) -> None:
        super().__init__(
            errno.EPERM,
            f"the state directory {os.fspath(path)} {what}; provgit keeps its journal, "
            "locks and element stores only in a directory of the user's own, that "
            "others cannot write to (0700): remove or fix it (a commit or another user "
            "may have made it), or give one with --state-dir or $PROVGIT_STATE_DIR; "
            "nothing was written",
        )


# The state files a commit must not supply: the key (memo seals, plan
# signatures) and the journal (applied safety, pending writes). provgit makes
# them 0600; git checks a file out 0644 (0664), never 0600 under a usual umask.
_OWN_FILES = ("secret.key", "journal.sqlite")


def check_default_state_dir(path: Path) -> None:
    """Refuse a default state directory provgit did not make for this user.

    A config directory is a git checkout: a commit can hold `.provgit` as a
    link (to another network's state, to a folder shared with other users), a
    `.provgit/` with linked folders in it (`elements -> elsewhere`), or a key
    of its own (`.provgit/secret.key`: whoever committed it knows it, and can
    seal a memo provgit would unpickle). Absent: fine (it is made when needed).
    Only the default: a directory the operator names is theirs."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise UnsafeStateDir(path, f"is a symbolic link (to {os.readlink(path)})")
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafeStateDir(path, "is not a directory")
    if st.st_uid != os.geteuid():
        raise UnsafeStateDir(path, f"belongs to another user (uid {st.st_uid})")
    # Group-writable is the user's own under a 0002 umask (a group of the user's
    # own, as Debian makes them); another group's members could plant files.
    if st.st_mode & 0o002 or (st.st_mode & 0o020 and st.st_gid != os.getegid()):
        raise UnsafeStateDir(path, f"is writable by others (mode {st.st_mode & 0o777:04o})")
    for folder in _checked_entries(path, own_files=True):
        _checked_entries(folder, own_files=False)
    tracked = _tracked_by_git(path)
    if tracked:
        raise UnsafeStateDir(
            path,
            f"is in git ({tracked} is tracked: whoever can read the repository knows "
            f"its key and can write its memo); remove it from git (git rm -r --cached "
            f".provgit), add .provgit/ to .gitignore and delete the folder if it came "
            f"from a commit",
        )


def _in_a_work_tree(state: Path) -> bool:
    return any((folder / ".git").exists() for folder in state.absolute().parents)


def _tracked_by_git(state: Path) -> str | None:
    """A file under `state` that git tracks, if any: a state directory a commit
    supplied (files git checked out 0600 under a 077 umask pass the mode check).
    Not in a repository: None. When git cannot answer in one (not installed, the
    repository refused as of dubious ownership), UnsafeStateDir: fail closed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["LC_ALL"] = "C"
    cmd = ["git", "-C", str(state), "ls-files", "-z", "--", "."]
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=30, env=env)
    except FileNotFoundError:
        if not _in_a_work_tree(state):
            return None
        why = "git is not installed"
    except (OSError, subprocess.TimeoutExpired) as e:
        why = f"git did not answer ({type(e).__name__})"
    else:
        if p.returncode == 0:
            return os.fsdecode(p.stdout.split(b"\0", 1)[0]) if p.stdout else None
        said = p.stderr.decode(errors="replace").strip().splitlines()
        if any("not a git repository" in line for line in said):
            return None
        why = "git refused the repository: " + (said[0] if said else f"exit {p.returncode}")
    raise UnsafeStateDir(
        state,
        f"cannot be checked: {why}, so whether a commit supplied it is unknown; make "
        f"git trust the repository (git config --global --add safe.directory PATH) or "
        f"name a state directory with --state-dir",
    )


def _checked_entries(folder: str | Path, own_files: bool) -> list[str]:
    """`folder`'s folders; a linked folder (or a link to nothing) among its
    entries is a `PlantedLink` (a link in a file's place is refused or read as
    a miss where the file is used), and so is a key or journal git made."""
    folders = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_symlink():
                if entry.is_dir() or not os.path.exists(entry.path):
                    raise PlantedLink(entry.path)
            elif entry.is_dir(follow_symlinks=False):
                folders.append(entry.path)
            elif own_files and entry.name in _OWN_FILES:
                mode = entry.stat(follow_symlinks=False).st_mode
                if stat.S_ISREG(mode) and mode & 0o077:
                    raise UnsafeStateDir(
                        folder,
                        f"holds a {entry.name} provgit did not make (mode "
                        f"{mode & 0o777:04o}, not 0600: a file git checked out, or "
                        f"copied in; a commit's key is known to whoever made it): delete "
                        f"it if it came from git or is not yours, chmod 600 it if it is",
                    )
    return folders
