"""Desired records vs observed records -> operations, per element."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

from provgit.model.settings import Settings
from provgit.observe import Observation
from provgit.plan.errors import resource_errors, secret_warnings
from provgit.plan.model import READ_ONLY_NOTE, ElementPlan, Operation, Plan
from provgit.plan.moves import mark_moves, wanted_elsewhere
from provgit.plan.numbers import numbers_apart, numbers_held
from provgit.plan.options import PlanOptions as PlanOptions
from provgit.plan.ordering import order
from provgit.plan.renames import rename_warnings
from provgit.plan.safety import check_thresholds, is_protected
from provgit.plan.swaps import break_swaps
from provgit.projection.canonical import is_empty, same_value
from provgit.projection.project import COLLECTION_KIND, Target
from provgit.records import MANAGED_BY, MANAGED_BY_VALUE, META_PREFIX, Fields
from provgit.registry import KEYED_APART
from provgit.secrets import SENSITIVE, UNRESOLVED, is_sensitive
from provgit.wire.protocol import StoredRecord

_DEFAULT = PlanOptions()


def _same(desired: Any, observed: Any) -> bool:
    if desired == observed:
        return True
    if type(desired) is str and type(observed) is str:
        # Two texts that differ differ in every form (`same_value`): a device
        # type edit brings 32,026 records here, each through one such field.
        return False
    if is_sensitive(desired):
        # An unresolved secret cannot be compared; apply reports it instead.
        if desired[SENSITIVE] == UNRESOLVED:
            return True
        return is_sensitive(observed) and observed[SENSITIVE] == desired[SENSITIVE]
    if isinstance(desired, dict) and isinstance(observed, dict):
        return _same_maps(desired, observed)
    if isinstance(desired, list) and isinstance(observed, list):
        return len(desired) == len(observed) and all(
            _same(a, b) for a, b in zip(desired, observed, strict=True)
        )
    # Equivalent forms (empty vs absent, 2113 vs "2113"): one rule for plan and import.
    return same_value(desired, observed)


def _same_maps(desired: dict[Any, Any], observed: dict[Any, Any]) -> bool:
    """Every key either side holds a value for (the element's bookkeeping
    aside) means the same: a device type edit makes 32,026 records reach here
    through their services, most keys equal as they are (no sets built)."""
    get = observed.get
    for k, v in desired.items():
        o = get(k)
        if v is o or v == o:
            continue
        if is_empty(v) and (is_empty(o) or str(k).startswith(META_PREFIX)):
            continue  # nothing here either side (the element's own key aside)
        if not _same(v, o):
            return False
    for k, o in observed.items():
        if k in desired or is_empty(o) or str(k).startswith(META_PREFIX):
            continue
        if not _same(None, o):
            return False
    return True


def _unchanged(desired: Fields, observed: Fields) -> bool:
    """The common case, checked at C speed: every desired field is there as is,
    and whatever else the element holds is its own bookkeeping."""
    if not desired.items() <= observed.items():
        return False
    if len(observed) == len(desired):
        return True
    return all(k[0] == "_" or observed[k] is None for k in observed.keys() - desired.keys())


def field_changes(desired: Fields, observed: Fields) -> dict[str, dict[str, Any]]:
    """Fields that differ, ignoring element bookkeeping (`_…`) and null-vs-absent."""
    if _unchanged(desired, observed):
        return {}
    changes: dict[str, dict[str, Any]] = {}
    for k, v in desired.items():
        if k[0] == "_":
            continue
        o = observed.get(k)
        if v == o:  # most fields of a changed record: no call
            continue
        if not _same(v, o):
            changes[k] = {"before": o, "after": v}
    for k, o in observed.items():
        # Membership first: most observed fields are desired too (no call).
        if k not in desired and k[0] != "_" and not is_empty(o):
            changes[k] = {"before": o, "after": None}
    return changes


def _unowned(desired: Fields, observed: Fields) -> bool:
    """provgit would own the record (the config marks it) but the element's
    copy lacks the marker: someone else made it."""
    return (
        desired.get(MANAGED_BY) == MANAGED_BY_VALUE and observed.get(MANAGED_BY) != MANAGED_BY_VALUE
    )


def _visible(fields: Fields) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if k[0] != "_" and v is not None}


def deleted_resource(collection: str, key: str, fields: Fields) -> tuple[str, str]:
    """The (kind, key) an observed record belongs to, when the config no longer has it."""
    kind = COLLECTION_KIND.get(collection, collection)
    resource_field = KEYED_APART.get(collection)
    if resource_field is not None:
        return kind, str(fields.get(resource_field, key))
    return kind, key


def plan_record(
    collection: str,
    key: str,
    desired: Fields | None,
    stored: StoredRecord | None,
    target: Target,
    element: str,
    settings: Settings,
    options: PlanOptions,
) -> Operation | str | None:
    """What one record needs: an operation, a warning (protected), or nothing."""
    if desired is not None:
        if stored is None:
            kind, resource = target.resource_of(element, collection, key)
            return Operation(
                "add",
                collection,
                key,
                kind,
                resource,
                fields=desired,  # its changes derive from them
                depends_on=target.depends.get(element, {}).get((collection, key), ()),
            )
        # Unchanged records are the bulk of every plan: plain equality first.
        if desired == stored.fields:
            return None
        changes = field_changes(desired, stored.fields)
        claim = options.claim and _unowned(desired, stored.fields)
        if claim:
            changes[MANAGED_BY] = {"before": None, "after": MANAGED_BY_VALUE}
        if not changes:
            return None
        kind, resource = target.resource_of(element, collection, key)
        return Operation(
            "modify",
            collection,
            key,
            kind,
            resource,
            changes=changes,
            fields=desired,
            if_revision=stored.revision,
            depends_on=target.depends.get(element, {}).get((collection, key), ()),
            claim=claim,
        )
    if stored is None:
        return None
    kind, resource = deleted_resource(collection, key, stored.fields)
    if (kind, resource) in target.excluded:
        return None
    managed = stored.fields.get(MANAGED_BY) == MANAGED_BY_VALUE
    if not (managed or options.prune or kind in settings.safety.prune):
        return None
    if is_protected(settings.safety, kind, collection, key):
        return f"{collection}/{key} is protected: not deleted"
    return Operation(
        "delete",
        collection,
        key,
        kind,
        resource,
        changes={k: {"before": v} for k, v in _visible(stored.fields).items()},
        if_revision=stored.revision,
        managed=managed,
    )


def assemble(
    name: str,
    element_type: str,
    obs: Observation,
    ops: list[Operation],
    warnings: list[str],
    observed_count: int,
    settings: Settings,
    options: PlanOptions,
) -> ElementPlan:
    """One element's operations, ordered and checked against the safety thresholds."""
    ordered = order(ops)
    refusal = check_thresholds(
        settings.safety, name, ordered, observed_count, options.allow_deletes, options.allow_updates
    )
    return ElementPlan(
        name,
        element_type,
        obs.state,
        obs.revision,
        tuple(ordered),
        refusal=refusal,
        warnings=tuple(sorted(warnings)),
        observed_records=observed_count,
    )


