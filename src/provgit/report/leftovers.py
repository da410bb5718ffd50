"""What an element still holds of a resource beyond the records the config
puts there (report/derive.py).

- Records provgit created that the config no longer has, still there.
- Pending updates and distribution errors of records the config does not put
  on that element: a moving user's record on the host it leaves (its delete
  held until the new host has it), a number swap's user parked there on a
  spare number (plan/swaps.py). They count against their resource on that
  element where the resource still lands there: the resource is not synced
  there while the element holds them ("Syncing 1/3", not 2/3).
- A user a swap's step left on a spare number (the pending update's reason,
  `swap_mark.Parked`): the status says which number, and until when; or a
  swap's write held while elements it may run through do not answer
  (`swap_mark.Unread`): the status says which.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from provgit.journal import DistributionError, PendingUpdate
from provgit.plan.swap_mark import Parked, Unread
from provgit.projection.project import Target
from provgit.records import MANAGED_BY, MANAGED_BY_VALUE, Fields
from provgit.report.element_facts import ElementFacts
from provgit.report.journal_read import JournalFacts
from provgit.report.states import DISTRIBUTION_ERROR, PENDING, Ref, Write, worst

Res = tuple[str, str]  # (kind, resource)
# What a pending update's reason says of its user there, beyond "pending".
Said = Parked | Unread


@dataclass(frozen=True)
class Away:
    """A pending update or error on `element` of a record of `resource` that
    the config does not put there, and whose resource the derivation did not
    meet there (`derive_fast` looked at part of the element only)."""

    element: str
    resource: Res
    state: str
    parked: Said | None


def held_here(
    name: str,
    desired: Mapping[str, Mapping[str, Fields]],
    journal: JournalFacts,
    here: dict[Res, str],
) -> tuple[dict[Res, Said], list[Away]]:
    """Weigh into `here` (resource -> its state on element `name`) the pending
    updates and errors there of records the config does not put there; the
    users parked on a spare there (or whose swap waits for elements unread);
    those of resources `here` does not hold."""
    parked: dict[Res, Said] = {}
    away: list[Away] = []
    rows: tuple[tuple[Mapping[tuple[str, str, str], PendingUpdate | DistributionError], str], ...]
    rows = ((journal.pending, PENDING), (journal.errors, DISTRIBUTION_ERROR))
    for by_ref, state in rows:
        for (element, coll, key), row in by_ref.items():
            if element != name:
                continue
            res = (row.kind, row.resource)
            on = said_of(row.last_error) if isinstance(row, PendingUpdate) else None
            if on is not None:
                parked[res] = on
            if key in desired.get(coll, {}):
                continue  # the record's own state says it
            if res in here:
                here[res] = worst(here[res], state)
            else:
                away.append(Away(name, res, state, on))
    return parked, away


def deletes_not_applied(
    desired: Mapping[str, Mapping[str, Fields]],
    facts: ElementFacts,
    after: Mapping[Ref, Write],
    target: Target,
) -> list[Ref]:
    """Records provgit created that the config no longer has and that are still there."""
    out: list[Ref] = []
    if facts.ops is not None:
        # The plan deletes only what provgit created (or --prune says).
        out = [
            ref
            for ref, (action, _) in facts.ops.items()
            if action == "delete"
            and ref[1] not in desired.get(ref[0], {})
            and not ((w := after.get(ref)) is not None and w[0] == "delete")
        ]
        out += [
            ref
            for ref, (action, _, _) in after.items()
            if action != "delete" and ref[1] not in desired.get(ref[0], {})
        ]
        return out
    for coll, have in facts.records.items():
        want = desired.get(coll, {})
        for key in have.keys() - want.keys():
            rec = have[key]
            fields = rec.fields if facts.objects else rec[0]
            if fields.get(MANAGED_BY) != MANAGED_BY_VALUE:
                continue
            w = after.get((coll, key))
            if w is not None and w[0] == "delete":
                continue
            # Loaded at the first such record: a status in sync meets none.
            from provgit.plan.compute import deleted_resource

            if deleted_resource(coll, key, fields) in target.excluded:
                continue
            out.append((coll, key))
    # Put there by provgit since the observation.
    for ref, (action, _, _) in after.items():
        if (
            action != "delete"
            and ref[1] not in desired.get(ref[0], {})
            and ref[1] not in facts.records.get(ref[0], {})
        ):
            out.append(ref)
    return out


def said_of(reason: str) -> Said | None:
    """What a pending update's reason says of its user there, if anything."""
    return Parked.of(reason) or Unread.of(reason)
