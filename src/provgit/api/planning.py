"""Planning: the memo path when nothing it depends on changed, else target +
observe + plan; the contact-free diff of two configs; what `status` derives from.

Internal to the API (`provgit.api`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from provgit.api.network import Network, connect, desired_target, fingerprinter, observe_network
from provgit.drivers.base import Driver, ElementError, StoredRecord
from provgit.incremental import apart, shared
from provgit.incremental import disk as memo
from provgit.incremental.disk import MemoInputs
from provgit.incremental.known import Known, known_of
from provgit.incremental.session import Replan, plan_incrementally
from provgit.incremental.shared_view import view_of
from provgit.incremental.store import TargetStore
from provgit.model.settings import Settings
from provgit.model.state import DesiredState
from provgit.observe import Observation, ObservationCache, changes_since, observe
from provgit.plan import Plan, PlanOptions, compute_plan
from provgit.projection import Target, project
from provgit.records import COLLECTIONS
from provgit.secrets import Fingerprinter, network_key
from provgit.source import ConfigSource
from provgit.validate.cache import recording_reads


@dataclass(frozen=True)
class PlanRun:
    """A plan and the config it was made from.

    On the memo path `state` is light: the settings and elements the last full
    plan stored, no resources (the plan did not need them). It carries no
    projection: the full path's is not kept, the memo path never makes one.
    """

    plan: Plan
    state: DesiredState
    source: ConfigSource
    # Observed in this run (a saved plan is not): records with no operation
    # are in sync, so an apply may close their pending updates and errors.
    fresh: bool = True

    @property
    def settings(self) -> Settings:
        return self.state.settings


async def plan_network(
    state: DesiredState,
    source: ConfigSource,
    config_root: Path,
    state_dir: Path,
    options: PlanOptions,
) -> PlanRun:
    """target + observe + plan for a validated config (the full path)."""
    fp = fingerprinter(state, state_dir)
    recorded, reads = recording_reads(source)
    target = project(state, fp, recorded.read_other)
    inputs = MemoInputs(reads, tuple(fp.seen))
    # The target store and owners index need only the projection: written
    # apart (a forked child) while the elements are observed and planned.
    writing = _write_target(state, source, inputs, target, state_dir, options)
    behind = _BEHIND.get()
    try:
        network = connect(state, state_dir, config_root, options.elements)
        try:
            observed = await observe_network(network, state_dir)
        finally:
            await network.close()
        plan = compute_plan(
            target,
            observed,
            state.settings,
            {n: e.type for n, e in state.elements.items()},
            options,
            commit=source.commit,
            source=str(config_root),
        )
    finally:
        if writing is not None:
            if behind is None:
                writing.join()
            else:
                behind.append(writing)
    if memo.enabled():
        _remember(state, source, inputs, observed, plan, state_dir, options)
    return PlanRun(plan, state, source)


# Set by `memo_written_behind`: the memo writes still in flight, waited for
# when it ends (None: each full plan waits for its own before it returns).
_BEHIND: ContextVar[list[apart.Apart] | None] = ContextVar("memo_written_behind", default=None)


@contextlib.contextmanager
def memo_written_behind() -> Iterator[None]:
    """Within: a full plan returns while its target store and owners index are
    still being written (`_write_target`), so its caller renders the plan on
    one core as they are written on the other; they are waited for (and a
    failed write done again here) on leaving. Until then the memo is simply
    not used (its meta names a digest the store does not have yet): only for
    a caller that reads no stored target meanwhile (`provgit plan`)."""
    pending: list[apart.Apart] = []
    token = _BEHIND.set(pending)
    try:
        yield
    finally:
        _BEHIND.reset(token)
        for writing in pending:
            writing.join()


def _write_target(
    state: DesiredState,
    source: ConfigSource,
    inputs: MemoInputs,
    target: Target,
    state_dir: Path,
    options: PlanOptions,
) -> apart.Apart | None:
    """Start writing the memo's target store and owners index (None: no memo)."""
    if not memo.enabled():
        return None
    store = memo.PlanMemo(state_dir)
    digest, _ = memo.inputs_digest(source, inputs, fingerprinter(state, state_dir), options)
    targets = TargetStore(store.target_path)
    write_store = targets.digest() != digest

    def work() -> None:
        # Each resource's records, found once: the owners index and the
        # store's landing table are both made from them.
        records = shared.records_of(target)
        if write_store:
            targets.save(target, digest, records)
        view = view_of(state)
        owners = shared.owners_of(target, view.defines, view.users, source, digest, records)
        shared.save(store.dir, owners)

    return apart.start(work)


