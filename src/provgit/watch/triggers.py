"""What starts a reconcile: file changes, timers, the webhook, signals.

Triggers only *ask* for a run (`request(reason)`); the loop's single flight
decides when it happens, so a burst of saves or a webhook during a run
collapses into one follow-up run.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from provgit.api.watching import IGNORED_DIRS

Request = Callable[[str], None]

# Editors' temporary and backup files: vim (.swp/.swx, `4913` probe, `~`
# backups), emacs (`.#lock`, `#autosave#`), and anything hidden.
_TEMP_SUFFIXES = (".swp", ".swx", ".swo", "~", ".tmp", ".part")


def is_editor_noise(name: str) -> bool:
    return (
        name.startswith(".")
        or name == "4913"
        or name.endswith(_TEMP_SUFFIXES)
        or (name.startswith("#") and name.endswith("#"))
    )


class ConfigFilter:
    """watchfiles filter: a change that can matter to the config under `root`."""

    def __init__(self, root: Path, ignore: Sequence[Path] = ()) -> None:
        self.root = root.resolve()
        self.ignore = [p.resolve() for p in ignore]

    def __call__(self, change: object, path: str) -> bool:
        p = Path(path)
        try:
            # The changed path itself, not where it leads: a new symlink (even a
            # broken one or a loop) is a change the next read must judge.
            real = p.parent.resolve() / p.name if p.is_absolute() else p
            rel = real.relative_to(self.root) if p.is_absolute() else p
        except (ValueError, OSError, RuntimeError):  # RuntimeError: a symlink loop
            return False
        if any(real.is_relative_to(d) for d in self.ignore):
            return False
        parts = rel.parts
        if not parts:
            return False
        if any(part.startswith(".") or part in IGNORED_DIRS for part in parts[:-1]):
            return False
        return not is_editor_noise(parts[-1])


async def watch_directory(
    root: Path,
    request: Request,
    stop: asyncio.Event,
    ignore: Sequence[Path] = (),
    step_ms: int = 50,
    debounce_ms: int = 1600,
    on_change: Callable[[int], None] | None = None,
) -> None:
    """Ask for a run after each quiet spell following changes under `root`.

    `step_ms`: how long the tree must be quiet before the changes are handed
    over (one save is usually several events: write, rename, chmod);
    `debounce_ms`: the longest a stream of changes is held back.
    """
    from watchfiles import awatch  # imported here: only the directory mode needs it

    async for changes in awatch(
        root,
        watch_filter=ConfigFilter(root, ignore),
        step=step_ms,
        debounce=debounce_ms,
        stop_event=stop,
        recursive=True,
        force_polling=os.environ.get("PROVGIT_WATCH_POLL") == "1" or None,
        yield_on_timeout=False,
    ):
        if on_change is not None:
            on_change(len(changes))
        request("change")


async def every(
    seconds: float,
    action: Callable[[], Awaitable[None] | None],
    stop: asyncio.Event,
) -> None:
    """Call `action` every `seconds` until `stop` is set (0 or less: never)."""
    if seconds <= 0:
        return
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=seconds)
            return
        except TimeoutError:
            pass
        outcome = action()
        if outcome is not None:
            await outcome
