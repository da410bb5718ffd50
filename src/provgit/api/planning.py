"""Planning: the memo path when nothing it depends on changed, else target +
observe + plan; the contact-free diff of two configs; what `status` derives from.

Internal to the API (`provgit.api`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

from provgit.api import verifying
from provgit.api.known_numbers import known_numbers
from provgit.api.network import Network, connect, fingerprinter, observe_network
from provgit.drivers.base import Driver, ElementError, StoredRecord
from provgit.incremental import apart, shared
from provgit.incremental import disk as memo
from provgit.incremental.disk import MemoInputs
from provgit.incremental.known import Known, known_of
from provgit.incremental.session import Replan, plan_incrementally
from provgit.incremental.store import TargetStore
from provgit.model.settings import ObserveSettings, Settings
from provgit.model.state import DesiredState
from provgit.observe import (
    UNTRUSTED,
    Observation,
    ObservationCache,
    ObservedState,
    changes_since,
    observe,
)
from provgit.plan import Plan, PlanOptions, compute_plan
from provgit.plan.feed_check import with_feed_checks
from provgit.projection import Target, project
from provgit.records import COLLECTIONS
from provgit.secrets import Fingerprinter
from provgit.source import ConfigSource
from provgit.validate.cache import recording_reads
from provgit.wire.digest import from_text


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
    # Per element, records a full read found changed that the change feed
    # never named (drift; the element's feed cannot be trusted).
    feed_missed: Mapping[str, frozenset[tuple[str, str]]] = field(default_factory=dict)

    @property
    def settings(self) -> Settings:
        return self.state.settings


async def plan_network(
    state: DesiredState,
    source: ConfigSource,
    config_root: Path,
    state_dir: Path,
    options: PlanOptions,
    full_read: bool = False,
) -> PlanRun:
    """target + observe + plan for a validated config (the full path). An
    element whose last full read is older than `observe.full_read_hours`
    (every element with `full_read`) is read in full."""
    fp = fingerprinter(state, state_dir)
    recorded, reads = recording_reads(source)
    target = project(state, fp, recorded.read_other)
    inputs = MemoInputs(reads, tuple(fp.seen))
    # The target store and owners index need only the projection: written
    # apart (a forked child) while the elements are observed and planned.
    writing = _write_target(state, source, inputs, target, state_dir, options)
    try:
        network = connect(state, state_dir, config_root, options.elements)
        names = list(network.drivers)
        full = names if full_read else full_reads_due(state_dir, names, state.settings)
        try:
            observed = await observe_network(network, state_dir, full=full, expected=target.records)
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
            # A run cut to some elements: what the others were last seen to hold.
            more_numbers=known_numbers(state_dir, (n for n in state.elements if n not in observed)),
        )
    finally:
        if writing is not None:
            write_behind(writing.join)
    if memo.enabled():
        _remember(state, source, inputs, observed, plan, state_dir, options)
    missed = {n: o.missed for n, o in observed.items() if o.missed}
    plan = with_feed_checks(plan, verifying.feed_checks_of(observed, full))
    return PlanRun(plan, state, source, feed_missed=missed)


def held_safety(run: PlanRun, state_dir: Path) -> PlanRun:
    """`run` held to the stricter of the safety each element was last applied
    under and the config's (plan/held.py), as apply will hold it: an element
    that only the last applied safety refuses shows refused, saying why, and
    the plan says what the config loosens. No journal: the config's alone."""
    from provgit.apply.held_safety import applied_safety
    from provgit.journal import JournalError, JournalReader, journal_exists
    from provgit.plan.held import hold

    if run.plan.mode != "plan" or not journal_exists(state_dir):
        return run
    try:
        with JournalReader.open_read_only(state_dir) as journal:
            applied = applied_safety(journal)
    except JournalError:
        return run  # apply reads it again, and refuses there
    plan = hold(run.plan, applied, run.settings.safety)
    return run if plan is run.plan else dataclasses.replace(run, plan=plan)


def full_reads_due(state_dir: Path, names: Sequence[str], settings: Settings) -> set[str]:
    """The elements whose change feed has gone unverified too long."""
    # Settings a memo kept from before `observe:` existed lack it: the default.
    observe = getattr(settings, "observe", None) or ObserveSettings()
    max_age = observe.full_read_hours * 3600
    return ObservationCache(state_dir).full_read_due(names, max_age, time.time())


