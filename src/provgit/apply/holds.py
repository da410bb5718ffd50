"""Which planned writes wait: suspensions (kept in the journal), sync windows
(`windows:` in provgit.yaml) and IVR content while an IVR server's call load
is high (`apply.quiet_load`), decided at one instant of an injected clock.

A held write is observed and planned like any other, then kept as a pending
update whose reason names what holds it; the next run after the hold lifts
sends it (the watcher wakes for it: apply/hold_release.py). `provgit plan`
shows what would wait (apply/hold_preview.py).

Holds come in order: a suspension, else a window, else the call load. The
call load is read through the driver when the element's turn comes; a change
deferred longer than its rule's `max_wait` (counted from when it first became
a pending update) goes out whatever the load. A workflow and the prompts and
subroutines it depends on on one element form a group that is held whole or
not at all, whatever holds a part of it.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from provgit.journal import NETWORK, Suspension
from provgit.model.cron import active_start, next_start
from provgit.model.settings import IVR_CHANGE_KINDS, QuietLoad, Settings, SyncWindow
from provgit.plan.model import Operation
from provgit.wire.protocol import CallLoad, Driver, ElementError

Ref = tuple[str, str]
# How long reading an element's call load may take before its changes go
# out as if it reported none (the writes then meet whatever it answers).
LOAD_TIMEOUT = 10.0


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
    """Why a write waits: `source` is "suspended", "window" or "call_load"."""

    source: str
    reason: str  # the status words, e.g. "Held by window night (deny, until ...)"
    window: str | None = None
    # What `provgit plan` says would wait, e.g. "deny window 'night' (until ...)".
    preview: str = ""

    def would_wait(self) -> str:
        """The plan's words for this hold (after "would wait: ")."""
        if self.preview:
            return self.preview
        if self.source == "suspended":
            return "suspended: " + self.reason.removeprefix("Suspended: ")
        return self.reason.removeprefix("Deferred: ")


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
                return Hold(
                    "window",
                    f"Held by window {w.name} (deny, until {until})",
                    w.name,
                    f"deny window '{w.name}' (until {until})",
                )
        allows = [w for w in scoped if w.kind == "allow"]
        if allows and not any(self._start(w) is not None for w in allows):
            w = allows[0]
            opens = next_start(w.cron, w.zone, self.now)
            when = f"opens {_local(opens, w)}" if opens is not None else "not open this week"
            return Hold(
                "window",
                f"Held by window {w.name} (outside allow window, {when})",
                w.name,
                f"outside allow window '{w.name}' ({when})",
            )
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


# ---- call load -------------------------------------------------------------------


def quiet_rule(settings: Settings, element: str, kind: str) -> QuietLoad | None:
    """The `apply.quiet_load` rule for `kind` changes on `element` (the first in scope)."""
    if kind not in IVR_CHANGE_KINDS:
        return None
    for q in settings.apply.quiet_load:
        if (not q.elements or element in q.elements) and (not q.kinds or kind in q.kinds):
            return q
    return None


def _pct(x: float) -> str:
    return f"{x:.1f}".removesuffix(".0")


# Every call-load deferral's status words start so (report/document_common.py).
DEFERRED = "Deferred: call load"


def checked_load(load: CallLoad) -> str | None:
    """What is wrong with a load an element reports (None: usable). A share
    of capacity is 0-100 %; anything else (negative, over 100, NaN) is never
    taken as "quiet": the changes wait as if the load were high."""
    x = load.load_percent
    if not math.isfinite(x) or not 0 <= x <= 100:
        return f"reported as {x!r} %, outside 0-100"
    return None


def deferred_reason(load: CallLoad, rule: QuietLoad) -> str:
    """The status words: "Deferred: call load 85 % (limit 20 %)"."""
    bad = checked_load(load)
    if bad is not None:
        return f"{DEFERRED} unusable, {bad} (limit {_pct(rule.limit)} %)"
    return f"{DEFERRED} {_pct(load.load_percent)} % (limit {_pct(rule.limit)} %)"


def over_limit(load: CallLoad, rule: QuietLoad) -> bool:
    """Whether `load` holds changes under `rule` (an unusable load does)."""
    return checked_load(load) is not None or load.load_percent > rule.limit


_PRIORITY = {"suspended": 0, "window": 1, "call_load": 2}


def strongest(found: Sequence[Hold]) -> Hold | None:
    """The hold to name when several do: a suspension, else a window, else the load."""
    return min(found, key=lambda h: _PRIORITY.get(h.source, 3), default=None)


async def read_load(driver: Driver) -> CallLoad | None:
    """The element's call load now; None when it reports none or cannot say."""
    try:
        info = await asyncio.wait_for(driver.info(), LOAD_TIMEOUT)
    except (ElementError, TimeoutError):
        return None
    return info.call_load


def ivr_groups(ops: Sequence[Operation]) -> dict[Ref, frozenset[Ref]]:
    """Each IVR content change -> the changes it goes out with: those it
    depends on and those depending on it (transitively) among `ops`."""
    parent: dict[Ref, Ref] = {}

    def find(r: Ref) -> Ref:
        while parent[r] != r:
            parent[r] = parent[parent[r]]
            r = parent[r]
        return r

    for op in ops:
        if op.kind in IVR_CHANGE_KINDS:
            parent[(op.collection, op.key)] = (op.collection, op.key)
    for op in ops:
        ref = (op.collection, op.key)
        if ref not in parent:
            continue
        for d in op.depends_on:
            if d in parent:
                parent[find(d)] = find(ref)
    # What a removed prompt or subroutine was used by is not in the plan (the
    # old records named it): a removal goes with every IVR change there.
    removals = [
        (op.collection, op.key)
        for op in ops
        if op.action == "delete" and op.kind in IVR_CHANGE_KINDS
    ]
    for r in removals:
        for other in parent:
            parent[find(other)] = find(r)
    members: dict[Ref, set[Ref]] = {}
    for r in parent:
        members.setdefault(find(r), set()).add(r)
    return {r: frozenset(members[find(r)]) for r in parent}


