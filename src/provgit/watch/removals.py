"""Directory mode: a removal is confirmed by a second read before any delete goes out.

An editor that truncates a file and writes it back, or a copy still writing
it, shows the watcher a config with records missing; planned as is, that
deletes them on the elements (and their mailboxes and element-side state with
them) only to create them again a moment later. So a plan that deletes a
resource the config no longer has is held, whole, until a read of the
directory made at least `watch.delete_grace_seconds` after the removal was
first seen still lacks it. Records that reappear meanwhile are simply no
longer removals: nothing was deleted. Holding the whole run (not only its
deletes) keeps a rename's delete and add together and sends nothing from a
half-written file that was about to be completed.

Pure bookkeeping: the loop says what it planned and when it last read the
directory; this says what is held and when to look again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from provgit.api.watching import DesiredState, Plan

Resource = tuple[str, str]  # (kind, key)
# Held like a removal: a changed provgit.yaml (a half-saved one drops sharing
# exclusions, protected records and thresholds; what it lets through cannot
# be taken back by the next save).
SETTINGS_CHANGE: Resource = ("settings", "provgit.yaml")


def removals(plan: Plan, state: DesiredState) -> set[Resource]:
    """Resources the plan deletes records of that the config no longer has (a
    user moved to another host still has them: that delete is not a removal),
    and directory numbers the plan takes off a user who stays: a save cut off
    after a user's first service parses too, and on a call server a number
    taken off goes with its element-side state."""
    found: set[Resource] = set()
    for e in plan.elements:
        for op in e.operations:
            if op.action == "delete" and op.resource not in state.of(op.kind):
                found.add((op.kind, op.resource))
            elif op.action == "modify" and "services" in op.changes:
                change = op.changes["services"]
                lost = _dns(change.get("before")) - _dns(change.get("after"))
                found.update((op.kind, f"{op.resource} DN {dn}") for dn in lost)
    return found


def _dns(services: object) -> set[str]:
    if not isinstance(services, list):
        return set()
    return {s["dn"] for s in services if isinstance(s, dict) and isinstance(s.get("dn"), str)}


@dataclass(frozen=True)
class Held:
    """The removals that keep this plan from being applied, and when to read again."""

    resources: tuple[Resource, ...]
    recheck_in: float  # seconds until a read would confirm the oldest-held ones


@dataclass
class RemovalGuard:
    # resource -> monotonic time its removal was first seen
    first_seen: dict[Resource, float] = field(default_factory=dict)
    # removals already confirmed (reported once, not again on every retry)
    confirmed: set[Resource] = field(default_factory=set)

    def review(
        self, seen: Iterable[Resource], read_at: float | None, now: float, grace: float
    ) -> tuple[Held | None, list[Resource], list[Resource]]:
        """(what holds the run or None, removals newly confirmed, removals withdrawn).

        `read_at`: when the directory read behind the plan's config started
        (None: not read since the removal could have been seen)."""
        current = set(seen)
        gone = [r for r in self.first_seen if r not in current]
        # Gone after being confirmed: deleted as planned. Gone before: withdrawn.
        withdrawn = sorted(r for r in gone if r not in self.confirmed)
        for r in gone:
            del self.first_seen[r]
            self.confirmed.discard(r)
        for r in current:
            self.first_seen.setdefault(r, now)
        unconfirmed = sorted(
            r
            for r in current
            if grace > 0 and (read_at is None or read_at - self.first_seen[r] < grace)
        )
        if not unconfirmed:
            # A later run without a read (a retry) is still confirmed by this
            # read: read_at only moves forward.
            confirmed = sorted(current - self.confirmed)
            self.confirmed |= current
            return None, confirmed, withdrawn
        oldest = min(self.first_seen[r] for r in unconfirmed)
        return Held(tuple(unconfirmed), max(0.0, oldest + grace - now)), [], withdrawn