def _remember(
    state: DesiredState,
    source: ConfigSource,
    inputs: MemoInputs,
    observed: dict[str, Observation],
    plan: Plan,
    state_dir: Path,
    options: PlanOptions,
) -> None:
    """The rest of the memo, once its target store and owners are written
    (`_write_target`): the meta, then each element's operations."""
    store = memo.PlanMemo(state_dir)
    digest, _ = memo.inputs_digest(source, inputs, fingerprinter(state, state_dir), options)
    references = memo.reference_digests(source, inputs, [options])[0]
    store.save_meta(memo.MemoMeta(digest, inputs, state.settings, dict(state.elements), references))
    for ep in plan.elements:
        obs = observed.get(ep.element)
        if obs is None or not ep.observed:
            store.forget_element(ep.element)
            continue
        keys = {c: list(recs) for c, recs in obs.records.items()}
        # The plan was made against `target`: its writes' fields are its rows.
        store.save_element(ep.element, known_of(ep, digest, keys), rows_in_target=True)


async def plan_from_memo(
    source: ConfigSource, config_root: Path, state_dir: Path, options: PlanOptions
) -> PlanRun | None:
    """The plan from the last one and each element's change feed, when nothing
    else it depends on changed; None means "take the full path"."""
    if not memo.enabled():
        return None
    store = memo.PlanMemo(state_dir)
    meta = store.load_meta()
    if meta is None:
        return None
    light = DesiredState(meta.settings, {"elements": meta.elements}, commit=source.commit)
    digest, unresolved = memo.inputs_digest(
        source, meta.inputs, fingerprinter(light, state_dir), options
    )
    targets = TargetStore(store.target_path)
    if digest != meta.digest or targets.digest() != digest:
        return None
    if any(n not in meta.elements for n in options.elements):
        return None  # the full path says which names are unknown
    names = [n for n in meta.elements if not options.elements or n in options.elements]
    entries = {n: store.load_element(n) for n in names}
    if any(e is None or e.version != digest for e in entries.values()):
        return None
    network = connect(light, state_dir, config_root, options.elements)
    try:
        results = await asyncio.gather(
            *(_read_changes(n, network.drivers.get(n), entries[n], meta) for n in names)  # type: ignore[arg-type]
        )
        if all(r is not None for r in results):
            now = {n: r[0].revision for n, r in zip(names, results, strict=True) if r is not None}
            await _refresh_cache(network, state_dir, names, current=now)
    finally:
        await network.close()
    observations: dict[str, Observation] = {}
    replans: dict[str, Replan] = {}
    for name, found in zip(names, results, strict=True):
        if found is None:
            return None
        observations[name], latest = found
        entry = entries[name]
        assert entry is not None
        replans[name] = Replan(entry, latest, targets.partial(name, latest))
    plan, kept = plan_incrementally(
        {n: meta.elements[n].type for n in names},
        observations,
        replans,
        None,
        unresolved,
        meta.settings,
        options,
        source.commit,
        str(config_root),
    )
    for name, known in kept.items():
        if not _same_memo(known, entries[name], replans[name]):
            # Re-planned against the stored target: its writes' fields are its rows.
            store.save_element(name, known, rows_in_target=True)
    if meta.references is None:
        # A memo from before the reference digest: give it one (what `status`
        # checks where the secret values are not set), without a full plan.
        references = memo.reference_digests(source, meta.inputs, [options])[0]
        store.save_meta(dataclasses.replace(meta, references=references))
    return PlanRun(plan, light, source)


def _same_memo(known: Known, entry: Known | None, replan: Replan) -> bool:
    """Nothing new on the element (an empty feed), so its memo file already
    says this: rewriting 15 files of 100,000 keys is most of a no-op plan's
    writing. (The keys compare by their feed, not as lists: their order may differ.)"""
    return (
        entry is not None
        and not replan.changed
        and known.revision == entry.revision
        and known.version == entry.version
        and known.operations == entry.operations
        and known.warnings == entry.warnings
    )


async def _refresh_cache(
    network: Network,
    state_dir: Path,
    names: Sequence[str],
    loaded: dict[str, Observation] | None = None,
    current: Mapping[str, int | None] | None = None,
) -> None:
    """Bring the observation cache to the elements' feeds. The memo path reads
    only what changed since the last plan; `status` derives from the cache once
    the config changes, and a stale one shows a record the element no longer
    holds (a write a killed run landed, an out-of-band edit) as it was.
    `loaded`: the cache as the caller already read it; `current`: the
    elements' revisions now (a cache at that revision is not read at all:
    loading 300,000 cached records was most of a reconcile with nothing to do)."""
    cache = ObservationCache(state_dir)
    loaded = dict(loaded or {})
    for name in names:
        now = (current or {}).get(name)
        if name not in loaded and now is not None and cache.revision(name) == now:
            cache.still_current(name)
            continue
        if name not in loaded and (found := cache.load(name)) is not None:
            loaded[name] = found
    previous = {n: o for n, o in loaded.items() if o.ok}
    drivers = {n: network.drivers[n] for n in previous if n in network.drivers}
    if not drivers:
        return
    observed = await observe(drivers, previous)
    with contextlib.suppress(OSError):
        cache.save_all({n: o for n, o in observed.items() if o.ok}, previous)


