"""The plan after a config change, re-projecting and re-planning only what the
change reaches, against what the last plan knew of each element.

A template edit used to miss the plan memo and pay a full plan: project
100,000 users, read ~300,000 records from the elements, compare them all and
write the whole target again. What changed is known from the config files
(`incremental.shared`: which file defined which resources), what it reaches
from the dependency index (`projection.reach`: a template its roles and
users, a role its users, an element's partner its hosted users). Those
resources are projected again and replace theirs in the stored target; their
records (those they had and have) are re-planned with the ones each element's
change feed names (`incremental.replan`), their current value read from the
observation cache refreshed through the feed. A change that reaches many
records writes the stored target, the owners and the element memos in forked
children (`incremental.apart`) while it re-plans and renders; the meta, the
memo's commit point, is written once they succeeded. The result equals the full plan
(tests/plan/test_shared_change.py holds it to that); anything it cannot bound
(settings, elements added, removed or re-scoped, another code version, secret
values, prompt audio, an element that cannot be read) takes the full path.

Internal to the API (`provgit.api`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from provgit.api.known_numbers import known_numbers
from provgit.api.network import Network, connect, fingerprinter
from provgit.api.planning import (
    PlanRun,
    _read_changes,
    _refresh_cache,
    leave_to_caller,
    memo_full_reads_due,
    plan_network,
    write_behind,
)
from provgit.incremental import apart, shared
from provgit.incremental import disk as memo
from provgit.incremental.disk import MemoInputs, StoredKnown
from provgit.incremental.known import Known
from provgit.incremental.session import Replan, plan_incrementally
from provgit.incremental.shared_view import SharedView, light_view, view_of
from provgit.incremental.store import TargetStore
from provgit.load.cache import ParseCache
from provgit.model.network import Element
from provgit.model.state import DesiredState
from provgit.observe import Observation, ObservationCache, ObservedRecords
from provgit.plan import PlanOptions
from provgit.projection import Target, project
from provgit.projection.project import RecordRef
from provgit.projection.reach import CONNECTION_FIELDS, DependencyIndex, element_reach
from provgit.secrets import Fingerprinter
from provgit.source import ConfigSource
from provgit.validate.by_file import network_if_valid
from provgit.validate.cache import files_key, recording_reads

# How many records a change must reach for its memo writes to be done in
# forked children (`apart`): a fork and its copied pages cost ~0.1-0.2 CPU s at
# 100,000 users, more than a role's or a COS's writes (a template's: ~1.3 s).
APART_RECORDS = 5_000


def _reconnected(old: Mapping[str, Element], new: Mapping[str, Element]) -> bool:
    """An element now reached another way: the memo's revision is of what the
    old connection led to, which may be another element."""
    return any(
        getattr(old[n], f) != getattr(e, f) for n, e in new.items() for f in CONNECTION_FIELDS
    )


def _records_of(old: dict[str, set[RecordRef]], new: Target) -> dict[str, set[RecordRef]]:
    """Per element, the records of `old` and those of `new`."""
    out = {name: set(refs) for name, refs in old.items()}
    for name, collections in new.records.items():
        mine = out.setdefault(name, set())
        for coll, recs in collections.items():
            mine.update((coll, key) for key in recs)
    return out


def _stored(store: TargetStore, name: str, refs: list[RecordRef]) -> Target:
    """These records of one element as stored (none: an empty target)."""
    return store.partial(name, refs) if refs else Target({name: {}}, {name: {}}, {name: {}})


def _desired(name: str, moved: set[RecordRef], partial: Target, rest: Target) -> Target:
    """The desired records of the records to re-plan on one element: those
    the change moved as just projected (`partial`), the others (named by the
    feed) as stored (`rest`, `_stored`)."""
    out = rest
    records, depends, origin = out.records[name], out.depends[name], out.origin[name]
    have = partial.records.get(name, {})
    # Looked up once, not per record (38,000 for a template at 100,000 users).
    new_depends, new_origin = partial.depends.get(name, {}), partial.origin.get(name, {})
    for ref in moved:
        coll, key = ref
        fields = have.get(coll, {}).get(key)
        if fields is None:
            continue
        records.setdefault(coll, {})[key] = fields
        if (dep := new_depends.get(ref)) is not None:
            depends[ref] = dep
        if (org := new_origin.get(ref)) is not None:
            origin[ref] = org
    out.excluded, out.read_only = partial.excluded, partial.read_only
    return out


@dataclass
class _MemoBehind:
    """The shared path's memo writes in flight (`writing`: the target store
    and owners, the element memos). The meta, the memo's commit point, is
    written once every one succeeded; else removed: the next plan takes the
    full path, never a memo some of whose files are missing or stale."""

    store: memo.PlanMemo
    meta: memo.MemoMeta
    writing: list[apart.Apart]

    def join(self) -> None:
        done = [w.wait() for w in self.writing]  # every child waited for
        if all(done):
            self.store.save_meta(self.meta)
        else:
            self.store.forget_meta()


async def _from_cache(
    network: Network, cache: ObservationCache, name: str, known: Known, now: Observation
) -> ObservedRecords | None:
    """The element's records as its observation cache has them, the cache
    then brought to the element's feed (`status` derives from it once the
    config changed). None when the cache cannot stand in for the records the
    feed does not name: absent, failed, or not read between the memo's
    revision and now."""
    cached = cache.load(name)
    if cached is None:
        return None
    await _refresh_cache(network, cache.dir.parent, [name], {name: cached})
    if not cached.ok or cached.revision is None or now.revision is None:
        return None
    if not known.revision <= cached.revision <= now.revision:
        return None
    return cached.records


@dataclass(frozen=True)
class _Memo:
    """The last plan's memo, current but for the config files."""

    store: memo.PlanMemo
    meta: memo.MemoMeta
    owners: shared.Owners
    targets: TargetStore
    # Its references fingerprinted (each once a run: the new digest reuses them).
    fingerprints: Fingerprinter


