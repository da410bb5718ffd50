"""Watching a local repository's refs: a new commit is seen when git writes it.

`watch --repo PATH` on a local repository (a work tree, a linked worktree or a
bare repository) watches the repository's git directory for writes to what a
ref can live in: a loose ref under `refs/`, `packed-refs` (`git gc` and
`git pack-refs` move refs there and delete the loose file), and `HEAD` (also a
linked worktree's own `worktrees/NAME/HEAD`). A remote URL has nothing to
watch on this machine and keeps the fetch tick.

File events can be missed (an overflowing inotify queue, a directory made
between two reads) or coalesced (two commits in quick succession, one batch),
so an event is never taken as the news itself: each batch, and a slow safety
tick without any event, re-reads what the ref resolves to now, and asks for a
run whenever that differs from the last value seen. The run reads the ref
again itself, so two quick commits end in the last one applied, whichever
batch saw which.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

from provgit.watch.triggers import Request

# The safety re-read without any event: only a missed event waits this long.
REF_CHECK_SECONDS = 10.0
# How long the git directory must be quiet before a batch is handed over: a
# commit is several writes (objects, the ref's lock file, its rename, the reflog).
REF_STEP_MS = 20
# The longest a stream of writes (a large push's objects) holds the batch back.
REF_DEBOUNCE_MS = 300


class RefFilter:
    """watchfiles filter: a path under a git directory where a ref can change."""

    def __init__(self, git_dirs: list[Path]) -> None:
        self.git_dirs = [d.resolve() for d in git_dirs]

    def __call__(self, change: object, path: str) -> bool:
        p = Path(path)
        for root in self.git_dirs:
            try:
                parts = p.relative_to(root).parts
            except ValueError:
                continue
            if not parts:
                continue
            if parts[:2] == ("refs", "notes"):
                return False  # the watcher's own git notes, written after each run
            if parts[0] == "refs" or parts in (("HEAD",), ("packed-refs",)):
                return True
            # A linked worktree's HEAD: .git/worktrees/NAME/HEAD.
            if parts[0] == "worktrees" and parts[-1] == "HEAD":
                return True
        return False


async def follow_refs(
    git_dirs: list[Path],
    read_ref: Callable[[], str | None],
    request: Request,
    stop: asyncio.Event,
    last: str | None,
    check_seconds: float = REF_CHECK_SECONDS,
    on_error: Callable[[Exception], None] | None = None,
) -> None:
    """Ask for a run ("ref") each time `read_ref()` answers something new,
    re-reading it after every batch of ref writes under `git_dirs` and every
    `check_seconds` without one. `last`: the value read before the watch
    started (a write between that read and the watch's start is caught by the
    safety re-read). `read_ref` runs off the event loop (a git process); None
    means unreadable (a branch deleted): nothing is asked."""
    from watchfiles import awatch  # imported here: only a local --repo needs it

    async for _changes in awatch(
        *git_dirs,
        watch_filter=RefFilter(git_dirs),
        step=REF_STEP_MS,
        debounce=REF_DEBOUNCE_MS,
        rust_timeout=max(int(check_seconds * 1000), 1),
        yield_on_timeout=True,  # the safety re-read
        stop_event=stop,
        recursive=True,
        force_polling=os.environ.get("PROVGIT_WATCH_POLL") == "1" or None,
    ):
        try:
            now = await asyncio.to_thread(read_ref)
        except Exception as e:  # the watch goes on; the next event or tick reads again
            if on_error is not None:
                on_error(e)
            continue
        if now is not None and now != last:
            last = now
            request("ref")
