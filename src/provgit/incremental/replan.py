"""Re-planning only the records that changed since an element's last plan.

The one loop both incremental paths use: the watcher (the records come from
its full, feed-refreshed observation in memory) and the CLI's plan memo (they
come from the change feed's records, the rest of the element unread). Each
named record is planned again as `plan.compute.plan_record` plans it, the rest
of the last plan is kept as it was: the result equals the full computation
(tests/plan/test_incremental.py and tests/plan/test_memo.py hold it to that).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from provgit.incremental.known import Known, warnings_by_record
from provgit.model.settings import Settings
from provgit.observe import Observation
from provgit.plan.compute import (
    PlanOptions,
    assemble,
    plan_element,
    plan_record,
    read_only_plan,
)
from provgit.plan.model import ElementPlan, Operation
from provgit.projection.project import RecordRef, Target
from provgit.wire.protocol import StoredRecord

# (collection, key) -> the record the element holds now (None: it holds none).
Changes = Mapping[RecordRef, StoredRecord | None]


def replan(
    known: Known,
    changed: Changes,
    desired: Target,
    obs: Observation,
    element_type: str,
    settings: Settings,
    options: PlanOptions,
) -> tuple[ElementPlan, Known]:
    """The element's plan from what its last plan knew and the records that
    changed since (`changed`); `desired` holds the desired records of at least
    those. Returns the plan and what to keep of it for next time.

    `obs` must have read the element (`obs.ok`) at the revision to plan at;
    its records are only counted when `known.keys` is None."""
    name = obs.element
    assert obs.revision is not None
    ops = {(op.collection, op.key): op for op in known.operations}
    warnings = dict(known.warnings)
    # As sets only to change them: a plan with nothing changed (most of them)
    # keeps the lists it had (100,000 keys an element).
    keys = None if known.keys is None or not changed else {c: set(k) for c, k in known.keys.items()}
    records = desired.records.get(name, {})
    read_only = name in desired.read_only
    for (coll, key), stored in changed.items():
        ops.pop((coll, key), None)
        warnings.pop(f"{coll}/{key}", None)
        if keys is not None:
            have = keys.setdefault(coll, set())
            if stored is None:
                have.discard(key)
            else:
                have.add(key)
        if read_only:
            continue  # a source: nothing to plan, only what it holds to count
        found = plan_record(
            coll, key, records.get(coll, {}).get(key), stored, desired, name, settings, options
        )
        if isinstance(found, Operation):
            ops[(coll, key)] = found
        elif found is not None:
            warnings[f"{coll}/{key}"] = found
    if known.keys is None:
        count = sum(len(r) for r in obs.records.values())
    else:
        count = sum(len(k) for k in (keys or known.keys).values())
    if read_only:
        element_plan = read_only_plan(name, element_type, obs, count)
    else:
        element_plan = assemble(
            name,
            element_type,
            obs,
            list(ops.values()),
            list(warnings.values()),
            count,
            settings,
            options,
        )
    kept = Known(
        known.version,
        obs.revision,
        element_plan.operations,
        warnings,
        known.keys if keys is None else {c: list(k) for c, k in keys.items()},
        known.options,
    )
    return element_plan, kept


def held(obs: Observation, refs: Iterable[RecordRef]) -> dict[RecordRef, StoredRecord | None]:
    """What a full observation holds of these records: the changes to re-plan."""
    return {(c, k): obs.records.get(c, {}).get(k) for c, k in refs}


def replan_element(
    name: str,
    element_type: str,
    target: Target,
    obs: Observation,
    settings: Settings,
    options: PlanOptions,
    previous: ElementPlan,
    keys: set[RecordRef],
) -> ElementPlan:
    """`plan_element`, given the plan of the same element computed against the
    same settings and options, re-planning only `keys`: the records whose
    desired or observed state changed since that plan (`obs` holds every
    record of the element)."""
    if not obs.ok or previous.observed_revision is None:
        return plan_element(name, element_type, target, obs, settings, options)
    known = Known(0, previous.observed_revision, previous.operations, warnings_by_record(previous))
    return replan(known, held(obs, keys), target, obs, element_type, settings, options)[0]
