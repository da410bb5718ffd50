"""Which planned writes wait: suspensions (kept in the journal) and sync windows
(`windows:` in provgit.yaml), decided at one instant of an injected clock.

A held write is observed and planned like any other, then kept as a pending
update whose reason names what holds it; the next run after the hold lifts
sends it (the watcher schedules one at the next opening, `next_change`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from provgit.journal import FILENAME as JOURNAL_FILE
from provgit.journal import NETWORK, Journal, JournalError, Suspension
from provgit.model.cron import active_start, next_start
from provgit.model.settings import Settings, SyncWindow
from provgit.plan.model import Plan


class Clock(Protocol):
    """Where "now" comes from: the system's, or a test's fake one."""

    def now(self) -> float: ...


class SystemClock:
    def now(self) -> float:
        return time.time()


SYSTEM_CLOCK: Clock = SystemClock()


def _local(t: float, w: SyncWindow) -> str:
    return datetime.fromtimestamp(t, w.zone).strftime("%Y-%m-%d %H:%M") + f" {w.time_zone}"


def in_scope(w: SyncWindow, element: str, element_type: str, kind: str) -> bool:
    return (
        (not w.elements or element in w.elements)
        and (not w.element_types or element_type in w.element_types)
        and (not w.kinds or kind in w.kinds)
    )


@dataclass(frozen=True)
class Hold:
    """Why a write waits: `source` is "suspended" or "window"."""

    source: str
    reason: str  # the status words, e.g. "Held by window night (deny, until ...)"
    window: str | None = None


@dataclass(frozen=True)
class Holds:
    settings: Settings
    suspensions: Mapping[str, Suspension]
    now: float
    # apply --override-window: windows hold nothing (suspensions still do).
    override: bool = False
    # One answer per (element, type, kind): a run asks once per operation, and
    # a window's answer walks its duration minute by minute.
    _memo: dict[tuple[str, str, str], Hold | None] = field(
        default_factory=dict, compare=False, repr=False
    )
    _open: dict[int, float | None] = field(default_factory=dict, compare=False, repr=False)

    def suspension(self, element: str) -> Suspension | None:
        return self.suspensions.get(element) or self.suspensions.get(NETWORK)

    def window(self, element: str, element_type: str, kind: str) -> Hold | None:
        """The window holding this write now, ignoring an override."""
        if not self.settings.windows:
            return None
        key = (element, element_type, kind)
        if key not in self._memo:
            self._memo[key] = self._window(element, element_type, kind)
        return self._memo[key]

    def _start(self, w: SyncWindow) -> float | None:
        """When `w`'s occurrence open now started (None: closed), once per window."""
        if id(w) not in self._open:
            self._open[id(w)] = active_start(w.cron, w.zone, w.seconds, self.now)
        return self._open[id(w)]

    def _window(self, element: str, element_type: str, kind: str) -> Hold | None:
        scoped = [w for w in self.settings.windows if in_scope(w, element, element_type, kind)]
        for w in scoped:
            if w.kind != "deny":
                continue
            start = self._start(w)
            if start is not None:
                until = _local(start + w.seconds, w)
                return Hold("window", f"Held by window {w.name} (deny, until {until})", w.name)
        allows = [w for w in scoped if w.kind == "allow"]
        if allows and not any(self._start(w) is not None for w in allows):
            w = allows[0]
            opens = next_start(w.cron, w.zone, self.now)
            when = f"opens {_local(opens, w)}" if opens is not None else "not open this week"
            return Hold("window", f"Held by window {w.name} (outside allow window, {when})", w.name)
        return None

    def hold(self, element: str, element_type: str, kind: str) -> Hold | None:
        s = self.suspension(element)
        if s is not None:
            return Hold("suspended", s.describe())
        if self.override:
            return None
        return self.window(element, element_type, kind)


def next_change(settings: Settings, now: float) -> float | None:
    """The next instant any window opens or closes (when held work may go out)."""
    times: list[float] = []
    for w in settings.windows:
        start = active_start(w.cron, w.zone, w.seconds, now)
        if start is not None:
            times.append(start + w.seconds)
        nxt = next_start(w.cron, w.zone, now)
        if nxt is not None:
            times.append(nxt)
    return min(times) if times else None


def preview_lines(
    plan: Plan, state_dir: Path, settings: Settings, clock: Clock = SYSTEM_CLOCK
) -> list[str]:
    """For `provgit plan`: the planned operations a suspension or a window would
    hold now, one line per element and reason. Reads the journal only if there is one."""
    suspensions: dict[str, Suspension] = {}
    if (state_dir / JOURNAL_FILE).exists():
        try:
            with Journal.open(state_dir) as journal:
                suspensions = journal.suspensions()
        except JournalError:
            pass
    if not suspensions and not settings.windows:
        return []
    h = Holds(settings, suspensions, clock.now())
    lines = []
    for ep in plan.elements:
        by_reason: dict[str, list[str]] = {}
        for op in ep.operations:
            hold = h.hold(ep.element, ep.element_type, op.kind)
            if hold is not None:
                by_reason.setdefault(hold.reason, []).append(f"{op.action} {op.kind}/{op.resource}")
        for reason, ops in by_reason.items():
            shown = ", ".join(ops[:5]) + (f", … {len(ops) - 5} more" if len(ops) > 5 else "")
            lines.append(f"held: {len(ops)} operation(s) on {ep.element}: {reason}: {shown}")
    return lines
