"""The plan after a config change, re-projecting and re-planning only what the
change reaches, against what the last plan knew of each element.

A template edit used to miss the plan memo and pay a full plan: project
100,000 users, read ~300,000 records from the elements, compare them all and
write the whole target again. What changed is known from the config files
(`incremental.shared`: which file defined which resources), what it reaches
from the dependency index (`projection.reach`: a template its roles and
users, a role its users, an element's partner its hosted users). Those
resources are projected again and replace theirs in the stored target; the
records whose desired state moved are re-planned with the ones each element's
change feed names (`incremental.replan`), their current value read from the
observation cache refreshed through the feed. The result equals the full plan
(tests/plan/test_shared_change.py holds it to that); anything it cannot bound
(settings, elements added, removed or re-scoped, another code version, secret
values, prompt audio, an element that cannot be read) takes the full path.

Internal to the API (`provgit.api`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from pathlib import Path

from provgit.api.network import connect, fingerprinter
from provgit.api.planning import PlanRun, _read_changes, _refresh_cache
from provgit.incremental import disk as memo
from provgit.incremental import shared
from provgit.incremental.disk import MemoInputs
from provgit.incremental.known import Known
from provgit.incremental.session import Replan, plan_incrementally
from provgit.incremental.store import TargetStore
from provgit.load.cache import ParseCache
from provgit.model.network import Element
from provgit.model.state import DesiredState
from provgit.observe import Observation, ObservationCache
from provgit.plan import PlanOptions
from provgit.projection import Target, project
from provgit.projection.project import RecordRef
from provgit.projection.reach import CONNECTION_FIELDS, DependencyIndex, element_reach, secret_refs
from provgit.source import ConfigSource
from provgit.validate.cache import files_key, recording_reads


def _reconnected(old: Mapping[str, Element], new: Mapping[str, Element]) -> bool:
    """An element now reached another way: the memo's revision is of what the
    old connection led to, which may be another element."""
    return any(
        getattr(old[n], f) != getattr(e, f) for n, e in new.items() for f in CONNECTION_FIELDS
    )


def _desired(
    name: str, refs: Iterable[RecordRef], moved: set[RecordRef], partial: Target, store: TargetStore
) -> Target:
    """The desired records of `refs` on one element: those the change moved as
    just projected (`partial`), the others (named by the feed) as stored."""
    rest = [r for r in refs if r not in moved]
    out = store.partial(name, rest) if rest else Target({name: {}}, {name: {}}, {name: {}})
    records, depends, origin = out.records[name], out.depends[name], out.origin[name]
    have = partial.records.get(name, {})
    for coll, key in moved:
        fields = have.get(coll, {}).get(key)
        if fields is None:
            continue
        records.setdefault(coll, {})[key] = fields
        if (dep := partial.depends.get(name, {}).get((coll, key))) is not None:
            depends[(coll, key)] = dep
        if (org := partial.origin.get(name, {}).get((coll, key))) is not None:
            origin[(coll, key)] = org
    out.excluded, out.read_only = partial.excluded, partial.read_only
    return out


# long: one guarded sequence in which every step may send the plan to the full path
async def plan_shared_change(
    state: DesiredState,
    source: ConfigSource,
    config_root: Path,
    state_dir: Path,
    options: PlanOptions,
) -> PlanRun | None:
    """The plan for `state` from the last one, re-projecting only what changed
    since and what reads it; None means "take the full path"."""
    # A plan of some elements would leave the others' memos behind.
    if not memo.enabled() or options.elements:
        return None
    store = memo.PlanMemo(state_dir)
    meta = store.load_meta()
    owners = shared.load(store.dir)
    targets = TargetStore(store.target_path)
    if meta is None or owners is None or owners.digest != meta.digest:
        return None
    if targets.digest() != meta.digest or state.settings != meta.settings:
        return None  # settings set every sharing scope: the reach is everything
    fp = fingerprinter(state, state_dir)
    # Everything but the config files as the last plan had it: the code, the
    # prompt audio, the secret values, --prune.
    was, _ = memo.inputs_digest(source, meta.inputs, fp, options, files_key(owners.files, []))
    if was != meta.digest:
        return None
    hosts = element_reach(meta.elements, state.elements)
    if hosts is None or _reconnected(meta.elements, state.elements):
        return None
    parsed = ParseCache(state_dir / "cache")
    changed = shared.changed_resources(owners, state, source, parsed)
    reached = DependencyIndex.of(state).reach(changed, hosts, state)
    names = list(meta.elements)
    entries = {n: store.load_element(n) for n in names}
    if reached is None or any(e is None or e.version != meta.digest for e in entries.values()):
        return None
    known: dict[str, Known] = {n: e for n, e in entries.items() if e is not None}
    recorded, reads = recording_reads(source)
    partial = project(state, fp, recorded.read_other, only=reached)
    inputs = MemoInputs({**meta.inputs.reads, **reads}, tuple(secret_refs(state)))
    digest, unresolved = memo.inputs_digest(source, inputs, fp, options)

    network = connect(state, state_dir, config_root)
    try:
        results = await asyncio.gather(
            *(_read_changes(n, network.drivers.get(n), known[n], meta) for n in names)
        )
        if any(r is None for r in results):
            return None
        resources = {(k, key) for k, keys in reached.items() for key in keys}
        # From here the stored target is the new config's (its digest says so):
        # a full plan that follows finds it current.
        moved = targets.replace(digest, shared.old_refs(owners, reached), partial, resources)
        cache = ObservationCache(state_dir)
        loaded = {n: o for n in names if moved.get(n) and (o := cache.load(n)) is not None}
        observations: dict[str, Observation] = {}
        replans: dict[str, Replan] = {}
        for name, found in zip(names, results, strict=True):
            assert found is not None
            observations[name], latest = found
            changes = dict(latest)
            extra = moved.get(name, set()) - latest.keys()
            if extra:
                # Not in the feed since the memo's revision: as the cache has it,
                # when the cache was read at or after that revision.
                cached = loaded.get(name)
                rev = observations[name].revision
                if cached is None or not cached.ok or cached.revision is None or rev is None:
                    return None
                if not known[name].revision <= cached.revision <= rev:
                    return None
                for coll, key in extra:
                    changes[(coll, key)] = cached.records.get(coll, {}).get(key)
            desired = _desired(name, changes, moved.get(name, set()), partial, targets)
            replans[name] = Replan(known[name], changes, desired)
        plan, kept = plan_incrementally(
            {n: state.elements[n].type for n in names},
            observations,
            replans,
            None,
            unresolved,
            state.settings,
            options,
            source.commit,
            str(config_root),
        )
        shared.save(store.dir, shared.moved_on(owners, reached, partial, state, source, digest))
        for name, k in kept.items():
            store.save_element(name, Known(digest, k.revision, k.operations, k.warnings, k.keys))
        references = memo.reference_digests(source, inputs, [options])[0]
        store.save_meta(
            memo.MemoMeta(digest, inputs, state.settings, dict(state.elements), references)
        )
        await _refresh_cache(network, state_dir, names, loaded)
    finally:
        await network.close()
    return PlanRun(plan, state, source)
