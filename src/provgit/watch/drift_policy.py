"""Drift: what the elements hold that the config, unchanged, does not say.

When the config did not change since it was applied, every operation a fresh
plan still holds is either a pending update or distribution error being
retried (provgit's own unfinished work) or drift (someone changed the element
out of band). This module tells them apart and words drift for the feed;
whether drift is corrected is the loop's choice (`--drift correct|report|propose`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from provgit.api.watching import DriftItem, Operation, Plan

Ref = tuple[str, str, str]  # (element, collection, key)
SHOWN = 5


@dataclass(frozen=True)
class Classified:
    # Records with provgit's own unfinished work (pending updates, open errors).
    unfinished: frozenset[Ref]
    # element -> operations that would undo an out-of-band change
    drift: dict[str, list[Operation]] = field(default_factory=dict)

    @property
    def drift_count(self) -> int:
        return sum(len(ops) for ops in self.drift.values())

    def signature(self) -> frozenset[tuple[str, str, str, str]]:
        return frozenset(
            (el, op.collection, op.key, op.action) for el, ops in self.drift.items() for op in ops
        )


def classify(
    plan: Plan, unfinished: Iterable[Ref], unfinished_elements: Iterable[str] = ()
) -> Classified:
    """`unfinished_elements`: elements the last run did not bring in sync (down,
    stopped, interrupted): all their operations are provgit's own work left."""
    known = frozenset(unfinished)
    down = frozenset(unfinished_elements)
    drift: dict[str, list[Operation]] = {}
    mine: set[Ref] = set()
    for ep in plan.elements:
        for op in ep.operations:
            ref = (ep.element, op.collection, op.key)
            if ref in known or ep.element in down:
                mine.add(ref)
            else:
                drift.setdefault(ep.element, []).append(op)
    return Classified(frozenset(mine), drift)


def describe(element: str, ops: list[Operation], mode: str) -> str:
    """One feed line per element, naming the first few records (never their values)."""
    what = {"add": "missing", "modify": "changed", "delete": "unexpected"}
    shown = ", ".join(
        f"{op.collection}/{op.key} {what.get(op.action, op.action)}"
        + (
            f" ({', '.join(sorted(op.changes)[:3])})"
            if op.action == "modify" and op.changes
            else ""
        )
        for op in ops[:SHOWN]
    )
    more = f", and {len(ops) - SHOWN} more" if len(ops) > SHOWN else ""
    verb = {
        "correct": "corrected",
        "propose": "held and proposed on a drift branch (--drift propose)",
    }.get(mode, "reported (not corrected: --drift report)")
    return f"drift on {element}: {len(ops)} record(s) differ from the config: {shown}{more}; {verb}"


def drift_items(c: Classified) -> list[DriftItem]:
    """The resync's drift as journal drift items (field names only, never values)."""
    now = time.time()
    change = {"modify": "changed", "add": "missing", "delete": "unexpected"}
    return [
        DriftItem(
            el,
            op.collection,
            op.key,
            op.kind,
            op.resource,
            change.get(op.action, "changed"),
            tuple(sorted(k for k in op.changes if not k.startswith("_")))
            if op.action == "modify"
            else (),
            op.if_revision,
            "open",
            None,
            now,
            now,
        )
        for el, ops in c.drift.items()
        for op in ops
    ]
