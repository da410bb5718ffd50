"""The per-element plan loop both incremental paths run.

Each element either has what its last plan knew and the records changed since
(`Replan`: re-planned through `replan.replan`), or is planned in full against
the whole target (`plan.compute.plan_element`). The watcher
(`memory.MemorySession`) mixes both; the CLI's memo path
(`provgit.api.planning.plan_from_memo`) re-plans every element or none.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from provgit.incremental.known import Known
from provgit.incremental.replan import Changes, replan
from provgit.model.settings import Settings
from provgit.observe import Observation
from provgit.plan.compute import (
    PlanOptions,
    gather,
    numbers_in_use,
    numbers_in_use_apart,
    plan_element,
    planned_names,
)
from provgit.plan.model import ElementPlan, Plan
from provgit.plan.moves import wanted_elsewhere
from provgit.plan.numbers import numbers_held
from provgit.plan.swaps import break_swaps
from provgit.projection.project import Target
from provgit.wire.protocol import StoredRecord


class _SpareNeedsFullPlan(Exception):
    """A number swap's cycle found by a plan that knows only the records the
    feeds named (target None): the numbers held by the others and used by the
    rest of the config are unknown, and a spare picked among what it knows may
    be one of them (refused by the element every run, or a second holder of a
    number on another one). Planned in full instead."""


@dataclass(frozen=True)
class Replan:
    """An element to re-plan: what its last plan knew, the records changed
    since, and a target holding at least their desired records."""

    known: Known
    changed: Changes
    desired: Target


def plan_incrementally(
    element_types: Mapping[str, str],
    observations: Mapping[str, Observation],
    replans: Mapping[str, Replan],
    target: Target | None,
    unresolved_secrets: Sequence[str],
    settings: Settings,
    options: PlanOptions,
    commit: str | None,
    source: str | None,
    more_numbers: Callable[[], Iterable[str]] | None = None,
) -> tuple[Plan, dict[str, Known]] | None:
    """`compute_plan`, re-planning the elements in `replans` from what they
    changed; the others are planned in full against `target` (None: every
    element is in `replans`). Returns the plan and, for each re-planned
    element, what to keep of it for next time; None when a number swap needs
    a spare and `target` is None (plan in full). `more_numbers`: the numbers
    the config and the elements hold beyond `target`, the replans' records
    and the observations' (a partial target, observations without records:
    a number swap's spare must clash with none of them)."""
    elements: list[ElementPlan] = []
    kept: dict[str, Known] = {}
    for name in planned_names(element_types, observations, options):
        obs = observations[name]
        again = replans.get(name)
        if again is not None and obs.ok:
            element_plan, kept[name] = replan(
                again.known,
                again.changed,
                again.desired,
                obs,
                element_types[name],
                settings,
                options,
            )
        else:
            assert target is not None, f"{name}: nothing to plan it against"
            element_plan = plan_element(name, element_types[name], target, obs, settings, options)
        elements.append(element_plan)
    # A number swap's cycle is broken with a spare DN (plan/swaps.py).
    targets = [*([] if target is None else [target]), *(r.desired for r in replans.values())]
    more = lambda: _more(replans, more_numbers)  # noqa: E731

    def in_use() -> set[str]:
        if target is None:
            raise _SpareNeedsFullPlan
        return numbers_in_use(targets, observations, more)

    def apart(owners: Collection[str]) -> tuple[set[str], dict[str, set[str]]]:
        if target is None:
            raise _SpareNeedsFullPlan
        return numbers_in_use_apart(targets, observations, owners, more)

    try:
        elements = break_swaps(elements, in_use, apart)
    except _SpareNeedsFullPlan:
        return None
    # Deletes of records an element never observed should get wait for it (plan/moves.py).
    elsewhere = (
        None if target is None else wanted_elsewhere(elements, target.records, element_types, False)
    )
    plan = gather(
        elements, unresolved_secrets, settings, options, commit, source, "plan", elsewhere
    )
    return plan, kept


def _more(replans: Mapping[str, Replan], more: Callable[[], Iterable[str]] | None) -> set[str]:
    """The numbers of the records the feeds named (what the elements hold of
    them now), and the caller's."""
    held: list[dict[str, dict[str, StoredRecord]]] = []
    for again in replans.values():
        by_collection: dict[str, dict[str, StoredRecord]] = {}
        for (coll, key), record in again.changed.items():
            if record is not None:
                by_collection.setdefault(coll, {})[key] = record
        held.append(by_collection)
    found = numbers_held(held)
    if more is not None:
        found.update(more())
    return found