# Set by `memo_written_behind`: the memo writes still in flight, waited for
# when it ends (None: each full plan waits for its own before it returns).
_BEHIND: ContextVar[list[Callable[[], None]] | None] = ContextVar(
    "memo_written_behind", default=None
)


def write_behind(join: Callable[[], None]) -> None:
    """`join` (a memo write in flight: wait for it, finish it) now, or on
    leaving `memo_written_behind` when within it."""
    behind = _BEHIND.get()
    if behind is None:
        join()
    else:
        behind.append(join)


# Set by `memo_written_behind`: what a plan left for its caller to free.
_LEFT: ContextVar[list[object] | None] = ContextVar("memo_written_behind_left", default=None)


def leave_to_caller(*values: object) -> None:
    """Within `memo_written_behind`, `values` (a plan's working data: the
    records it read and re-planned) go to the list it yields, for its caller
    to free when it likes (`provgit plan`: at the process's end, not one
    object at a time on its way out, ~0.1 CPU s for a template change at
    100,000 users); elsewhere they are freed as usual."""
    left = _LEFT.get()
    if left is not None:
        left.extend(values)


@contextlib.contextmanager
def memo_written_behind() -> Iterator[list[object]]:
    """Within: a full plan returns while its target store and owners index are
    still being written (`_write_target`), so its caller renders the plan on
    one core as they are written on the other; they are waited for (and a
    failed write done again here) on leaving. Until then the memo is simply
    not used (its meta names a digest the store does not have yet): only for
    a caller that reads no stored target meanwhile (`provgit plan`). Yields
    the values the plan left to its caller to free (`leave_to_caller`)."""
    pending: list[Callable[[], None]] = []
    left: list[object] = []
    token = _BEHIND.set(pending)
    left_token = _LEFT.set(left)
    try:
        yield left
    finally:
        _LEFT.reset(left_token)
        _BEHIND.reset(token)
        for join in pending:
            join()


def memo_written_now() -> None:
    """Within `memo_written_behind`: wait for the memo writes in flight (and
    finish them) now, before what reads the memo (a report reads the stored
    target). Outside it, nothing is in flight: nothing to do."""
    behind = _BEHIND.get()
    while behind:
        behind.pop(0)()


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
        # Only a full plan writes the owners index: its view of the users loads
        # every telephony model, which a plan from the memo never needs.
        from provgit.incremental.shared_view import view_of

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


def memo_full_reads_due(state_dir: Path, options: PlanOptions) -> bool:
    """Whether an element the last plan named (all, or `options.elements`)
    is due a full read, or had one find changes its feed missed (not yet
    reviewed): then the plan takes the full path, which reads it."""
    meta = memo.PlanMemo(state_dir).load_meta()
    if meta is None:
        return False
    names = [n for n in meta.elements if not options.elements or n in options.elements]
    cache = ObservationCache(state_dir)
    return bool(full_reads_due(state_dir, names, meta.settings)) or any(
        cache.missed(n) for n in names
    )


