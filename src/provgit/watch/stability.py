"""Directory mode: read the config only once the files have stopped changing.

A change event says a file was touched, not that it was finished: a slow copy
or an editor's truncate-then-write shows half a file. A read is only used when
a second read `watch.settle_seconds` later finds every config file with the
same size, mtime and content (and no file come or gone); otherwise the
newest read becomes the one to compare with. A tree that never settles is read
as it is after `MAX_SETTLE_SECONDS` (removals are still confirmed before any
delete, see removals.py).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from provgit.api.watching import ConfigSource, read_directory, tree_key

MAX_SETTLE_SECONDS = 30.0


@dataclass(frozen=True)
class Snapshot:
    key: str  # every path and content id, and what could not be read (incremental.tree_key)
    files: tuple[tuple[str, str, int, int], ...]  # (path, content id, size, mtime_ns)

    def changed(self, other: Snapshot) -> list[str]:
        """Paths that differ between two snapshots (come, gone or changed)."""
        mine, theirs = {f[0]: f for f in self.files}, {f[0]: f for f in other.files}
        paths = sorted(p for p in mine.keys() | theirs.keys() if mine.get(p) != theirs.get(p))
        return paths or ["(unreadable files)"]


def snapshot(root: Path) -> tuple[ConfigSource, Snapshot]:
    source = read_directory(root)
    files = []
    for f in source.files:
        try:
            st = os.stat(f.origin)
            files.append((f.path, f.blob_id, st.st_size, st.st_mtime_ns))
        except OSError:
            files.append((f.path, f.blob_id, -1, -1))
    return source, Snapshot(tree_key(source), tuple(files))


def _still_to_wait(snap: Snapshot, settle_seconds: float, now: float | None = None) -> float:
    """How long to wait before the confirming read: the settle interval, less
    the time the newest file has already kept still (a save seen through the
    debounce has been still that long; the second read must agree all the
    same). A modification time in the future (another host's clock) counts
    as just now. `now`: the wall clock (files' mtimes are wall-clock times)."""
    newest = max((f[3] for f in snap.files), default=0) / 1e9
    now = time.time() if now is None else now
    still = min(max(now - newest, 0.0), settle_seconds)
    return settle_seconds - still


async def settled_read(
    root: Path,
    settle_seconds: float,
    on_unsettled: Callable[[list[str]], None] = lambda _: None,
    max_seconds: float = MAX_SETTLE_SECONDS,
    on_first_read: Callable[[], None] = lambda: None,
) -> tuple[ConfigSource, float]:
    """The config under `root` once two reads `settle_seconds` apart agree, and
    when (monotonic) the first of those two reads started."""
    started = time.monotonic()
    source, snap = await asyncio.to_thread(snapshot, root)
    on_first_read()
    if settle_seconds <= 0:
        return source, started
    deadline = started + max_seconds
    while True:
        await asyncio.sleep(_still_to_wait(snap, settle_seconds))
        again_at = time.monotonic()
        source, again = await asyncio.to_thread(snapshot, root)
        if again == snap or again_at >= deadline:
            return source, started
        on_unsettled(snap.changed(again))
        snap, started = again, again_at