def read_only_plan(
    name: str, element_type: str, obs: Observation, records: int | None = None
) -> ElementPlan:
    """A read-only element is a source: its observation, no operations, a note.
    Not even provgit's own records are deleted there (the config sends it nothing)."""
    return ElementPlan(
        name,
        element_type,
        obs.state,
        obs.revision if obs.ok else None,
        error=None if obs.ok else obs.error,
        warnings=(READ_ONLY_NOTE,),
        observed_records=(
            records if records is not None else sum(len(r) for r in obs.records.values())
        )
        if obs.ok
        else 0,
    )


def plan_element(
    name: str,
    element_type: str,
    target: Target,
    obs: Observation,
    settings: Settings,
    options: PlanOptions,
) -> ElementPlan:
    if name in target.read_only:
        return read_only_plan(name, element_type, obs)
    if not obs.ok:
        return _unobserved(name, element_type, target, obs, settings, options)
    desired = target.records.get(name, {})
    depends = target.depends.get(name, {})
    resource_of = target.resource_of
    ops: list[Operation] = []
    warnings: list[str] = []
    observed_count = 0
    for collection in sorted(set(desired) | set(obs.records)):
        want = desired.get(collection, {})
        have = obs.records.get(collection, {})
        observed_count += len(have)
        for key, fields in want.items():
            stored = have.get(key)
            # Inline the common cases: a record that is there and unchanged,
            # and (a first rollout's every record) one that is not there.
            if stored is None:
                kind, resource = resource_of(name, collection, key)
                dep = depends.get((collection, key), ())
                ops.append(
                    Operation("add", collection, key, kind, resource, None, fields, None, dep)
                )
                continue
            if fields == stored.fields:
                continue
            found = plan_record(collection, key, fields, stored, target, name, settings, options)
            if isinstance(found, Operation):
                ops.append(found)
        for key, stored in have.items():
            if key in want:
                continue
            found = plan_record(collection, key, None, stored, target, name, settings, options)
            if isinstance(found, Operation):
                ops.append(found)
            elif found is not None:
                warnings.append(found)
    return assemble(name, element_type, obs, ops, warnings, observed_count, settings, options)


