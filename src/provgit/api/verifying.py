"""Full reads on the memo path: verify the elements due one (or all, with
`--full-read`) without sending the whole run down the full planning path.

A full plan projects every user and compares every record of every element:
at 100,000 users that is ~20 CPU seconds and 1.7 GB, paid every
`observe.full_read_hours` only to check the change feeds. Here each due
element is read in full on its own, streamed against its cached observation
(`observe`'s verification), and what the feed missed is handed to the memo's
re-plan as more changed records: provgit's desired records for them come from
the target store, as for any record the feed names. The plan equals the full
path's (tests/apply/test_full_read_memo.py holds it to that).

Internal to the API (`provgit.api`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from provgit.api.network import Network
from provgit.observe import UNTRUSTED, Observation, ObservationCache, observe
from provgit.plan.feed_check import FeedCheck
from provgit.projection.project import RecordRef
from provgit.wire.digest import to_text
from provgit.wire.protocol import StoredRecord

Held = dict[RecordRef, StoredRecord | None]


@dataclass(frozen=True)
class Verified:
    """What the full reads of one run found, per element: the records the
    feed missed (with those earlier reads found and no run reviewed yet) and
    what the element holds of them, at `revision`."""

    missed: dict[str, frozenset[RecordRef]] = field(default_factory=dict)
    held: dict[str, Held] = field(default_factory=dict)
    revision: dict[str, int] = field(default_factory=dict)
    # When each was read, and the content digest of what it held.
    at: dict[str, float] = field(default_factory=dict)
    digest: dict[str, int | None] = field(default_factory=dict)


def _held(obs: Observation, refs: Iterable[RecordRef]) -> Held:
    return {(c, k): obs.records.get(c, {}).get(k) for c, k in refs}


async def verify_due(network: Network, state_dir: Path, due: Sequence[str]) -> Verified | None:
    """Read each element of `due` in full, one after the other (one element's
    records in memory at a time, not the network's), verifying its cached
    observation; the cache is saved with what was read. None: an element
    cannot be verified this way (no good cached copy, or it cannot be read):
    the full path observes it and says why."""
    cache = ObservationCache(state_dir)
    found = Verified()
    for name in due:
        driver = network.drivers.get(name)
        cached = cache.load(name)
        if driver is None or cached is None or not cached.ok:
            return None
        obs = (await observe({name: driver}, {name: cached}, full={name}))[name]
        if not obs.ok or obs.full_read_at is None or obs.revision is None:
            return None  # refreshed, not read in full (it went down meanwhile)
        with contextlib.suppress(OSError):
            cache.save(obs, cached)
        found.missed[name] = obs.missed
        found.held[name] = _held(obs, obs.missed)
        found.revision[name] = obs.revision
        found.at[name], found.digest[name] = obs.full_read_at, obs.digest
        del obs, cached  # the next element's records replace these
    return found


def unreviewed(
    state_dir: Path, names: Iterable[str], skip: Iterable[str]
) -> tuple[dict[str, frozenset[RecordRef]], dict[str, Held]]:
    """Changes earlier full reads found the feed missed that no run has
    reviewed yet (a `plan` without apply, the digest caught at a `status`),
    for the elements not in `skip`, and what the (current) cache holds of them."""
    cache = ObservationCache(state_dir)
    skipped = set(skip)
    missed: dict[str, frozenset[RecordRef]] = {}
    held: dict[str, Held] = {}
    for name in names:
        refs = cache.missed(name) if name not in skipped else frozenset()
        if not refs:
            continue
        obs = cache.load(name)
        if obs is None or not obs.ok:
            continue  # the memo path reads nothing of it; the full path would
        missed[name], held[name] = refs, _held(obs, refs)
    return missed, held


def with_missed(
    latest: Mapping[RecordRef, StoredRecord | None], held: Held, revision: int | None
) -> dict[RecordRef, StoredRecord | None]:
    """The records to re-plan on an element: those its feed named since the
    memo (`latest`) and those a full read found it missed (`held`, read at
    `revision`). For a record in both, the full read's wins unless the feed
    says the record changed after it (its record revision past the read's)."""
    out = dict(latest)
    for ref, record in held.items():
        named = out.get(ref)
        after = (
            named is not None
            and revision is not None
            and named.revision is not None
            and named.revision > revision
        )
        if not after:
            out[ref] = record
    return out


def missed_of(
    verified: Verified | None, earlier: Mapping[str, frozenset[RecordRef]]
) -> dict[str, frozenset[RecordRef]]:
    """Per element, every unreviewed change its feed missed (this run's and earlier)."""
    out = {n: r for n, r in earlier.items() if r}
    for name, refs in (verified.missed if verified is not None else {}).items():
        if refs:
            out[name] = refs
    return out


def _check(at: float | None, digest: int | None, missed: Iterable[RecordRef]) -> FeedCheck:
    kept = None if at is None or digest is None or digest == UNTRUSTED else to_text(digest)
    return FeedCheck(at, kept, tuple(sorted(missed)))


def feed_checks(
    verified: Verified, earlier: Mapping[str, frozenset[RecordRef]]
) -> dict[str, FeedCheck]:
    """What the plan carries of the feeds (`plan.feed_check`) on the memo path."""
    out = {n: _check(None, None, refs) for n, refs in earlier.items() if refs}
    for name, at in verified.at.items():
        out[name] = _check(at, verified.digest.get(name), verified.missed.get(name, ()))
    return out


def feed_checks_of(
    observed: Mapping[str, Observation], full: Collection[str]
) -> dict[str, FeedCheck]:
    """The same on the full path: the elements of `full` read in full this
    run, and any whose feed missed changes no run reviewed yet."""
    out: dict[str, FeedCheck] = {}
    for name, obs in observed.items():
        read = name in full and obs.ok and not obs.incremental and obs.full_read_at is not None
        if read or obs.missed:
            at = obs.full_read_at if read else None
            out[name] = _check(at, obs.digest if read else None, obs.missed)
    return out
