"""The observation cache: the last observation per element on disk, with
when it was last read in full and what a full read found the feed missed."""

from __future__ import annotations

import array
import contextlib
import marshal
import os
import re
import struct
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from provgit.fsutil import (
    SMALL_STATE_FILE_BYTES,
    atomic_write,
    atomic_write_pieces,
    open_state_file,
    read_state_file,
)
from provgit.observe import Observation, ObservedRecords, Write, share_strings, with_writes
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

    Format 4: a fixed prefix (magic, format, header length), a marshal header
    (element, state, revision, digest, and where each collection's sections
    are), then per collection three sections: the whole collection as one
    marshal blob (a full read decodes it in one call, sharing repeated
    strings), its keys with the offset of each record, and each record's own
    marshal bytes. A plan after a template edit asks for the ~28 % of the
    100,000 users it reaches: those are decoded alone (0.43 against 0.81 CPU s
    for the whole blob, and only they are held); a role or COS edit reads its
    collection's sections, never the users'. An older format's file is not
    this one's magic: it reads as absent, so the element is read in full.
    """

    FORMAT = 4

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
            at = marshal.loads(
                read_state_file(self._full_read_path(element), SMALL_STATE_FILE_BYTES)
            )
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
            refs = marshal.loads(read_state_file(self._missed_path(element)))
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
            fmt, revision, identity, *rest = marshal.loads(
                read_state_file(self._stamp_path(element), SMALL_STATE_FILE_BYTES)
            )
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
            with open_state_file(self._path(element)) as f:
                head, base = _header(f, element)
                # A file written before its strings were shared (below): shared
                # as it is read, once; the next save writes them shared.
                memo: dict[str, str] = {}
                share = head.get("shared") is not True
                records: ObservedRecords = {
                    coll: {
                        key: StoredRecord(
                            coll, key, share_strings(fields, memo) if share else fields, rev
                        )
                        for key, (fields, rev) in _whole(f, base, where).items()
                    }
                    for coll, where in head["collections"].items()
                }
            found = Observation(
                element,
                head["state"],
                head["revision"],
                records,
                full_read_at=self.full_read_at(element),
                missed=self.missed(element),
                digest=head["digest"],
            )
        except (OSError, EOFError, ValueError, TypeError, KeyError, IndexError):
            return None
        return with_writes(found, self._writes(element))

    def fields_of(
        self, element: str, refs: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], StoredRecord | None] | None:
        """Just these records of the cached observation (None: absent or
        unreadable): what `load` gives of them, decoding only them (or their
        whole collection when they are most of it: one call is cheaper per
        record). Only for a cache `revision` vouches for (no writes beside it)."""
        asked: dict[str, list[str]] = {}
        for coll, key in refs:
            asked.setdefault(coll, []).append(key)
        out: dict[tuple[str, str], StoredRecord | None] = {}
        try:
            with open_state_file(self._path(element)) as f:
                head, base = _header(f, element)
                for coll, keys in asked.items():
                    where = head["collections"].get(coll)
                    if where is None:
                        out.update(dict.fromkeys([(coll, key) for key in keys]))
                    else:
                        _records(f, base, where, coll, keys, out)
            return out
        except (OSError, EOFError, ValueError, TypeError, KeyError, IndexError):
            return None

    def header_revision(self, element: str) -> int | None:
        """The revision the cached observation was read at, from its header
        alone (None: absent or unreadable); provgit's writes beside it not
        counted."""
        try:
            with open_state_file(self._path(element)) as f:
                head, _ = _header(f, element)
            revision = head["revision"]
        except (OSError, EOFError, ValueError, TypeError, KeyError, IndexError):
            return None
        return revision if type(revision) is int else None

    def raw(self, element: str) -> tuple[int, dict[str, dict[str, tuple[Fields, int]]]] | None:
        """The cached revision and records as plain tuples, no record objects
        (None: absent or unreadable)."""
        try:
            with open_state_file(self._path(element)) as f:
                head, base = _header(f, element)
                records = {
                    coll: _whole(f, base, where) for coll, where in head["collections"].items()
                }
            return int(head["revision"]), records
        except (OSError, EOFError, ValueError, TypeError, KeyError, IndexError):
            return None

    def _writes(self, element: str) -> list[Write]:
        try:
            return [tuple(w) for w in marshal.loads(read_state_file(self._writes_path(element)))]
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
            state, error, at = marshal.loads(
                read_state_file(self._down_path(element), SMALL_STATE_FILE_BYTES)
            )
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
        sections: list[bytes] = []
        at = 0
        collections: dict[str, tuple[int, ...]] = {}
        memo: dict[str, str] = {}
        for recs in observation.records.values():
            for r in recs.values():
                share_strings(r.fields, memo)
        # Dropped before marshal runs: it writes each string with more than
        # one reference once (the shared ones), and a string only the memo
        # also held would cost it a lookup for nothing.
        del memo
        for coll, recs in observation.records.items():
            where: list[int] = []
            for blob in _sections(recs):
                where += [at, len(blob)]
                sections.append(blob)
                at += len(blob)
            collections[coll] = tuple(where)
        head = marshal.dumps(
            {
                "element": observation.element,
                "state": observation.state,
                "revision": observation.revision,
                "digest": observation.digest,
                "byteorder": sys.byteorder,
                "collections": collections,
                "shared": True,
            }
        )
        prefix = _PREFIX.pack(_MAGIC, self.FORMAT, len(head))
        atomic_write_pieces(self._path(observation.element), [prefix, head, *sections])
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


_MAGIC = b"PGOBSV"
_PREFIX = struct.Struct("<6sHQ")  # magic, format, header length


def _header(f: IO[bytes], element: str) -> tuple[dict[str, Any], int]:
    """The file's header and where its sections start; ValueError for a file
    of another format or element (an older format is rebuilt by a full read,
    never misread)."""
    prefix = f.read(_PREFIX.size)
    if len(prefix) != _PREFIX.size:
        raise ValueError("truncated")
    magic, fmt, size = _PREFIX.unpack(prefix)
    if magic != _MAGIC or fmt != ObservationCache.FORMAT:
        raise ValueError("another format")
    head = marshal.loads(_exactly(f, size))
    if head["element"] != element or head["byteorder"] != sys.byteorder:
        raise ValueError("another element's file")
    return head, _PREFIX.size + size


def _exactly(f: IO[bytes], size: int) -> bytes:
    data = f.read(size)
    if len(data) != size:
        raise ValueError("truncated")
    return data


def _section(f: IO[bytes], base: int, where: Sequence[int], i: int) -> bytes:
    f.seek(base + where[2 * i])
    return _exactly(f, where[2 * i + 1])


def _sections(recs: Mapping[str, StoredRecord]) -> tuple[bytes, bytes, bytes]:
    """A collection's whole blob, its index (keys, record offsets) and its
    records. Equal strings are one object by now (`share_strings`): marshal writes
    each once in the whole blob, and a load shares it again."""
    whole = marshal.dumps({key: (r.fields, r.revision) for key, r in recs.items()})
    parts = [marshal.dumps((r.fields, r.revision)) for r in recs.values()]
    offsets = array.array("Q", [0])
    for part in parts:
        offsets.append(offsets[-1] + len(part))
    index = marshal.dumps((list(recs), offsets.tobytes()))
    return whole, index, b"".join(parts)


def _whole(f: IO[bytes], base: int, where: Sequence[int]) -> dict[str, Any]:
    found = marshal.loads(_section(f, base, where, 0))
    if not isinstance(found, dict):
        raise ValueError("not a collection")
    return found


def _records(
    f: IO[bytes],
    base: int,
    where: Sequence[int],
    coll: str,
    keys: Sequence[str],
    out: dict[tuple[str, str], StoredRecord | None],
) -> None:
    """These keys' records of one collection put in `out` in `keys`' order
    (None for an absent key), each built as it is decoded: no intermediate
    (fields, revision) dict, no second lookup per key."""
    names, raw_offsets = marshal.loads(_section(f, base, where, 1))
    if 2 * len(keys) > len(names):
        found = _whole(f, base, where)  # most of it: one call is cheaper
        for key in keys:
            got = found.get(key)
            out[(coll, key)] = None if got is None else StoredRecord(coll, key, *got)
        return
    offsets = array.array("Q")
    offsets.frombytes(raw_offsets)
    if len(offsets) != len(names) + 1:
        raise ValueError("index does not match its keys")
    position = dict(zip(names, range(len(names)), strict=True))
    at = [position.get(key) for key in keys]
    loads = marshal.loads
    if 16 * len(keys) < len(names):
        # A few (a role's users among 100,000): each read where it lies, not
        # the whole section (36 MB for MiCollab's users) for a few hundred;
        # in file order, then put in `keys`' order.
        start = base + where[4]
        read: dict[int, tuple[Fields, int]] = {}
        for i in sorted(i for i in at if i is not None):
            f.seek(start + offsets[i])
            read[i] = loads(_exactly(f, offsets[i + 1] - offsets[i]))
        for key, i in zip(keys, at, strict=True):
            out[(coll, key)] = None if i is None else StoredRecord(coll, key, *read[i])
        return
    body = memoryview(_section(f, base, where, 2))
    for key, i in zip(keys, at, strict=True):
        if i is None:
            out[(coll, key)] = None
        else:
            fields, revision = loads(body[offsets[i] : offsets[i + 1]])
            out[(coll, key)] = StoredRecord(coll, key, fields, revision)
