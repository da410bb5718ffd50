"""What a load an element reports can do to held work (apply/holds.py) and
when the held work is due again (apply/hold_release.py), as data: an element
reporting a load out of range (negative, over 100 %, NaN) never releases IVR
content early, and max_wait still sends it; deadlines already past wake nobody.

The simulator only serves loads from 0 to 100 %: the out-of-range ones come
from a driver that answers `info()` with them (the only call the holds make)."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

from provgit.apply.hold_release import load_fell, max_wait_deadline, next_release
from provgit.apply.holds import Holds, checked_load, element_holds
from provgit.journal import PendingUpdate
from provgit.model.settings import Settings
from provgit.plan.model import Operation
from provgit.wire.protocol import CallLoad, ElementInfo

T0 = 1_780_000_000.0
SETTINGS = Settings.model_validate({"apply": {"quiet_load": [{"limit": 20, "max_wait": "30m"}]}})


class Reports:
    """An element that reports `percent` as its call load (info() only)."""

    def __init__(self, percent: float) -> None:
        self.percent = percent

    async def info(self) -> ElementInfo:
        return ElementInfo("ivr1", "ivr", "1", 7, "running", CallLoad(3, 0, self.percent))


def _ops() -> list[Operation]:
    return [
        Operation("add", "prompts", "welcome:en-US", "prompts", "welcome"),
        Operation(
            "add",
            "workflows",
            "Main",
            "workflows",
            "Main",
            depends_on=(("prompts", "welcome:en-US"),),
        ),
    ]


def _decide(percent: float, now: float, since: float = T0) -> Any:
    holds = Holds(SETTINGS, {}, now)
    refs = {(op.collection, op.key): since for op in _ops()}
    driver: Any = Reports(percent)
    return asyncio.run(element_holds(holds, "ivr1", "ivr", _ops(), driver, refs))


@pytest.mark.parametrize("percent", [-5.0, 150.0, math.nan, math.inf, -math.inf])
def test_a_load_out_of_range_holds_ivr_content_as_a_high_load_would(percent: float) -> None:
    assert checked_load(CallLoad(0, 0, percent)) is not None
    d = _decide(percent, T0)
    assert len(d.held) == 2  # the workflow and its prompt, whole
    reasons = {h.reason for _, h in d.held}
    (reason,) = reasons
    assert reason.startswith("Deferred: call load unusable, reported as ")
    assert reason.endswith("outside 0-100 (limit 20 %)")
    assert d.waited_out == []


@pytest.mark.parametrize("percent", [-5.0, math.nan])
def test_after_max_wait_content_held_by_an_unusable_load_still_goes_out(percent: float) -> None:
    d = _decide(percent, T0 + 1800)
    assert d.held == []
    assert len(d.waited_out) == 2
    assert "sent after waiting 30m" in d.waited_out[0][1]


@pytest.mark.parametrize("percent", [0.0, 20.0])
def test_a_load_at_or_under_the_limit_holds_nothing(percent: float) -> None:
    assert checked_load(CallLoad(0, 0, percent)) is None
    d = _decide(percent, T0)
    assert d.held == [] and d.waited_out == []


def _pending(kind: str, first: float, error: str) -> PendingUpdate:
    return PendingUpdate("ivr1", kind, "k", "add", kind, "k", 1, first, first, first + 30, error)


DEFERRED = "Deferred: call load 85 % (limit 20 %)"


@pytest.mark.parametrize(("percent", "released"), [(10.0, True), (85.0, False), (-1.0, False)])
def test_a_load_poll_releases_only_on_a_usable_load_at_or_under_the_limit(
    percent: float, released: bool
) -> None:
    pending = [_pending("workflows", T0, DEFERRED)]
    driver: Any = Reports(percent)
    fell = asyncio.run(load_fell(SETTINGS, {"ivr1": driver}, pending))
    assert fell == (["ivr1"] if released else [])


def test_the_next_release_is_the_earliest_max_wait_still_to_come() -> None:
    pending = [
        _pending("workflows", T0, DEFERRED),
        _pending("prompts", T0 + 600, DEFERRED),
        # Held by a window, or failed: not the call load's to time.
        _pending("users", T0 - 10_000, "Held by window freeze (deny, until …)"),
    ]
    assert max_wait_deadline(SETTINGS, pending[0]) == T0 + 1800
    assert next_release(SETTINGS, pending, T0 + 5) == T0 + 1800
    # Past its deadline and still held (a window holds it): it wakes nobody again.
    assert next_release(SETTINGS, pending, T0 + 1800) == T0 + 2400
    assert next_release(SETTINGS, pending, T0 + 2400) is None
    assert next_release(SETTINGS, [], T0) is None


def test_work_held_by_a_window_opening_beyond_the_look_ahead_is_looked_at_again_in_a_week() -> None:
    monthly = Settings.model_validate(
        {"windows": [{"name": "m", "kind": "allow", "schedule": "0 2 1 * *", "duration": "2h"}]}
    )
    mid_month = 1_781_000_000.0  # 2026-06-09: the 1st is more than a week away
    held = [_pending("users", mid_month, "Held by window m (outside allow window, …)")]
    assert next_release(monthly, held, mid_month) == mid_month + 7 * 86400
    # Nothing held: nothing to look at again.
    assert next_release(monthly, [], mid_month) is None