# long: one guarded sequence in which every step may send the plan to the full path
async def plan_from_memo(
    source: ConfigSource,
    config_root: Path,
    state_dir: Path,
    options: PlanOptions,
    full_read: bool = False,
) -> PlanRun | None:
    """The plan from the last one and each element's change feed, when nothing
    else it depends on changed; None means "take the full path". An element
    due a full read (every one with `full_read`) is read in full here, one at
    a time, and what its feed missed is re-planned with what the feed named
    (`verifying`), instead of planning the whole network again."""
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
    due = names if full_read else sorted(full_reads_due(state_dir, names, meta.settings))
    entries = {n: store.load_element(n) for n in names}
    if any(e is None or e.version != digest for e in entries.values()):
        return None
    network = connect(light, state_dir, config_root, options.elements)
    try:
        # Before the feeds are read: a change after a full read is then named
        # by the feed, and re-planned from it.
        verified = await verifying.verify_due(network, state_dir, due)
        if verified is None:
            return None
        results = await asyncio.gather(
            *(_read_changes(n, network.drivers.get(n), entries[n], meta) for n in names)  # type: ignore[arg-type]
        )
        if all(r is not None for r in results):
            now = {
                n: (r[0].revision, r[0].digest)
                for n, r in zip(names, results, strict=True)
                if r is not None
            }
            # What it finds the feeds missed (the digest said so) stays with
            # the cache, unreviewed, and is re-planned below.
            await _refresh_cache(network, state_dir, names, current=now)
    finally:
        await network.close()
    if any(found is None for found in results):
        return None
    earlier, earlier_held = verifying.unreviewed(state_dir, names, due)
    observations: dict[str, Observation] = {}
    replans: dict[str, Replan] = {}
    for name, found in zip(names, results, strict=True):
        assert found is not None
        observations[name], latest = found
        if name in verified.held:
            latest = verifying.with_missed(latest, verified.held[name], verified.revision.get(name))
        elif name in earlier_held:
            latest = verifying.with_missed(latest, earlier_held[name], None)
        entry = entries[name]
        assert entry is not None
        replans[name] = Replan(entry, latest, targets.partial(name, latest))
    planned = plan_incrementally(
        {n: meta.elements[n].type for n in names},
        observations,
        replans,
        None,
        unresolved,
        meta.settings,
        options,
        source.commit,
        str(config_root),
        known_numbers(state_dir, meta.elements, targets),
    )
    if planned is None:
        return None  # a number swap's spare is chosen knowing every number
    plan, kept = planned
    for name, known in kept.items():
        if not _same_memo(known, entries[name], replans[name]):
            # Re-planned against the stored target: its writes' fields are its rows.
            store.save_element(name, known, rows_in_target=True)
    if meta.references is None:
        # A memo from before the reference digest: give it one (what `status`
        # checks where the secret values are not set), without a full plan.
        references = memo.reference_digests(source, meta.inputs, [options])[0]
        store.save_meta(dataclasses.replace(meta, references=references))
    plan = with_feed_checks(plan, verifying.feed_checks(verified, earlier))
    return PlanRun(plan, light, source, feed_missed=verifying.missed_of(verified, earlier))


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
    current: Mapping[str, tuple[int | None, int | None]] | None = None,
) -> set[str]:
    """Bring the observation cache to the elements' feeds. The memo path reads
    only what changed since the last plan; `status` derives from the cache once
    the config changes, and a stale one shows a record the element no longer
    holds (a write a killed run landed, an out-of-band edit) as it was.
    `loaded`: the cache as the caller already read it; `current`: the
    elements' revisions and content digests now (a cache at that revision
    and digest is not read at all: loading 300,000 cached records was most of
    a reconcile with nothing to do). The elements whose feed missed changes
    (the digest said so, a full read found them) are returned."""
    cache = ObservationCache(state_dir)
    loaded = dict(loaded or {})
    for name in names:
        now, digest = (current or {}).get(name, (None, None))
        stamped = cache.stamped(name) if name not in loaded and now is not None else None
        if stamped is not None and stamped[0] == now and _agrees(stamped[1], digest):
            cache.still_current(name)
            continue
        if name not in loaded and (found := cache.load(name)) is not None:
            loaded[name] = found
    previous = {n: o for n, o in loaded.items() if o.ok}
    drivers = {n: network.drivers[n] for n in previous if n in network.drivers}
    if not drivers:
        return set()
    observed = await observe(drivers, previous)
    with contextlib.suppress(OSError):
        cache.save_all({n: o for n, o in observed.items() if o.ok}, previous)
    return {n for n, o in observed.items() if o.missed}


def _agrees(kept: int | None, element: int | None) -> bool:
    """The cached copy's digest is the element's, or one of them has none
    (or the element's own was found not to be trusted)."""
    return kept is None or element is None or kept in (element, UNTRUSTED)


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
        if info.state == "offline" or info.revision < entry.revision:
            # Behind the memo: a replaced, reinstalled or repointed element,
            # whose empty feed would say it holds what the memo saw.
            return None
        latest, revision = await changes_since(
            name, driver, entry.revision, list(COLLECTIONS.get(element_type, {}))
        )
    except ElementError:
        return None  # the full path observes it and says why
    state: ObservedState = "locked" if info.state == "locked" else "running"
    # The digest only counts at the revision it was read at (`_refresh_cache`).
    digest = from_text(info.digest) if revision == info.revision else None
    return Observation(name, state, revision, digest=digest), latest


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