@dataclass
class ElementHolds:
    """What holds one element's writes this run, and what went through."""

    held: list[tuple[Operation, Hold]] = field(default_factory=list)
    # Windows `--override-window` went through.
    overridden: set[str] = field(default_factory=set)
    # Set when `--override-window` sent changes the call load would defer.
    load_overridden: str | None = None
    # Sent although the load is high: they waited `max_wait` (the reason, and the ops).
    waited_out: list[tuple[Operation, str]] = field(default_factory=list)
    # The call load read this run (None: not read, or the element reports none).
    load: CallLoad | None = None


async def element_holds(
    h: Holds,
    element: str,
    element_type: str,
    ops: Sequence[Operation],
    driver: Driver | None,
    since: Mapping[Ref, float],
) -> ElementHolds:
    """Decide which of `ops` wait on `element`. `since`: when each record's
    pending update first waited (max_wait counts from it)."""
    out = ElementHolds()
    by_ref: dict[Ref, Hold] = {}
    for op in ops:
        hold = h.hold(element, element_type, op.kind)
        if hold is not None:
            by_ref[(op.collection, op.key)] = hold
        elif h.override:
            closed = h.window(element, element_type, op.kind)
            if closed is not None and closed.window is not None:
                out.overridden.add(closed.window)
    groups = ivr_groups(ops)
    rules = {
        (op.collection, op.key): rule
        for op in ops
        if (op.collection, op.key) not in by_ref
        and (rule := quiet_rule(h.settings, element, op.kind)) is not None
    }
    load = await read_load(driver) if rules and driver is not None else None
    out.load = load
    waited: dict[Ref, str] = {}
    if load is not None:
        for ref, rule in rules.items():
            if not over_limit(load, rule):
                continue
            reason = deferred_reason(load, rule)
            if h.override:
                out.load_overridden = reason
                continue
            group = groups.get(ref, frozenset({ref}))
            start = min(since.get(r, h.now) for r in group)
            if h.now - start >= rule.max_wait_seconds:
                waited[ref] = f"{reason}, sent after waiting {rule.max_wait}"
            else:
                by_ref[ref] = Hold("call_load", reason)
    # Never half: a group with any change held is held whole, by its strongest hold.
    for group in set(groups.values()):
        first = strongest([by_ref[r] for r in sorted(group) if r in by_ref])
        if first is not None:
            for r in group:
                by_ref[r] = first
    for op in ops:
        ref = (op.collection, op.key)
        if ref in by_ref:
            out.held.append((op, by_ref[ref]))
        elif ref in waited:
            out.waited_out.append((op, waited[ref]))
    return out


def released_why(d: ElementHolds, was: str) -> str | None:
    """Why the work an element's last status said was held goes out now
    ("released: window opened", "released: call load fell to 5 %",
    "released: max_wait reached"); None when it was not held or still is."""
    if d.held or not was.startswith(("Held by window ", "Deferred: ")):
        return None
    if was.startswith("Held by window "):
        return "released: window opened"
    if d.waited_out:
        return "released: max_wait reached"
    if d.load is not None and checked_load(d.load) is None:
        return f"released: call load fell to {_pct(d.load.load_percent)} %"
    return "released: call load no longer holds it"


def hold_events(
    element: str,
    d: ElementHolds,
    before: Mapping[str, Any] | None,
    override: str | None,
) -> list[tuple[str, str]]:
    """The journal events (type, message) for what `d` decided on `element`.
    A hold is told once, when it starts, not on every retry (`before`: the
    element's status row before the run)."""
    was = str((before or {}).get("status") or "")
    out: list[tuple[str, str]] = []
    windows = sorted({h.window for _, h in d.held if h.window})
    if windows and not was.startswith("Held by window "):
        out.append(
            (
                "window_held",
                f"{element}: {len(d.held)} change(s) held by window {', '.join(windows)}; "
                "they go out when it opens",
            )
        )
    deferred = [h for _, h in d.held if h.source == "call_load"]
    if deferred and not was.startswith("Deferred: "):
        out.append(
            (
                "call_load_deferred",
                f"{element}: {len(d.held)} IVR change(s) {deferred[0].reason[0].lower()}"
                f"{deferred[0].reason[1:]}; they go out when the load falls",
            )
        )
    if d.waited_out:
        out.append(
            (
                "call_load_waited_out",
                f"{element}: {len(d.waited_out)} IVR change(s) sent: {d.waited_out[0][1]}",
            )
        )
    released = released_why(d, was)
    if released is not None:
        out.append(("hold_released", f"{element}: {released}; the held changes go out"))
    if d.overridden:
        out.append(
            (
                "window_override",
                f"{element}: window {', '.join(sorted(d.overridden))} overridden: {override}",
            )
        )
    if d.load_overridden:
        out.append(
            (
                "window_override",
                f"{element}: call load deferral overridden "
                f"({d.load_overridden.removeprefix('Deferred: ')}): {override}",
            )
        )
    return out
