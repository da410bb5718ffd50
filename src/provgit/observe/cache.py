"""The observation cache: the last observation per element on disk, with
when it was last read in full and what a full read found the feed missed."""

from __future__ import annotations

import contextlib
import marshal
import os
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from provgit.fsutil import atomic_write
from provgit.observe import Observation, ObservedRecords, Write, with_writes
from provgit.records import Fields
from provgit.wire.protocol import StoredRecord


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

    def _full_read_path(self, element: str) -> Path:
        return self._path(element).with_suffix(".fullread.marshal")

    def _missed_path(self, element: str) -> Path:
        return self._path(element).with_suffix(".missed.marshal")

    def full_read_at(self, element: str) -> float | None:
        """When the element was last read in full (None: unknown)."""
        try:
            at = marshal.loads(self._full_read_path(element).read_bytes())
        except (OSError, EOFError, ValueError, TypeError):
            return None
        return float(at) if isinstance(at, int | float) else None

    def full_read_due(self, elements: Iterable[str], max_age: float, now: float) -> set[str]:
        """The cached elements whose last full read is `max_age` seconds old or
        unknown (one never cached is read in full when it is read at all)."""
        return {
            e
            for e in elements
            if now - (self.full_read_at(e) or 0.0) >= max_age and self._path(e).exists()
        }

    def missed(self, element: str) -> frozenset[tuple[str, str]]:
        """Changes a full read found that the feed had not named, not yet reviewed."""
        try:
            refs = marshal.loads(self._missed_path(element).read_bytes())
            return frozenset((str(c), str(k)) for c, k in refs)
        except (OSError, EOFError, ValueError, TypeError):
            return frozenset()

    def forget_missed(self, element: str) -> None:
        self._missed_path(element).unlink(missing_ok=True)  # a run reviewed them

    def note_full_read(self, element: str, at: float) -> None:
        """The element was read in full at `at` and found as cached here."""
        atomic_write(self._full_read_path(element), marshal.dumps(at))

    def _note_verification(self, observation: Observation) -> None:
        element = observation.element
        at = observation.full_read_at
        if at is not None and at != self.full_read_at(element):
            atomic_write(self._full_read_path(element), marshal.dumps(at))
        if observation.missed:
            atomic_write(self._missed_path(element), marshal.dumps(sorted(observation.missed)))

    def revision(self, element: str) -> int | None:
        """The revision of the cached observation, without loading it (None:
        unknown, absent, or provgit's writes recorded beside it). Read from a
        stamp that names the file's identity: a file replaced without its
        stamp (a crash between the two) is not vouched for."""
        stamped = self.stamped(element)
        return None if stamped is None else stamped[0]

    def stamped(self, element: str) -> tuple[int, int | None] | None:
        """The revision and the content digest (None: none kept) of the
        cached observation, as `revision` vouches for them."""
        try:
            fmt, revision, identity, *rest = marshal.loads(self._stamp_path(element).read_bytes())
            st = os.stat(self._path(element))
        except (OSError, EOFError, ValueError, TypeError):
            return None
        if self._writes_path(element).exists():
            return None
        if fmt != self.FORMAT or tuple(identity) != (st.st_ino, st.st_size, st.st_mtime_ns):
            return None
        if not isinstance(revision, int):
            return None
        return revision, (rest[0] if rest and isinstance(rest[0], int) else None)

    def still_current(self, element: str) -> None:
        """The element was read at the cached revision: what `save` of the same
        reading does, without reading or writing the observation."""
        self._down_path(element).unlink(missing_ok=True)

    def _stamp(self, element: str, revision: int | None, digest: int | None) -> None:
        try:
            st = os.stat(self._path(element))
        except OSError:
            return
        doc = (self.FORMAT, revision, (st.st_ino, st.st_size, st.st_mtime_ns), digest)
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
            found = Observation(
                element,
                doc["state"],
                doc["revision"],
                records,
                full_read_at=self.full_read_at(element),
                missed=self.missed(element),
                digest=doc.get("digest"),
            )
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
        with contextlib.suppress(OSError):
            self._note_verification(observation)
        if (
            previous is not None
            and previous.revision == observation.revision
            # A full read that found what the feed missed holds other records.
            and observation.missed <= previous.missed
        ):
            # Nothing changed on the element since the file was written. A
            # file from before stamps, or one whose stamp no longer names it
            # (a copied or restored state directory), gets its stamp: else
            # every later no-op run loads the whole observation again.
            if self.stamped(observation.element) != (observation.revision, observation.digest):
                self._stamp(observation.element, observation.revision, observation.digest)
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
            "digest": observation.digest,
            "records": {
                coll: marshal.dumps({key: (r.fields, r.revision) for key, r in recs.items()})
                for coll, recs in observation.records.items()
            },
        }
        atomic_write(self._path(observation.element), marshal.dumps(doc))
        # Read after those writes landed: the observation holds them now.
        self._writes_path(observation.element).unlink(missing_ok=True)
        self._stamp(observation.element, observation.revision, observation.digest)

    def save_all(
        self,
        observations: Mapping[str, Observation],
        previous: Mapping[str, Observation] | None = None,
    ) -> None:
        for name, observation in observations.items():
            self.save(observation, (previous or {}).get(name))