async def _read_changes(
    name: str, driver: Driver | None, entry: Known, meta: memo.MemoMeta
) -> tuple[Observation, dict[tuple[str, str], StoredRecord | None]] | None:
    """The element as its change feed has it since the memo's revision: its
    state and revision, and the records written since (None: deleted)."""
    if driver is None:
        return None
    element_type = meta.elements[name].type
    try:
        info = await driver.info()
        if info.state == "offline":
            return None
        latest, revision = await changes_since(
            name, driver, entry.revision, list(COLLECTIONS.get(element_type, {}))
        )
    except ElementError:
        return None  # the full path observes it and says why
    observed = Observation(name, "locked" if info.state == "locked" else "running", revision)
    return observed, latest


def diff_states(
    head: DesiredState,
    head_source: ConfigSource,
    base: DesiredState | None,
    base_source: ConfigSource,
    label: str,
) -> Plan:
    """What changes on each element between two configs, contacting no element:
    the base's projection stands in for what the elements hold (None: an empty
    network). Secret references, not values, are fingerprinted."""
    fp = Fingerprinter(None, resolve_values=False)
    head_target = project(head, fp, head_source.read_other)
    base_target = project(base, fp, base_source.read_other) if base else Target({}, {}, {})
    observed = {
        name: Observation(
            name,
            "running",
            1,
            {
                coll: {k: StoredRecord(coll, k, f, 1) for k, f in recs.items()}
                for coll, recs in base_target.records.get(name, {}).items()
            },
        )
        for name in head.elements
    }
    return compute_plan(
        head_target,
        observed,
        head.settings,
        {n: e.type for n, e in head.elements.items()},
        PlanOptions(),
        commit=head_source.commit,
        source=label,
        mode="diff",
    )


@dataclass(frozen=True)
class StatusInputs:
    """What `provgit status` derives from when the config changed since the last plan."""

    state: DesiredState | None  # None: the config does not validate
    target: Target | None
    problems: int = 0  # validation problems of the config as it is now
    # Secret values not available here (the PIN environment, a key file,
    # secret_key): None when every one was.
    secrets: SecretsUnavailable | None = None


@dataclass(frozen=True)
class SecretsUnavailable:
    """The status was derived where secret values cannot be read, so it checked
    the last plan's inputs by their references alone (`MemoMeta.references`)."""

    unresolved: int  # references that did not resolve here (+1 for secret_key)
    # The config (or provgit) changed since the last plan too: the status shown
    # is the last plan's config's, the change is not derived.
    config_changed: bool


def status_inputs(
    source: ConfigSource, state_dir: Path, cache_dir: Path | None
) -> StatusInputs | None:
    """The config as it is now, projected, when the target the last plan stored
    is not its projection (None: the stored one is). A config that does not
    validate gives no state, only its problem count: the last good target
    stands, and the caller says the status is not of the config as it is.

    Without the secret values (another machine reading the shared journal)
    the last plan's digest cannot match: then its reference digest decides.
    Equal: the stored target stands, and the status says a secret changed
    since is not seen. Not equal: nothing is derived from a projection whose
    secrets cannot be compared (that would call a record with a changed PIN
    Sync Completed); the stored target stands and the status says the change
    was not derived."""
    from provgit.validate import validate_source

    store = memo.PlanMemo(state_dir)
    meta = store.load_meta()
    current = False
    secrets: SecretsUnavailable | None = None
    if meta is not None:
        stored = TargetStore(store.target_path).digest()
        key = network_key(meta.settings.secret_key, state_dir)
        assert key is not None  # made when missing
        # The digest covers --prune; either plan will do.
        either = [PlanOptions(prune=False), PlanOptions(prune=True)]
        digests, unresolved = memo.inputs_digests(
            source, meta.inputs, Fingerprinter(key.secret), either
        )
        current = stored == meta.digest and meta.digest in digests
        missing = len(unresolved) + (key.fallback is not None)
        if missing:
            secrets = SecretsUnavailable(missing, False)
        if not current and missing and stored == meta.digest:
            # A memo without a reference digest (from before it) cannot say
            # either: as if the config changed, until the next plan adds one.
            refs = memo.reference_digests(source, meta.inputs, either) if meta.references else []
            if meta.references not in refs:
                return StatusInputs(None, None, secrets=SecretsUnavailable(missing, True))
            current = True
        if current and not any(e.read_only for e in meta.elements.values()):
            return StatusInputs(None, None, secrets=secrets) if secrets else None
    validated = validate_source(source, cache_dir)
    if not validated.ok:
        errors = sum(1 for d in validated.diagnostics if d.severity == "error")
        return StatusInputs(None, None, errors, secrets)
    state = validated.state
    if current:
        # The stored target stands; the state is for what a read-only element
        # would get (the stored target holds nothing for it).
        return StatusInputs(state, None, secrets=secrets)
    # No memo to stand on (or a stored target not the memo's): the full
    # derivation, where an unresolved secret compares equal; the note says so.
    return StatusInputs(state, desired_target(state, source.read_other, state_dir), secrets=secrets)
