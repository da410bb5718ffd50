"""When held work may go out, so a long-running process can wake for it.

Held work is kept as pending updates (apply/holds.py); it goes out on the
first run after its hold lifts. A process that waits for work (the watcher)
asks here for the next moment that can happen on its own, by the clock:
a sync window opening or closing, or a call-load deferral's `max_wait`
running out; and, for work deferred by the call load, whether the load has
fallen (read cheaply from the elements, without a run).

Only moments after `now` count: a deadline already past whose work is still
held (a window holds it after `max_wait`) wakes nobody again, or the process
would spin.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from provgit.apply.holds import DEFERRED, next_change, over_limit, quiet_rule, read_load
from provgit.journal import PendingUpdate
from provgit.model.settings import QuietLoad, Settings
from provgit.wire.protocol import Driver

# A window's next opening is looked for a week ahead (model/cron.py): held
# work whose window opens later (a monthly one) is looked at again then.
LOOK_AGAIN_SECONDS = 7 * 86400
WINDOW_HELD = "Held by window "


def held(p: PendingUpdate) -> bool:
    """Whether a hold keeps `p` (a window, the call load, a suspension): its
    release is timed by the hold (a window edge, max_wait, a load poll, a
    resume), never by the retry schedule."""
    return p.last_error.startswith((WINDOW_HELD, DEFERRED, "Suspended: "))


def deferred(pending: Sequence[PendingUpdate]) -> list[PendingUpdate]:
    """The pending updates the call load holds (their reason says so)."""
    return [p for p in pending if p.last_error.startswith(DEFERRED)]


def max_wait_deadline(settings: Settings, p: PendingUpdate) -> float | None:
    """When the call load stops holding `p` (None: no rule holds its kind now)."""
    rule = quiet_rule(settings, p.element, p.kind)
    return None if rule is None else p.first_failed + rule.max_wait_seconds


def next_release(settings: Settings, pending: Sequence[PendingUpdate], now: float) -> float | None:
    """The next instant after `now` at which held work may go out by the clock
    alone: a window edge, or the earliest `max_wait` deadline still to come."""
    times = [
        t
        for p in deferred(pending)
        if (t := max_wait_deadline(settings, p)) is not None and t > now
    ]
    edge = next_change(settings, now)
    if edge is not None and edge > now:
        times.append(edge)
    elif settings.windows and any(p.last_error.startswith(WINDOW_HELD) for p in pending):
        times.append(now + LOOK_AGAIN_SECONDS)
    return min(times, default=None)


async def load_fell(
    settings: Settings, drivers: Mapping[str, Driver], pending: Sequence[PendingUpdate]
) -> list[str]:
    """The elements among `drivers` with deferred work whose call load now
    allows some of it out (at or under its rule's limit). An element that
    cannot say, or says something out of range, is not released by this read:
    the next run, a retry or `max_wait` decides it."""
    rules: dict[str, list[QuietLoad]] = {}
    for p in deferred(pending):
        rule = quiet_rule(settings, p.element, p.kind)
        if rule is not None and p.element in drivers:
            rules.setdefault(p.element, []).append(rule)
    names = sorted(rules)
    loads = await asyncio.gather(*(read_load(drivers[n]) for n in names))
    return [
        name
        for name, load in zip(names, loads, strict=True)
        if load is not None and any(not over_limit(load, r) for r in rules[name])
    ]
