"""One applier per element at a time, across processes: an OS file lock.

`<state_dir>/locks/<element>.lock` is held with `fcntl.flock` for the whole
time an applier writes to the element. The kernel drops the lock when the
process dies (even by SIGKILL), so a crash never leaves a stale lock behind.
The holder (pid, host, command, start time) is written into the file so the
refusal a second applier gets can name it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import socket
import time
from pathlib import Path
from typing import Any

from provgit.fsutil import SMALL_STATE_FILE_BYTES, read_state_file


class LockHeld(Exception):
    """Another applier holds the element."""

    def __init__(self, element: str, holder: dict[str, Any]) -> None:
        self.element = element
        self.holder = holder
        who = (
            f"pid {holder.get('pid', '?')} on {holder.get('host', '?')} "
            f"({holder.get('command', '?')}, since {holder.get('started', '?')})"
            if holder
            else "another process"
        )
        super().__init__(f"element {element} is being applied by {who}; try again when it is done")


class LockUnsafe(LockHeld):
    """The lock file is a symbolic link: taking it would truncate its target."""

    def __init__(self, element: str, path: Path) -> None:
        self.element = element
        self.holder = {}
        Exception.__init__(
            self,
            f"element {element} is not applied: its lock file {path} is a symbolic link, "
            "and provgit never writes through one (it would truncate the file it points "
            "to); remove the link",
        )


def _lock_path(state_dir: Path, element: str) -> Path:
    return state_dir / "locks" / (re.sub(r"[^A-Za-z0-9_.-]", "_", element) + ".lock")


def read_holder(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(read_state_file(path, SMALL_STATE_FILE_BYTES) or "{}")
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


class ElementLock:
    def __init__(self, state_dir: str | os.PathLike[str], element: str) -> None:
        self.element = element
        self.path = _lock_path(Path(state_dir), element)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, command: str) -> None:
        """Take the lock or raise LockHeld at once (never waits)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # A link planted here (a shared cache, a stray `ln -s`) would have the
            # holder written over, and on release truncate, the file it names.
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise LockUnsafe(self.element, self.path) from None
            raise
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LockHeld(self.element, read_holder(self.path)) from None
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": command,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        # Closing the descriptor releases the flock.
        os.close(self._fd)
        self._fd = None