def _memo(source: ConfigSource, state_dir: Path, options: PlanOptions) -> _Memo | None:
    """The memo, when everything but the config files is as the last plan had
    it: the code, the prompt audio, the secret values, --prune."""
    # A plan of some elements would leave the others' memos behind.
    if not memo.enabled() or options.elements:
        return None
    store = memo.PlanMemo(state_dir)
    meta = store.load_meta()
    owners = shared.load(store.dir)
    targets = TargetStore(store.target_path)
    if meta is None or owners is None or owners.digest != meta.digest:
        return None
    if any(e.read_only for e in meta.elements.values()):
        return None  # status compares a read-only element's full reading: observe it
    if targets.digest() != meta.digest:
        return None
    light = DesiredState(meta.settings, {"elements": meta.elements}, commit=source.commit)
    fp = fingerprinter(light, state_dir)
    was, _ = memo.inputs_digest(source, meta.inputs, fp, options, files_key(owners.files, []))
    return _Memo(store, meta, owners, targets, fp) if was == meta.digest else None


async def plan_changed(
    source: ConfigSource,
    config_root: Path,
    state_dir: Path,
    options: PlanOptions,
    validated: Callable[[], DesiredState],
    full_read: bool = False,
) -> PlanRun:
    """The plan after a config change: through the shared path without every
    user's model when it can, else with the validated state (`validated`:
    `InvalidConfig` when it does not validate), else in full; in full too
    when an element is due a full read (every one with `full_read`)."""
    # A plan cut to some elements: the deletes it holds as moves (plan/moves.py)
    # need what the config wants on the elements it leaves out (the whole target).
    if full_read or options.elements or memo_full_reads_due(state_dir, options):
        return await plan_network(validated(), source, config_root, state_dir, options, full_read)
    light = (
        "full"
        if options.claim
        else await plan_shared_light(source, config_root, state_dir, options)
    )
    if not isinstance(light, str):
        return light
    state = validated()
    if light == "state":
        changed = await plan_shared_change(state, source, config_root, state_dir, options)
        if changed is not None:
            return changed
    return await plan_network(state, source, config_root, state_dir, options)


