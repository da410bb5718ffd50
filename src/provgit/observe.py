"""Observe stage: what every element holds now, read through its driver.

All elements are read at once (asyncio.gather). With a previous observation of
an element, only the change feed since its revision is read and applied to a
copy of it, so a no-op refresh reads nothing but an empty feed; when the feed
no longer reaches that far back ("too old, resync") it falls back to a full
read. An element that cannot be read becomes an Observation with its state and
the error message, never an exception: one element down never stops the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import marshal
import os
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from provgit.fsutil import atomic_write
from provgit.records import COLLECTIONS, MANAGED_BY, Fields
from provgit.wire.protocol import (
    Driver,
    ElementError,
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
) -> dict[str, Observation]:
    """Observe every element in parallel.

    `collections` maps an element type to the collections to read (default:
    all of `records.COLLECTIONS` for the type).
    """
    names = list(drivers)
    results = await asyncio.gather(
        *(
            _observe_one(name, drivers[name], (previous or {}).get(name), collections)
            for name in names
        )
    )
    return dict(zip(names, results, strict=True))


async def _observe_one(
    name: str,
    driver: Driver,
    previous: Observation | None,
    collections: Mapping[str, Sequence[str]] | None,
) -> Observation:
    try:
        info = await driver.info()
        if info.state == "offline":
            return Observation(name, "offline", None, error=f"element {name} is stopped/offline")
        wanted = list((collections or {}).get(info.type) or COLLECTIONS.get(info.type, {}).keys())
        # A previous observation helps only if it covers every collection wanted now.
        if (
            previous is not None
            and previous.ok
            and previous.revision is not None
            and all(c in previous.records for c in wanted)
        ):
            try:
                return await _refresh(name, driver, previous, wanted, info.state)
            except FeedTooOldError:
                pass  # resync below
        return await _full_read(name, driver, wanted, info.state, info.revision)
    except ElementError as e:
        return Observation(name, _state_of(e), None, error=e.message)
    except Exception as e:  # a driver bug must not take the other elements down
        return Observation(name, "error", None, error=f"{type(e).__name__}: {e}")


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


def _normalized(record: StoredRecord) -> StoredRecord:
    own = own_fields(record.fields)
    if own is record.fields:
        return record
    return StoredRecord(record.collection, record.key, own, record.revision)


async def _full_read(
    name: str, driver: Driver, collections: Sequence[str], state: str, start: int
) -> Observation:
    # `start` is the revision read before paging: changes made while paging
    # show up again in the next refresh rather than being lost.
    records: ObservedRecords = {}
    for collection in collections:
        found: dict[str, StoredRecord] = {}
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            page = await driver.list_records(collection, cursor, PAGE)
            for record in page.records:
                found[record.key] = _normalized(record)
            cursor = page.next_cursor
            if cursor is None or not page.records:
                break
            # An element that hands back a cursor twice would page forever.
            if cursor in seen:
                raise TransportError(f"element {name} repeated paging cursor {cursor!r}")
            seen.add(cursor)
        records[collection] = found
    return Observation(name, _running(state), start, records, None, incremental=False)


async def changes_since(
    name: str, driver: Driver, revision: int, collections: Sequence[str]
) -> tuple[dict[tuple[str, str], StoredRecord | None], int]:
    """The latest state of every record of `collections` the element's change
    feed names since `revision` (None: deleted), normalised, and the revision
    read up to. Raises FeedTooOldError when the feed does not reach back."""
    wanted = set(collections)
    latest: dict[tuple[str, str], StoredRecord | None] = {}
    for _ in range(MAX_FEED_PAGES):
        feed = await driver.changes(revision, FEED_PAGE)
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
        if len(feed.changes) < FEED_PAGE:
            return latest, revision
    raise FeedTooOldError(f"element {name}: too many changes to follow, resync")


async def _refresh(
    name: str, driver: Driver, previous: Observation, collections: Sequence[str], state: str
) -> Observation:
    assert previous.revision is not None
    records = {c: dict(previous.records.get(c, {})) for c in collections}
    latest, revision = await changes_since(name, driver, previous.revision, collections)
    for (collection, key), record in latest.items():
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
    for collection, key, fields, revision in writes:
        if collection not in copied:
            records[collection] = dict(records.get(collection, {}))
            copied.add(collection)
        if fields is None:
            records[collection].pop(key, None)
        else:
            records[collection][key] = StoredRecord(
                collection, key, own_fields(fields), revision or 0
            )
    return dataclasses.replace(obs, records=records)


class ObservationCache:
    """The last observation per element, under `<state_dir>/observed/`, so the
    next run can refresh incrementally through the change feed.

    Stored with `marshal` (plain dicts, lists and tuples): for 300,000 records it
    writes in a tenth of a second where pickling the record objects took six.

    provgit's own writes that landed since the file was written go to a small
    file beside it (`<element>.writes.marshal`), applied on load: rewriting
    the whole observation for a one-user change would cost more than the
    change. Writing the observation again drops them (it holds them by then).

    Each collection is its own marshal blob inside the file (format 3): a plan
    after a role or COS edit reads that collection's records, not the 100,000
    users beside them.
    """

    FORMAT = 3

    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        self.dir = Path(state_dir) / "observed"

    def _path(self, element: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", element)
        return self.dir / f"{safe}.marshal"

    def _writes_path(self, element: str) -> Path:
        return self._path(element).with_suffix(".writes.marshal")

    def _stamp_path(self, element: str) -> Path:
        return self._path(element).with_suffix(".revision.marshal")

    def revision(self, element: str) -> int | None:
        """The revision of the cached observation, without loading it (None:
        unknown, absent, or provgit's writes recorded beside it). Read from a
        stamp that names the file's identity: a file replaced without its
        stamp (a crash between the two) is not vouched for."""
        try:
            fmt, revision, identity = marshal.loads(self._stamp_path(element).read_bytes())
            st = os.stat(self._path(element))
        except (OSError, EOFError, ValueError, TypeError):
            return None
        if self._writes_path(element).exists():
            return None
        if fmt != self.FORMAT or tuple(identity) != (st.st_ino, st.st_size, st.st_mtime_ns):
            return None
        return revision if isinstance(revision, int) else None

    def still_current(self, element: str) -> None:
        """The element was read at the cached revision: what `save` of the same
        reading does, without reading or writing the observation."""
        self._down_path(element).unlink(missing_ok=True)

    def _stamp(self, element: str, revision: int | None) -> None:
        try:
            st = os.stat(self._path(element))
        except OSError:
            return
        doc = (self.FORMAT, revision, (st.st_ino, st.st_size, st.st_mtime_ns))
        with contextlib.suppress(OSError):
            atomic_write(self._stamp_path(element), marshal.dumps(doc))

    def load(self, element: str) -> Observation | None:
        """The cached observation, or None if absent or unreadable (then read fully)."""
        try:
            doc = marshal.loads(self._path(element).read_bytes())
            if doc["format"] != self.FORMAT or doc["element"] != element:
                return None
            records: ObservedRecords = {
                coll: {
                    key: StoredRecord(coll, key, f, rev)
                    for key, (f, rev) in marshal.loads(blob).items()
                }
                for coll, blob in doc["records"].items()
            }
            found = Observation(element, doc["state"], doc["revision"], records)
        except (OSError, EOFError, ValueError, TypeError, KeyError):
            return None
        return with_writes(found, self._writes(element))

    def fields_of(
        self, element: str, refs: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], StoredRecord | None] | None:
        """Just these records of the cached observation (None: absent or
        unreadable): what `load` gives of them, without building the other
        300,000. Only for a cache `revision` vouches for (no writes beside it)."""
        try:
            doc = marshal.loads(self._path(element).read_bytes())
            if doc["format"] != self.FORMAT or doc["element"] != element:
                return None
            blobs = doc["records"]
            records: dict[str, dict[str, Any]] = {}  # only the collections asked for
            out: dict[tuple[str, str], StoredRecord | None] = {}
            for coll, key in refs:
                recs = records.get(coll)
                if recs is None:
                    blob = blobs.get(coll)
                    recs = records[coll] = {} if blob is None else marshal.loads(blob)
                found = recs.get(key)
                out[(coll, key)] = None if found is None else StoredRecord(coll, key, *found)
            return out
        except (OSError, EOFError, ValueError, TypeError, KeyError):
            return None

    def raw(self, element: str) -> tuple[int, dict[str, dict[str, tuple[Fields, int]]]] | None:
        """The cached revision and records as plain tuples, no record objects
        (None: absent or unreadable)."""
        try:
            doc = marshal.loads(self._path(element).read_bytes())
            if doc["format"] != self.FORMAT or doc["element"] != element:
                return None
            records = {coll: marshal.loads(blob) for coll, blob in doc["records"].items()}
            return int(doc["revision"]), records
        except (OSError, EOFError, ValueError, TypeError, KeyError):
            return None

    def _writes(self, element: str) -> list[Write]:
        try:
            return [tuple(w) for w in marshal.loads(self._writes_path(element).read_bytes())]
        except (OSError, EOFError, ValueError, TypeError):
            return []

    def load_all(self, elements: Sequence[str]) -> dict[str, Observation]:
        out: dict[str, Observation] = {}
        for element in elements:
            found = self.load(element)
            if found is not None:
                out[element] = found
        return out

    def save(self, observation: Observation, previous: Observation | None = None) -> None:
        """Write then rename, so a crash leaves the old file or the new, never half."""
        if not observation.ok:
            # Keep the last good one to refresh from, and say it is not the
            # latest word: `provgit status` after a plan that found the
            # element down must not show the older reading as current.
            self.mark_down(observation)
            return
        self._down_path(observation.element).unlink(missing_ok=True)
        if previous is not None and previous.revision == observation.revision:
            # Nothing changed on the element since the file was written. A
            # file from before stamps, or one whose stamp no longer names it
            # (a copied or restored state directory), gets its stamp: else
            # every later no-op run loads the whole observation again.
            if self.revision(observation.element) != observation.revision:
                self._stamp(observation.element, observation.revision)
            return
        self._write(observation)

    def _down_path(self, element: str) -> Path:
        return self._path(element).with_suffix(".down.marshal")

    def mark_down(self, observation: Observation) -> None:
        """The element could not be read: its state and why, with the time."""
        doc = (str(observation.state), observation.error, time.time())
        with contextlib.suppress(OSError):
            atomic_write(self._down_path(observation.element), marshal.dumps(doc))

    def down(self, element: str) -> tuple[str, str | None, float] | None:
        """The last reading's failure (state, why, time), when it failed."""
        try:
            state, error, at = marshal.loads(self._down_path(element).read_bytes())
            return str(state), None if error is None else str(error), float(at)
        except (OSError, EOFError, ValueError, TypeError):
            return None

    def record_writes(self, element: str, writes: Sequence[Write]) -> None:
        """Keep provgit's landed writes with the cached observation (`with_writes` on load)."""
        if not writes or not self._path(element).exists():
            return
        try:
            data = marshal.dumps([*self._writes(element), *writes])
        except ValueError:  # a value marshal cannot hold: the next observation says it
            return
        atomic_write(self._writes_path(element), data)

    def _write(self, observation: Observation) -> None:
        doc = {
            "format": self.FORMAT,
            "element": observation.element,
            "state": observation.state,
            "revision": observation.revision,
            "records": {
                coll: marshal.dumps({key: (r.fields, r.revision) for key, r in recs.items()})
                for coll, recs in observation.records.items()
            },
        }
        atomic_write(self._path(observation.element), marshal.dumps(doc))
        # Read after those writes landed: the observation holds them now.
        self._writes_path(observation.element).unlink(missing_ok=True)
        self._stamp(observation.element, observation.revision)

    def save_all(
        self,
        observations: Mapping[str, Observation],
        previous: Mapping[str, Observation] | None = None,
    ) -> None:
        for name, observation in observations.items():
            self.save(observation, (previous or {}).get(name))
