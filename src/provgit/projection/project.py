"""Resources -> records per element, following the SDS sharing scopes.

Each kind's projection (`telephony.py`, `ivr.py`) says where its resources
land; `PROJECTIONS` binds kinds to them (`extend.py` adds one at run time).
`settings.sharing[kind].scope` overrides a kind's scope; `exclude` lists keys
provgit does not share at all.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from provgit.projection import ivr, telephony
from provgit.projection.context import Context, Emit, Projection, RecordRef
from provgit.projection.reach import DependencyIndex, element_reach
from provgit.records import Fields, Records

# Record collection -> resource kind, and the collections whose record key is
# not the resource's key: from the registry of kinds (re-exported: many read them).
from provgit.registry import COLLECTION_KIND as COLLECTION_KIND
from provgit.registry import KEYED_APART
from provgit.registry import LEAF_KINDS as LEAF_KINDS
from provgit.secrets import Fingerprinter

if TYPE_CHECKING:  # the models (pydantic): a status in sync builds none
    from provgit.model.state import DesiredState

__all__ = [
    "COLLECTION_KIND",
    "LEAF_KINDS",
    "PROJECTIONS",
    "Emit",
    "Landing",
    "RecordRef",
    "Target",
    "landings",
    "project",
    "reproject",
    "shared_fields",
]


@dataclass(frozen=True, slots=True)
class Landing:
    """One record a resource becomes on one element."""

    element: str
    collection: str
    key: str
    fields: Fields
    depends_on: tuple[RecordRef, ...] = ()


@dataclass
class Target:
    # repr=False everywhere: a debugger or traceback must not print a network.
    records: dict[str, Records] = field(repr=False)
    # element -> (collection, key) -> records on the same element it needs first
    depends: dict[str, dict[RecordRef, tuple[RecordRef, ...]]] = field(repr=False)
    # element -> (collection, key) -> (kind, resource key) it came from
    origin: dict[str, dict[RecordRef, tuple[str, str]]] = field(repr=False)
    unresolved_secrets: list[str] = field(default_factory=list)
    # (kind, key) excluded from sharing: provgit neither writes nor deletes them.
    excluded: set[tuple[str, str]] = field(default_factory=set)
    # Elements marked read_only: observed, never written (sources, not targets).
    # They hold no desired records, and the plan gives them no operations.
    read_only: frozenset[str] = frozenset()

    def resource_of(self, element: str, collection: str, key: str) -> tuple[str, str]:
        """The (kind, key) a record comes from."""
        found = self.origin.get(element, {}).get((collection, key))
        return found or (COLLECTION_KIND.get(collection, collection), key)


PROJECTIONS: dict[str, Projection] = {
    "classes_of_service": telephony.cos,
    "cor_groups": telephony.cor,
    "departments": telephony.named("departments", "departments"),
    "locations": telephony.named("locations", "locations"),
    "templates": telephony.template,
    "roles": telephony.role,
    "users": telephony.user,
    "ivr_media_servers": ivr.media_server,
    "prompts": ivr.prompt,
    "subroutines": ivr.subroutine,
    "workflows": ivr.workflow,
}


def _no_files(rel: str) -> bytes | None:
    return None


def read_only_elements(state: DesiredState) -> frozenset[str]:
    return frozenset(n for n, e in state.elements.items() if e.read_only)


def _writable(emit: Emit, read_only: frozenset[str]) -> Emit:
    """`emit`, dropping the records meant for read-only elements (none: `emit` itself)."""
    if not read_only:
        return emit

    def only_writable(
        element: str, collection: str, key: str, fields: Fields, deps: tuple[RecordRef, ...]
    ) -> None:
        if element not in read_only:
            emit(element, collection, key, fields, deps)

    return only_writable


def landings(
    state: DesiredState,
    kind: str,
    key: str,
    fingerprints: Fingerprinter,
    read_other: Callable[[str], bytes | None] = _no_files,
) -> list[Landing]:
    """Where one resource lands (for `provgit show`)."""
    model = state.of(kind).get(key)
    fn = PROJECTIONS.get(kind)
    if model is None or fn is None:
        return []
    out: list[Landing] = []

    def collect(
        element: str, collection: str, k: str, fields: Fields, deps: tuple[RecordRef, ...]
    ) -> None:
        out.append(Landing(element, collection, k, fields, deps))

    fn(
        Context(state, fingerprints, read_other),
        _writable(collect, read_only_elements(state)),
        key,
        model,
    )
    return out


def read_only_records(
    state: DesiredState,
    fingerprints: Fingerprinter,
    read_other: Callable[[str], bytes | None] = _no_files,
) -> dict[str, dict[RecordRef, tuple[Fields, tuple[str, str]]]]:
    """What the config would put on each read-only element, were it writable:
    element -> (collection, key) -> (fields, (kind, resource)). Never sent
    anywhere; status lists how the element differs from it, as information."""
    read_only = read_only_elements(state)
    out: dict[str, dict[RecordRef, tuple[Fields, tuple[str, str]]]] = {n: {} for n in read_only}
    if not read_only:
        return out
    ctx = Context(state, fingerprints, read_other)
    current = ("", "")

    def keep(
        element: str, collection: str, key: str, fields: Fields, deps: tuple[RecordRef, ...]
    ) -> None:
        if element in read_only:
            out[element][(collection, key)] = (fields, current)

    for kind, fn in PROJECTIONS.items():
        sharing = state.settings.sharing.get(kind)
        excluded = set(sharing.exclude) if sharing else set()
        for key, model in state.of(kind).items():
            if key not in excluded:
                current = (kind, key)
                fn(ctx, keep, key, model)
    return out


def shared_fields(lands: list[Landing]) -> list[str]:
    """Fields that land with the same value on several elements (SDS's sharing icon)."""
    seen: dict[str, set[str]] = {}
    for land in lands:
        for f, v in land.fields.items():
            if not f.startswith("_") and v is not None:
                seen.setdefault(f"{f}={json.dumps(v, sort_keys=True)}", set()).add(land.element)
    return sorted({k.split("=", 1)[0] for k, elements in seen.items() if len(elements) > 1})


def project(
    state: DesiredState,
    fingerprints: Fingerprinter,
    read_other: Callable[[str], bytes | None] = _no_files,
    only: Mapping[str, set[str]] | None = None,
) -> Target:
    """Every resource's records; `only` (kind -> keys): just those resources'."""
    ctx = Context(state, fingerprints, read_other)
    records: dict[str, Records] = {name: {} for name in state.elements}
    depends: dict[str, dict[RecordRef, tuple[RecordRef, ...]]] = {n: {} for n in state.elements}
    origin: dict[str, dict[RecordRef, tuple[str, str]]] = {n: {} for n in state.elements}
    all_excluded: set[tuple[str, str]] = set()
    current = ["", ""]  # the resource being projected: (kind, key)

    def emit(
        element: str, collection: str, key: str, fields: Fields, deps: tuple[RecordRef, ...]
    ) -> None:
        coll = records[element].get(collection)
        if coll is None:
            coll = records[element][collection] = {}
        coll[key] = fields
        if deps:
            depends[element][(collection, key)] = deps
        if collection in KEYED_APART:
            origin[element][(collection, key)] = (current[0], current[1])

    read_only = read_only_elements(state)
    to = _writable(emit, read_only)
    for kind, fn in PROJECTIONS.items():
        sharing = state.settings.sharing.get(kind)
        excluded = set(sharing.exclude) if sharing else set()
        all_excluded.update((kind, k) for k in excluded)
        wanted = None if only is None else only.get(kind, set())
        if wanted is not None and not wanted:
            continue
        for key, model in state.of(kind).items():
            if key in excluded or (wanted is not None and key not in wanted):
                continue
            current[:] = [kind, key]
            fn(ctx, to, key, model)
    return Target(
        records,
        depends,
        origin,
        list(dict.fromkeys(fingerprints.unresolved)),
        all_excluded,
        read_only,
    )


def reproject(
    previous: Target,
    old: DesiredState,
    new: DesiredState,
    changed: dict[str, set[str]],
    fingerprints: Fingerprinter,
    read_other: Callable[[str], bytes | None] = _no_files,
    in_place: bool = False,
    index: DependencyIndex | None = None,
) -> tuple[Target, dict[str, set[RecordRef]]] | None:
    """The target after only the `changed` resources (kind -> keys) changed, and
    per element the records that moved; None when the reach of the change
    cannot be bounded (settings, elements added or re-scoped: `reach.py`) and a
    full projection is due. The changed resources and every resource that
    reads one of them (a template's roles and users, a role's users, an
    element's hosted users) are projected again; `index` is `new`'s
    (`DependencyIndex.of(new)` when not given).

    `in_place` updates `previous` itself instead of a copy (copying 300,000
    records' index costs a fifth of a second): for a caller that drops it.
    """
    # The sharing scopes and exclusions are settings: every record may move.
    if old.settings != new.settings:
        return None
    hosts = element_reach(old.elements, new.elements)
    if hosts is None:
        return None
    reached = (index or DependencyIndex.of(new)).reach(changed, hosts, new)
    if reached is None:
        return None
    return _reproject(previous, old, new, reached, fingerprints, read_other, in_place)


def _reproject(
    previous: Target,
    old: DesiredState,
    new: DesiredState,
    changed: dict[str, set[str]],
    fingerprints: Fingerprinter,
    read_other: Callable[[str], bytes | None],
    in_place: bool,
) -> tuple[Target, dict[str, set[RecordRef]]]:
    if in_place:
        records, depends, origin = previous.records, previous.depends, previous.origin
    else:
        records = {
            el: {c: dict(r) for c, r in colls.items()} for el, colls in previous.records.items()
        }
        depends = {el: dict(d) for el, d in previous.depends.items()}
        origin = {el: dict(o) for el, o in previous.origin.items()}
    delta: dict[str, set[RecordRef]] = {el: set() for el in records}
    excluded = previous.excluded
    old_ctx = Context(old, Fingerprinter(None, False), read_other)
    new_ctx = Context(new, fingerprints, read_other)

    def drop(
        element: str, collection: str, key: str, fields: Fields, deps: tuple[RecordRef, ...]
    ) -> None:
        records[element].get(collection, {}).pop(key, None)
        depends[element].pop((collection, key), None)
        origin[element].pop((collection, key), None)
        delta[element].add((collection, key))

    current = ["", ""]

    def add(
        element: str, collection: str, key: str, fields: Fields, deps: tuple[RecordRef, ...]
    ) -> None:
        records[element].setdefault(collection, {})[key] = fields
        if deps:
            depends[element][(collection, key)] = deps
        if collection in KEYED_APART:
            origin[element][(collection, key)] = (current[0], current[1])
        delta[element].add((collection, key))

    # All removals first: a DN that moves from one user to another in the same
    # change must not be removed after it was added.
    read_only = previous.read_only  # the elements are the same (checked above)
    drop_w, add_w = _writable(drop, read_only), _writable(add, read_only)
    for kind, keys in changed.items():
        fn = PROJECTIONS[kind]
        for key in keys:
            model = old.of(kind).get(key)
            if model is not None and (kind, key) not in excluded:
                fn(old_ctx, drop_w, key, model)
    # In `project`'s order (kinds, then file order): a record two resources
    # emit ends as the full projection leaves it.
    for kind, fn in PROJECTIONS.items():
        wanted = changed.get(kind)
        if not wanted:
            continue
        for key, model in new.of(kind).items():
            if key in wanted and (kind, key) not in excluded:
                current[:] = [kind, key]
                fn(new_ctx, add_w, key, model)
    for element, moved in delta.items():
        # A collection the change emptied is absent, as in a full projection.
        for collection in {c for c, _ in moved}:
            if not records[element].get(collection, True):
                del records[element][collection]
    unresolved = list(dict.fromkeys([*previous.unresolved_secrets, *fingerprints.unresolved]))
    if in_place:
        previous.unresolved_secrets = unresolved
        return previous, delta
    return Target(records, depends, origin, unresolved, excluded, read_only), delta