async def plan_shared_light(
    source: ConfigSource, config_root: Path, state_dir: Path, options: PlanOptions
) -> PlanRun | Literal["state", "full"]:
    """`plan_shared_change` without building every user's model: the config
    validated from each file's stored facts (`validate.by_file`), the users
    read from the owners memo but for the changed files and the reached users
    (`incremental.shared_view`). "state": this cannot tell, try
    `plan_shared_change` with the validated state; "full": take the full path."""
    found = _memo(source, state_dir, options)
    if found is None:
        return "full"
    network = network_if_valid(source, state_dir / "cache")
    if network is None or any(e.read_only for e in network.elements.values()):
        return "state"  # a finding to report, or one the facts cannot settle
    view = light_view(found.owners, network, source, ParseCache(state_dir / "cache"))
    if view is None:
        return "state"
    run = await _plan_view(view, found, source, config_root, state_dir, options)
    return "full" if run is None else run


async def plan_shared_change(
    state: DesiredState,
    source: ConfigSource,
    config_root: Path,
    state_dir: Path,
    options: PlanOptions,
) -> PlanRun | None:
    """The plan for `state` from the last one, re-projecting only what changed
    since and what reads it; None means "take the full path"."""
    found = _memo(source, state_dir, options)
    if found is None:
        return None
    run = await _plan_view(view_of(state), found, source, config_root, state_dir, options)
    # The whole state: a read-only element's status is derived from it.
    return None if run is None else PlanRun(run.plan, state, source)


