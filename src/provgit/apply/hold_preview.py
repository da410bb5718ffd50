"""`provgit plan`: which planned operations a suspension, a sync window or
the call load would hold if the plan were applied now, so the admin sees it
in the pull request before merging.

The same decision apply makes (`holds.element_holds`: the strongest hold,
a workflow with its prompts and subroutines held whole, `max_wait` counted
from when a change first waited), taken at the planning instant of the
clock, with each element's call load read once. It is informational: the
plan carries it (signed with the rest, in `ElementPlan.would_wait`), and
apply decides again when it runs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

from provgit.apply.holds import Hold, Holds, element_holds, quiet_rule
from provgit.journal import Journal, JournalError, PendingUpdate, Suspension, journal_exists
from provgit.model.settings import Settings
from provgit.plan.model import ElementPlan, Plan, WouldWait
from provgit.wire.protocol import Driver

Ref = tuple[str, str]


def journal_holds(state_dir: Path) -> tuple[dict[str, Suspension], list[PendingUpdate]]:
    """The suspensions and pending updates the journal keeps (none without one).
    Read only; a journal that cannot be read holds nothing for a preview."""
    if not journal_exists(state_dir):
        return {}, []
    try:
        with Journal.open(state_dir) as journal:
            return journal.suspensions(), journal.pending()
    except JournalError:
        return {}, []


def load_elements(plan: Plan, settings: Settings) -> list[str]:
    """The elements whose planned operations a call-load rule covers (their
    load is read for the preview)."""
    return [
        e.element
        for e in plan.elements
        if any(quiet_rule(settings, e.element, op.kind) for op in e.operations)
    ]


async def with_would_wait(
    plan: Plan,
    settings: Settings,
    suspensions: Mapping[str, Suspension],
    pending: list[PendingUpdate],
    drivers: Mapping[str, Driver],
    now: float,
) -> Plan:
    """`plan` with each element's `would_wait` filled in."""
    if not (suspensions or settings.windows or settings.apply.quiet_load):
        return plan
    h = Holds(settings, suspensions, now)
    since: dict[str, dict[Ref, float]] = {}
    for p in pending:
        since.setdefault(p.element, {})[(p.collection, p.key)] = p.first_failed
    elements = []
    for e in plan.elements:
        if not e.operations:
            elements.append(e)
            continue
        d = await element_holds(
            h,
            e.element,
            e.element_type,
            e.operations,
            drivers.get(e.element),
            since.get(e.element, {}),
        )
        elements.append(_marked(e, [((op.collection, op.key), hold) for op, hold in d.held]))
    return dataclasses.replace(plan, elements=tuple(elements))


def _marked(e: ElementPlan, held: list[tuple[Ref, Hold]]) -> ElementPlan:
    by_reason: dict[tuple[str, str], list[Ref]] = {}
    for ref, hold in held:
        by_reason.setdefault((hold.source, hold.would_wait()), []).append(ref)
    groups = tuple(WouldWait(s, r, tuple(refs)) for (s, r), refs in by_reason.items())
    return dataclasses.replace(e, would_wait=groups) if groups else e
