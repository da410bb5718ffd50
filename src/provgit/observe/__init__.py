"""Observe stage: what every element holds now, read through its driver.

All elements are read at once (asyncio.gather). With a previous observation of
an element, only the change feed since its revision is read and applied to a
copy of it, so a no-op refresh reads nothing but an empty feed; when the feed
no longer reaches that far back ("too old, resync") it falls back to a full
read. An element that cannot be read becomes an Observation with its state and
the error message, never an exception: one element down never stops the rest.

A feed can lie (a vendor bug, a backup restored under the same revision, an
edit straight into the element's database): a change it never names is never
seen by refreshes. So an element named in `full` is refreshed and then read in
full as verification; what the full read holds that the refreshed copy does
not is `Observation.missed`, changes the feed missed (drift, and a sign the
element's feed cannot be trusted). Each observation carries when its element
was last read in full (`full_read_at`), kept with the cache.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from provgit.observe.received import Received
from provgit.records import COLLECTIONS, MANAGED_BY, Fields
from provgit.wire.digest import digest_of, moved, to_text
from provgit.wire.protocol import (
    Driver,
    ElementError,
    ElementInfo,
    FeedTooOldError,
    LockedError,
    OfflineError,
    StoredRecord,
    TransportError,
    UnauthorizedError,
)

ObservedState = Literal["running", "locked", "offline", "unauthorized", "error"]
ObservedRecords = dict[str, dict[str, StoredRecord]]
# A write provgit made that landed: (collection, key, fields or None for a
# delete, the record's revision after it).
Write = tuple[str, str, Fields | None, int | None]

PAGE = 5000
FEED_PAGE = 10000
# Bounds the feed loop: past this many pages a full read is cheaper anyway.
MAX_FEED_PAGES = 100
# Bounds one listing of a collection (records): past any element provgit is
# sized for (the 300,000-user target puts 300,000 users on one MiCollab), and
# short of its memory: a listing is held whole, and ten million records (the
# bound before) took all of it (~1.5 KB a user record held). Its bytes are
# bounded too (observe/received.py): records of any size would take it anyway.
MAX_LISTED = 1_000_000
# `Observation.digest` of an element whose own digest disagreed with a full read.
UNTRUSTED = -1


@dataclass(frozen=True)
class Observation:
    element: str
    state: ObservedState
    revision: int | None
    # repr=False: asyncio and tracebacks format reprs, and 300,000 records take seconds.
    records: ObservedRecords = field(default_factory=dict, repr=False)
    error: str | None = None
    incremental: bool = False
    # For an incremental refresh: the revision it started from and the records
    # its change feed named (so a plan can re-plan just those).
    base_revision: int | None = None
    changed: frozenset[tuple[str, str]] | None = field(default=None, repr=False)
    # When the element was last read in full (time.time(); None: unknown).
    full_read_at: float | None = None
    # Records a full read found changed with no word from the change feed,
    # not yet reviewed as drift by a run (kept with the cache until then).
    missed: frozenset[tuple[str, str]] = field(default=frozenset(), repr=False)
    # The content digest of `records` (wire/digest.py), kept when the element
    # reports its own: equal revisions, unequal digests mean the feed lied.
    digest: int | None = None
    # The highest revision provgit's own writes laid over this reading got: the
    # element has been there, whatever `revision` (the read's) says.
    reached: int | None = None

    def behind(self, revision: int) -> bool:
        """An element now at `revision` is behind what this observation saw it
        reach: replaced, reinstalled or repointed, its feed since then is
        empty, not "too old", and says nothing of what it lost."""
        assert self.revision is not None
        return revision < max(self.revision, self.reached or 0)

    def with_last_known(self, last: Observation | None) -> Observation:
        """This failed observation carrying what `last` (a good one) read: the
        records the element is believed to hold, at `base_revision`. Plans
        queue pending updates against them; they are never taken as fresh."""
        if self.ok or last is None or not last.ok:
            return self
        return dataclasses.replace(self, records=last.records, base_revision=last.revision)

    @property
    def ok(self) -> bool:
        """Records were read (running or locked: a locked element still reads)."""
        return self.state in ("running", "locked") and self.revision is not None


async def observe(
    drivers: Mapping[str, Driver],
    previous: Mapping[str, Observation] | None = None,
    collections: Mapping[str, Sequence[str]] | None = None,
    full: Collection[str] = (),
    expected: Mapping[str, Mapping[str, Mapping[str, Fields]]] | None = None,
) -> dict[str, Observation]:
    """Observe every element in parallel.

    `collections` maps an element type to the collections to read (default:
    all of `records.COLLECTIONS` for the type). Elements named in `full` are
    read in full, verifying what their change feed said (`Observation.missed`).
    `expected`: per element, the records the caller expects by collection and
    key (a plan's projection); a record read in full that equals its expected
    fields is held as those very fields, not as a copy of its own.
    """
    # Here, not at the top: `status` reads observation types only, and asyncio is ~30 modules.
    import asyncio

    names = list(drivers)
    results = await asyncio.gather(
        *(
            _observe_one(
                name,
                drivers[name],
                (previous or {}).get(name),
                collections,
                name in full,
                (expected or {}).get(name),
            )
            for name in names
        )
    )
    return dict(zip(names, results, strict=True))


async def _observe_one(
    name: str,
    driver: Driver,
    previous: Observation | None,
    collections: Mapping[str, Sequence[str]] | None,
    full: bool = False,
    expected: Mapping[str, Mapping[str, Fields]] | None = None,
) -> Observation:
    try:
        info = await driver.info()
        if info.state == "offline":
            return Observation(name, "offline", None, error=f"element {name} is stopped/offline")
        wanted = list((collections or {}).get(info.type) or COLLECTIONS.get(info.type, {}).keys())
        # The element's digest covers all it holds: comparable only with all of it.
        digest = info.digest is not None and set(wanted) >= set(COLLECTIONS.get(info.type, {}))
        # A previous observation helps only if it covers every collection wanted now.
        if (
            previous is not None
            and previous.ok
            and previous.revision is not None
            and not (previous.behind(info.revision) and not _clock(driver))
            and all(c in previous.records for c in wanted)
        ):
            try:
                refreshed = await _refresh(name, driver, previous, wanted, info.state, digest)
            except FeedTooOldError:
                pass  # resync below
            else:
                if not full and not _contradicted(refreshed, info):
                    return refreshed
                return await _verify(name, driver, refreshed, wanted, info, digest)
        return await _full_read(name, driver, wanted, info.state, info.revision, digest, expected)
    except ElementError as e:
        return Observation(name, _state_of(e), None, error=e.message)
    except Exception as e:  # a driver bug must not take the other elements down
        return Observation(name, "error", None, error=f"{type(e).__name__}: {e}")


def _contradicted(refreshed: Observation, info: ElementInfo) -> bool:
    """The element's digest at the revision the feed was read to is not
    that of the copy the feed brought there: the feed missed something."""
    return (
        info.digest is not None
        and refreshed.digest is not None
        and refreshed.digest != UNTRUSTED
        and refreshed.revision == info.revision
        and to_text(refreshed.digest) != info.digest
    )


def _clock(driver: Driver) -> bool:
    """A directory's revision is the time of a read, not a count of its writes."""
    return bool(getattr(driver, "revision_is_clock", False))


def _state_of(error: ElementError) -> ObservedState:
    if isinstance(error, OfflineError | TransportError):
        return "offline"
    if isinstance(error, UnauthorizedError):
        return "unauthorized"
    if isinstance(error, LockedError):
        return "locked"
    return "error"


def _running(state: str) -> ObservedState:
    return "locked" if state == "locked" else "running"


def own_fields(fields: Fields) -> Fields:
    """Drop what the element fills in by itself (`_…` bookkeeping), keeping
    provgit's own ownership mark: plans compare records with plain equality."""
    if not any(k[0] == "_" for k in fields):
        return fields
    return {k: v for k, v in fields.items() if k[0] != "_" or k == MANAGED_BY}


def held_as(rec: StoredRecord, expected: Fields | None) -> StoredRecord:
    """`rec` holding `expected` itself when its fields equal it (the
    projection's record, held anyway): in sync, one copy, not two. Nothing
    reads a difference, since plans compare by value and no one changes a
    record's fields in place."""
    if expected is not None and expected is not rec.fields and expected == rec.fields:
        return StoredRecord(rec.collection, rec.key, expected, rec.revision)
    return rec


def share_strings(fields: Fields, memo: dict[str, str]) -> Fields:
    """`fields`, each string in it now the equal one in `memo` (added if
    new). In place: an equal string for an equal one changes nothing any
    reader sees. 100,000 users repeat a few hundred departments, roles,
    templates, hosts and first names; held once, the observations the
    watcher keeps between runs take ~40 % less memory (#16)."""
    get = memo.setdefault
    for name, value in fields.items():
        kind = type(value)
        if kind is str:
            fields[name] = get(value, value)
        elif kind is list:
            value[:] = [
                get(v, v) if type(v) is str else share_strings(v, memo) if type(v) is dict else v
                for v in value
            ]
        elif kind is dict:
            share_strings(value, memo)
    return fields


def _normalized(record: StoredRecord) -> StoredRecord:
    own = own_fields(record.fields)
    if own is record.fields:
        return record
    return StoredRecord(record.collection, record.key, own, record.revision)


async def _pages(
    name: str, driver: Driver, collection: str, received: Received
) -> AsyncIterator[StoredRecord]:
    """Every record of one collection, normalised, a page at a time, each
    page's bytes counted into `received` before its records are held."""
    cursor: str | None = None
    seen: set[str] = set()
    # A page's first key: no two pages of one listing begin with the same record.
    firsts: set[str] = set()
    listed = 0
    while True:
        page = await driver.list_records(collection, cursor, PAGE)
        received.take(collection, page)
        for record in page.records:
            yield _normalized(record)
        cursor = page.next_cursor
        if cursor is None or not page.records:
            return
        # An element that hands back a cursor twice, or the same records under
        # ever new cursors, or more records than any element holds, would page
        # for ever (or take provgit's memory).
        first, listed = page.records[0].key, listed + len(page.records)
        if cursor in seen or first in firsts:
            raise TransportError(f"element {name} repeated a page of its {collection} listing")
        if listed > MAX_LISTED:
            raise TransportError(
                f"element {name} listed more than {MAX_LISTED} {collection}: not read further"
            )
        seen.add(cursor)
        firsts.add(first)


async def _full_read(
    name: str,
    driver: Driver,
    collections: Sequence[str],
    state: str,
    start: int,
    digest: bool,
    expected: Mapping[str, Mapping[str, Fields]] | None = None,
) -> Observation:
    # `start` is the revision read before paging: changes made while paging
    # show up again in the next refresh rather than being lost.
    records: ObservedRecords = {}
    # Each record arrives decoded on its own: 100,000 users would hold their
    # departments, roles, hosts and markers once per record, and an element
    # in sync a second copy of the projection (the largest part of a full
    # plan's memory, #16), but for this.
    memo: dict[str, str] = {}
    received = Received(name)
    for collection in collections:
        like = (expected or {}).get(collection, {})
        got: dict[str, StoredRecord] = {}
        async for r in _pages(name, driver, collection, received):
            held = held_as(r, like.get(r.key))
            if held is r:
                share_strings(r.fields, memo)
            got[r.key] = held
        records[collection] = got
    del memo
    return Observation(
        name,
        _running(state),
        start,
        records,
        None,
        incremental=False,
        full_read_at=time.time(),
        digest=_digest_of(records) if digest else None,
    )


def _digest_of(records: ObservedRecords) -> int:
    return digest_of(
        ((c, k, r.fields) for c, recs in records.items() for k, r in recs.items()), own=True
    )


async def _verify(
    name: str,
    driver: Driver,
    refreshed: Observation,
    collections: Sequence[str],
    info: ElementInfo,
    digest: bool,
) -> Observation:
    """A full read checked against what the change feed said (`refreshed`):
    the records it holds otherwise are changes the feed missed. A record the
    feed names after the refresh was changed while paging: not counted.

    Streamed into `refreshed`'s own record maps (`_refresh` made them for this
    read alone): a record read as the copy has it keeps the copy's object, so
    verifying an element that holds what its feed said costs a page, not a
    second copy of the element."""
    assert refreshed.revision is not None
    differ: set[tuple[str, str]] = set()
    records = refreshed.records
    received = Received(name)
    for collection in collections:
        mine = records.setdefault(collection, {})
        seen: set[str] = set()
        async for record in _pages(name, driver, collection, received):
            seen.add(record.key)
            if mine.get(record.key) != record:
                differ.add((collection, record.key))
                mine[record.key] = record
        for key in [k for k in mine if k not in seen]:
            differ.add((collection, key))
            del mine[key]
    found = Observation(
        name,
        _running(info.state),
        refreshed.revision,
        records,
        None,
        incremental=False,
        full_read_at=time.time(),
        digest=_digest_of(records) if digest else None,
    )
    try:
        named, _ = await changes_since(name, driver, refreshed.revision, collections)
    except FeedTooOldError:
        return found  # so many changes meanwhile that nothing can be told apart
    if not named and found.digest is not None and _contradicted(found, info):
        # The element's own digest disagrees with all it holds (its database
        # edited behind its back): not used, else every run would read it all.
        found = dataclasses.replace(found, digest=UNTRUSTED)
    missed = set(refreshed.missed) | {ref for ref in differ if ref not in named}
    return dataclasses.replace(found, missed=frozenset(missed))


async def changes_since(
    name: str, driver: Driver, revision: int, collections: Sequence[str]
) -> tuple[dict[tuple[str, str], StoredRecord | None], int]:
    """The latest state of every record of `collections` the element's change
    feed names since `revision` (None: deleted), normalised, and the revision
    read up to. Raises FeedTooOldError when the feed does not reach back."""
    wanted = set(collections)
    latest: dict[tuple[str, str], StoredRecord | None] = {}
    received = Received(name)
    for _ in range(MAX_FEED_PAGES):
        feed = await driver.changes(revision, FEED_PAGE)
        received.take_feed(feed)  # past its bound: not read, not in sync
        for change in feed.changes:
            if change.collection not in wanted:
                continue  # a collection we were not asked to observe
            latest[(change.collection, change.key)] = (
                None
                if change.op == "delete"
                else StoredRecord(
                    change.collection,
                    change.key,
                    own_fields(change.fields or {}),
                    change.record_revision,
                )
            )
        revision = feed.revision
        # A short page is the end only when the element says so: one that
        # pages below FEED_PAGE has more due (it was read as all, and what
        # changed past its first page went unseen for a run).
        if len(feed.changes) < FEED_PAGE and not feed.more:
            return latest, revision
    raise FeedTooOldError(f"element {name}: too many changes to follow, resync")


async def _refresh(
    name: str,
    driver: Driver,
    previous: Observation,
    collections: Sequence[str],
    state: str,
    digest: bool = False,
) -> Observation:
    assert previous.revision is not None
    records = {c: dict(previous.records.get(c, {})) for c in collections}
    latest, revision = await changes_since(name, driver, previous.revision, collections)
    # A copy from before digests gets one once; after that each change moves it.
    value = previous.digest if previous.digest is not None or not digest else _digest_of(records)
    for (collection, key), record in latest.items():
        old = records[collection].get(key)
        if value is not None and value != UNTRUSTED:
            new = None if record is None else record.fields
            value = moved(
                value, collection, key, None if old is None else old.fields, new, own=True
            )
        if record is None:
            records[collection].pop(key, None)
        else:
            records[collection][key] = record
    return Observation(
        name,
        _running(state),
        revision,
        records,
        None,
        incremental=True,
        base_revision=previous.revision,
        changed=frozenset(latest),
        full_read_at=previous.full_read_at,
        missed=previous.missed,
        digest=value,
    )


def with_writes(obs: Observation, writes: Sequence[Write]) -> Observation:
    """`obs` with provgit's own writes since it was read applied to its records.

    The revision stays that of the read: the next refresh reads the change
    feed from there, so the element's own word replaces these. Until then
    they keep "what the element last held" true for an element that goes
    down: writes it already has are not queued for it again.
    """
    if not writes or not obs.ok:
        return obs
    records = dict(obs.records)
    copied: set[str] = set()
    value = obs.digest
    reached = obs.reached
    for collection, key, fields, revision in writes:
        reached = max(reached or 0, revision or 0)
        if collection not in copied:
            records[collection] = dict(records.get(collection, {}))
            copied.add(collection)
        old = records[collection].get(key)
        own = None if fields is None else own_fields(fields)
        if value is not None and value != UNTRUSTED:
            value = moved(
                value, collection, key, None if old is None else old.fields, own, own=True
            )
        if own is None:
            records[collection].pop(key, None)
        else:
            records[collection][key] = StoredRecord(collection, key, own, revision or 0)
    return dataclasses.replace(obs, records=records, digest=value, reached=reached)


# The cache needs the names above; importing it last keeps `provgit.observe`
# the one door to both.
from provgit.observe.cache import ObservationCache as ObservationCache  # noqa: E402