# long: one guarded sequence in which every step may send the plan to the full path
async def _plan_view(
    view: SharedView,
    memo_now: _Memo,
    source: ConfigSource,
    config_root: Path,
    state_dir: Path,
    options: PlanOptions,
) -> PlanRun | None:
    store, meta, owners, targets = memo_now.store, memo_now.meta, memo_now.owners, memo_now.targets
    state = view.network
    if state.settings != meta.settings:
        return None  # settings set every sharing scope: the reach is everything
    fp = memo_now.fingerprints  # the same settings, so the same key
    hosts = element_reach(meta.elements, state.elements)
    if hosts is None or _reconnected(meta.elements, state.elements):
        return None
    parsed = ParseCache(state_dir / "cache")
    changed = shared.changed_resources(owners, view.defines, source, parsed)
    # The reverse edges of 100,000 users are read only when a template, a role
    # or a partner changed: a COS or a prompt reaches no user.
    readers = hosts or changed.keys() & {"templates", "roles"}
    reached = (view.index() if readers else DependencyIndex()).reach(changed, hosts, state)
    names = list(meta.elements)
    entries = {n: store.load_stored(n) for n in names}
    if reached is None or any(e is None or e.version != meta.digest for e in entries.values()):
        return None
    stored: dict[str, StoredKnown] = {n: e for n, e in entries.items() if e is not None}
    # Their operations are decoded once what is planned again is known.
    known: dict[str, Known] = {n: e.head() for n, e in stored.items()}
    projected = view.state_with(reached.get("users", set()))
    if projected is None:
        return None
    recorded, reads = recording_reads(source)
    partial = project(projected, fp, recorded.read_other, only=reached)
    del projected
    inputs = MemoInputs({**meta.inputs.reads, **reads}, tuple(view.secret_refs()))
    digest, unresolved = memo.inputs_digest(source, inputs, fp, options)

    network = connect(state, state_dir, config_root)
    writing: list[apart.Apart] = []  # the memo writes started apart (below)
    try:
        results = await asyncio.gather(
            *(_read_changes(n, network.drivers.get(n), known[n], meta) for n in names)
        )
        if any(r is None for r in results):
            return None
        resources = {(k, key) for k, keys in reached.items() for key in keys}
        now_records = shared.records_of(partial)
        relocate = not shared.same_records(owners, resources, now_records)
        old = shared.old_refs(owners, reached)
        # Every record the reached resources had or have is planned again, not
        # only those whose desired state moved: which moved is known once the
        # stored rows are read and compared (0.5 s for a template at 100,000
        # users), done apart with the write; a record planned again whose
        # desired state did not move gets the operation it had.
        moved = _records_of(old, partial)
        # What the feeds named that the change did not reach, as stored: read
        # before the store is written (below), so nothing here waits on it.
        rests = {
            n: _stored(targets, n, [r for r in found[1] if r not in moved.get(n, ())])
            for n, found in zip(names, results, strict=True)
            if found is not None
        }

        def write_target() -> None:
            # From here the stored target is the new config's (its digest says
            # so): a full plan that follows finds it current. The owners go to
            # disk under the new digest: the old meta does not match them until
            # it is written, so a run that stops here plans in full next time.
            # Every record of `old` and `partial` is planned again: which moved
            # need not be known, nor the stored rows read.
            targets.replace(digest, old, partial, resources, relocate, compare=False)
            moved_on = shared.moved_on(
                owners, reached, now_records, view.defines, view.users, source, digest
            )
            shared.save(store.dir, moved_on)

        # Apart (a forked child) while the records are re-planned and the plan
        # rendered, when there is enough to write to be worth a fork; waited
        # for before this returns, or by `memo_written_behind`.
        many = sum(map(len, moved.values())) >= APART_RECORDS
        writing.append(apart.start(write_target, fork=many))
        # The owners' records (every record of the network) are let go before
        # the observation caches are decoded: the peak.
        owners.records.clear()
        cache = ObservationCache(state_dir)
        replans: dict[str, Replan] = {}
        observations: dict[str, Observation] = {}
        for name, found in zip(names, results, strict=True):
            assert found is not None
            observations[name], latest = found
            changes = dict(latest)
            mine = moved.get(name, set())
            extra = mine - latest.keys()  # not in the feed since the memo's revision
            now = observations[name].revision
            if extra and now is not None and cache.revision(name) == now:
                # The cache is of the element as it is now: just those records.
                got = cache.fields_of(name, extra)
                if got is None:
                    return None
                cache.still_current(name)
                changes.update(got)
            elif mine:
                # One element's cache at a time (300,000 records in all), dropped
                # before the next is read.
                cached = await _from_cache(network, cache, name, known[name], observations[name])
                if extra:
                    if cached is None:
                        return None
                    changes.update({(c, k): cached.get(c, {}).get(k) for c, k in extra})
            desired = _desired(name, mine, partial, rests.pop(name))
            replans[name] = Replan(stored[name].known(skip=changes.keys()), changes, desired)
        planned = plan_incrementally(
            {n: state.elements[n].type for n in names},
            observations,
            replans,
            None,
            unresolved,
            state.settings,
            options,
            source.commit,
            str(config_root),
            # Never read: a swap's spare sends this plan to the full path.
            known_numbers(state_dir, state.elements, targets),
        )
        if planned is None:
            return None  # a number swap's spare is chosen knowing every number
        plan, kept = planned

        def save_elements() -> None:
            for name, k in kept.items():
                after = Known(digest, k.revision, k.operations, k.warnings, k.keys)
                store.save_element(name, after, kept=stored[name])

        writing.append(apart.start(save_elements, fork=many))
        references = memo.reference_digests(source, inputs, [options])[0]
        meta_now = memo.MemoMeta(digest, inputs, state.settings, dict(state.elements), references)
        finish = _MemoBehind(store, meta_now, writing)
        writing = []
        write_behind(finish.join)
        # Freed by the caller (`provgit plan`: at the process's end), not
        # here one object at a time: the records read and re-planned.
        leave_to_caller(replans, observations, results, moved, old, stored, known, entries)
        leave_to_caller(kept, now_records, partial, memo_now, view)
    finally:
        # A plan that ends here (the full path next, or an error) lets no
        # write outlive it; the meta, not written, does not match them.
        for started in writing:
            started.wait()
        await network.close()
    light = DesiredState(state.settings, {"elements": state.elements}, commit=source.commit)
    return PlanRun(plan, light, source)
