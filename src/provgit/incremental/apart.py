"""A write done in a forked child while this process goes on.

A full plan's memo writes the projected target to SQLite (`store.TargetStore`)
and the owners index (`shared`): at 100,000 users that is a third of the
plan's CPU, and it needs only the projection. Forked as soon as the
projection is made, it runs on the second core while this process observes,
computes the plan and writes the per-element memo; `join` waits for it before
the memo's meta (its commit point) is written.

Only a process with one thread forks (a thread holding a lock at the fork,
SQLite's own included, would leave it held in the child forever); otherwise,
and wherever fork is missing or fails, the work runs here, at `start`. A child
that fails (disk full, killed) is not trusted: `join` does the work again
here, so its error is raised in this process as before. The child dies with
this process (`PR_SET_PDEATHSIG`): no orphan goes on writing into a state
directory a later run uses.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import signal
import threading
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # it died before the line above
        os._exit(1)


def forking_allowed() -> bool:
    """Fork only a single-threaded process, and not when told not to
    (`PROVGIT_NO_FORK=1`: everything in one process, e.g. to profile it)."""
    return (
        hasattr(os, "fork")
        and threading.active_count() == 1
        and os.environ.get("PROVGIT_NO_FORK", "") in ("", "0")
    )


class Apart:
    """`work` running in a child process (or already done here)."""

    def __init__(self, work: Callable[[], None], pid: int | None) -> None:
        self._work = work
        self._pid = pid

    @property
    def forked(self) -> bool:
        return self._pid is not None

    def join(self) -> None:
        """Wait for the child; if it did not finish its work, do it here."""
        if self._pid is None:
            return
        pid, self._pid = self._pid, None
        _, status = os.waitpid(pid, 0)
        gc.unfreeze()
        if not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
            self._work()

    def wait(self) -> bool:
        """Wait for the child; whether the work was done (not done again
        here: for a caller that, instead, leaves what it wrote unused)."""
        if self._pid is None:
            return True  # done here at `start`, or already waited for
        pid, self._pid = self._pid, None
        _, status = os.waitpid(pid, 0)
        gc.unfreeze()
        return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def start(work: Callable[[], None], fork: bool = True) -> Apart:
    """Run `work` in a forked child when allowed (see the module doc) and
    asked (`fork`), else now."""
    if fork and forking_allowed():
        parent = os.getpid()
        # Every object so far out of this process's collections: a collection
        # writes to each object it visits, copying the page the child shares.
        gc.freeze()
        try:
            pid = os.fork()
        except OSError:
            pid = -1
        if pid == 0:  # the child: never returns into the caller's code
            code = 1
            try:
                # No collection: it would touch (and so copy) every object shared with the parent.
                gc.disable()
                _die_with_parent(parent)
                work()
                code = 0
            finally:
                os._exit(code)
        if pid > 0:
            return Apart(work, pid)
        gc.unfreeze()
    work()
    return Apart(work, None)
