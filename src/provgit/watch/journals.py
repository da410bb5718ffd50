"""The watcher's two journal connections, opened when it starts serving.

The loop and the status provider share one (on the loop's thread); the apply
stage gets its own, because it is used from worker threads while the loop
keeps answering. The live document has a third (live.py).
"""

from __future__ import annotations

from pathlib import Path

from provgit.api.watching import Fences, Journal


class Journals:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self._loop: Journal | None = None
        self._apply: Journal | None = None
        # Replicas: what journal writes about an element are conditional on,
        # and how long the server lets a transaction sit idle (replicas.py).
        self.fences: tuple[Fences, float] | None = None

    def open(self) -> None:
        self._loop = Journal.open(self.state_dir, patient=False)
        self._apply = Journal.open(self.state_dir, patient=False)
        if self.fences is not None:
            for j in (self._loop, self._apply):
                j.fence_by(*self.fences)

    @property
    def loop(self) -> Journal:
        """The loop's (and the server's) connection: this thread only."""
        if self._loop is None:
            raise RuntimeError("the watcher's journal is not open (it opens in Watcher.run)")
        return self._loop

    @property
    def apply(self) -> Journal:
        """The apply stage's connection (used from worker threads)."""
        if self._apply is None:
            raise RuntimeError("the watcher's journal is not open (it opens in Watcher.run)")
        return self._apply

    def close(self) -> None:
        for j in (self._apply, self._loop):
            if j is not None:
                j.close()
        self._loop = self._apply = None
