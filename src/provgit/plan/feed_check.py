"""What a plan's run found of an element's change feed, carried in the plan
(signed with it) so an apply of the saved plan can act on it.

A full read that found changes the feed never named is drift, and the feed
is flagged (`feed_missed`). A reconcile says so as it applies; a saved plan
is applied later, maybe from another state directory, so the plan itself
carries the facts: when the element was read in full (with the content
digest of what it held then), and which records the feed missed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from provgit.plan.canonical import PlanFormatError

if TYPE_CHECKING:
    from provgit.plan.model import Plan

RecordRef = tuple[str, str]


@dataclass(frozen=True)
class FeedCheck:
    """Per element: `at`, when this plan's run read it in full (None: it was
    not; `missed` then holds what an earlier read found, not yet reviewed);
    `digest`, the content digest of what that read found (wire/digest.py,
    16 hex digits; None: not kept); `missed`, sorted."""

    at: float | None = None
    digest: str | None = None
    missed: tuple[RecordRef, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at, "digest": self.digest, "missed": [list(r) for r in self.missed]}

    @classmethod
    def from_json(cls, d: Any) -> FeedCheck:
        """Parse (the plan's signature was checked first); PlanFormatError
        for a shape no provgit writes."""
        if not isinstance(d, dict):
            raise PlanFormatError("feed_check: not an object")
        at, digest, missed = d.get("at"), d.get("digest"), d.get("missed", [])
        if at is not None and (isinstance(at, bool) or not isinstance(at, int | float)):
            raise PlanFormatError("feed_check.at: not a time")
        if digest is not None and not isinstance(digest, str):
            raise PlanFormatError("feed_check.digest: not a string")
        if not isinstance(missed, list) or not all(
            isinstance(r, list) and len(r) == 2 and all(isinstance(p, str) for p in r)
            for r in missed
        ):
            raise PlanFormatError("feed_check.missed: not a list of [collection, key]")
        return cls(None if at is None else float(at), digest, tuple((c, k) for c, k in missed))


def with_feed_checks(plan: Plan, checks: Mapping[str, FeedCheck]) -> Plan:
    """`plan` with each element's feed check (the elements not named keep none)."""
    if not checks:
        return plan
    elements = tuple(
        dataclasses.replace(e, feed_check=checks[e.element]) if e.element in checks else e
        for e in plan.elements
    )
    return dataclasses.replace(plan, elements=elements)


def feed_missed_of(plan: Plan) -> dict[str, frozenset[RecordRef]]:
    """Per element, the changes its feed missed, as the plan carries them."""
    return {
        e.element: frozenset(e.feed_check.missed)
        for e in plan.elements
        if e.feed_check is not None and e.feed_check.missed
    }