def _unobserved(
    name: str,
    element_type: str,
    target: Target,
    obs: Observation,
    settings: Settings,
    options: PlanOptions,
) -> ElementPlan:
    """An element that could not be observed: nothing to send, but the writes
    it needs against what it last held (`obs.records`, observed at
    `obs.base_revision`) are queued, to be kept as pending updates."""
    queued: tuple[Operation, ...] = ()
    if obs.base_revision is not None:
        believed = Observation(name, "running", obs.base_revision, obs.records)
        queued = plan_element(name, element_type, target, believed, settings, options).operations
    known = obs.base_revision is not None
    return ElementPlan(
        name, element_type, obs.state, None, error=obs.error, queued=queued, queue_planned=known
    )


def compute_plan(
    target: Target,
    observations: Mapping[str, Observation],
    settings: Settings,
    element_types: Mapping[str, str],
    options: PlanOptions = _DEFAULT,
    commit: str | None = None,
    source: str | None = None,
    mode: str = "plan",
    more_numbers: Callable[[], Iterable[str]] | None = None,
) -> Plan:
    """The plan for every element (re-planning only what changed since a
    last plan is `provgit.incremental`'s job). `more_numbers`: the numbers
    the elements not in `observations` were last seen to hold (a run cut to
    some elements), asked only for a number swap's spare."""
    elements = [
        plan_element(n, element_types[n], target, observations[n], settings, options)
        for n in planned_names(element_types, observations, options)
    ]
    elements = break_swaps(
        elements,
        lambda: numbers_in_use([target], observations, more_numbers),
        lambda owners: numbers_in_use_apart([target], observations, owners, more_numbers),
    )
    cut = bool(options.elements)
    elsewhere = wanted_elsewhere(elements, target.records, element_types, cut)
    return gather(
        elements, target.unresolved_secrets, settings, options, commit, source, mode, elsewhere
    )


def numbers_in_use(
    targets: Sequence[Target],
    observations: Mapping[str, Observation],
    more: Callable[[], Iterable[str]] | None = None,
) -> set[str]:
    """Every number the config uses or an element was seen to hold (and
    `more`, the caller's): a number swap's spare clashes with none of them
    (plan/numbers.py)."""
    wanted = [records for t in targets for records in t.records.values()]
    found = numbers_held([*wanted, *(obs.records for obs in observations.values())])
    if more is not None:
        found.update(more())
    return found


def numbers_in_use_apart(
    targets: Sequence[Target],
    observations: Mapping[str, Observation],
    owners: Collection[str],
    more: Callable[[], Iterable[str]] | None = None,
) -> tuple[set[str], dict[str, set[str]]]:
    """`numbers_in_use` with the numbers of `owners`' records apart (the
    caller's `more` counted as no owner's)."""
    wanted = [records for t in targets for records in t.records.values()]
    rest, owned = numbers_apart([*wanted, *(obs.records for obs in observations.values())], owners)
    if more is not None:
        rest.update(more())
    return rest, owned


def planned_names(
    element_types: Mapping[str, str], observations: Mapping[str, Observation], options: PlanOptions
) -> list[str]:
    """The elements a plan covers, in config order: those observed, limited
    to `options.elements` when it names any."""
    return [
        n
        for n in element_types
        if (not options.elements or n in options.elements) and n in observations
    ]


def gather(
    elements: Sequence[ElementPlan],
    unresolved_secrets: Sequence[str],
    settings: Settings,
    options: PlanOptions,
    commit: str | None,
    source: str | None,
    mode: str = "plan",
    elsewhere: Mapping[tuple[str, str], Sequence[tuple[str, str, str]]] | None = None,
) -> Plan:
    """The plan of the network from each element's, with the warnings that
    span elements (unresolved secrets, renames) and the moves between them
    (`elsewhere`: see plan/moves.py)."""
    elements = mark_moves(elements, elsewhere)
    # An operation holds an "unresolved" fingerprint only for a reference the
    # projection could not resolve, and those are `unresolved_secrets` (the
    # memo path's too: its digest covers every fingerprint). None: no
    # operation to scan (a first rollout writes hundreds of thousands).
    errors = resource_errors(elements) if unresolved_secrets else ()
    warnings = secret_warnings(list(unresolved_secrets), errors)
    warnings += rename_warnings(elements)
    plan = Plan(
        network=settings.network,
        elements=tuple(elements),
        commit=commit,
        source=source,
        mode="diff" if mode == "diff" else "plan",
        warnings=warnings,
        prune=options.prune,
        claim=options.claim,
        allow_deletes=options.allow_deletes,
        allow_updates=options.allow_updates,
    )
    # Found once: `Plan.errors` derives them again only for a plan read back.
    object.__setattr__(plan, "errors", errors)
    return plan
