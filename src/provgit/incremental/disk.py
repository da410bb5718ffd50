"""The CLI's incremental planning state on disk: the last plan per element,
refreshed through the change feed.

A full plan projects the whole network and compares every record of every
element: for 100,000 users that is ~300,000 records, seconds of work that
mostly re-proves "unchanged". The result only depends on

- the inputs of the projection: the config files (git blob ids), the prompt
  audio the projection read, a keyed digest of the secrets' values, provgit's
  code (see `validate.cache.code_fingerprint`) and the planning options; and
- what each element holds, which only changes through writes its change feed
  lists.

So after each full plan provgit keeps, per element, the element revision it
saw, the operations it planned, and the keys it observed, plus the projected
target on disk (`store.TargetStore`). While the inputs digest is the same, the
next plan reads each element's feed since that revision and re-plans exactly
the records the feed names (`replan.replan`, the loop the watcher runs too),
reusing the rest. The result
equals the full computation (a property test holds it to that); anything
unexpected (feed too old, a missing memo, an element that cannot be read)
falls back to the full path. `PROVGIT_NO_MEMO=1` turns it off.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import pickle
import re
import sqlite3
from collections.abc import Collection
from dataclasses import dataclass, field
from operator import is_
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provgit.fsutil import atomic_write, read_state_file
from provgit.incremental.known import Known
from provgit.incremental.memo_summary import (
    MemoSummary,
    memo_key,
    read_summary,
    seal,
    summary_of,
    unseal,
    write_summary,
)
from provgit.incremental.store import TargetStore
from provgit.plan.model import Operation
from provgit.plan.options import PlanOptions
from provgit.secrets import Fingerprinter, network_key
from provgit.source import ConfigSource, blob_id
from provgit.validate.cache import Reads, tree_key

if TYPE_CHECKING:
    # Only in MemoMeta's pickle: reading the summary imports no pydantic.
    from provgit.model.network import Element
    from provgit.model.settings import Settings

# 2: delete operations say whether provgit created the record; 3: operations
# as tuples of their attributes (an add's changes derived from its fields);
# 4: an add or modify may leave out its fields (None): they are its record's
# row in the target store beside the memo. 5: each operation's changes and
# fields are stored apart from the rest, decoded only for the operations a plan
# keeps (`StoredKnown`). 6: those in chunks of `CHUNK` operations, each its own
# marshal bytes: keeping 2 of MiCollab's 28,403 operations decoded all of them.
# (Not one blob per operation: each would repeat the field names marshal
# shares within a blob; a memo hit decoding all 49,781 then took ~10 % more
# CPU and ~50 MB more.) 7: the observed keys are marshal bytes of their own,
# decoded only by a plan: the report reads an element's revision and
# operations, and decoding W100k's 304,616 keys to get them was most of its
# reading of the memos (twice in a reconcile with nothing to do).
FORMAT = "plan-memo-7"
CHUNK = 1024
_WRITES = ("add", "modify")


def enabled() -> bool:
    return os.environ.get("PROVGIT_NO_MEMO", "") in ("", "0")


@dataclass(frozen=True)
class MemoInputs:
    """What the projection depended on besides the config files themselves."""

    reads: Reads  # prompt audio: path -> blob id (None: absent)
    secret_refs: tuple[str, ...]


@dataclass(frozen=True)
class MemoMeta:
    digest: str
    inputs: MemoInputs
    settings: Settings
    elements: dict[str, Element]
    # The same inputs with each secret's reference in place of its value's
    # fingerprint (`reference_digests`): what a machine without the secret
    # values can still check, so `status` there needs no full derivation.
    # None in a memo from before it (the next full plan adds it).
    references: str | None = None


# What the memo keeps of an element: its `version` is the inputs digest.
ElementMemo = Known


def inputs_digest(
    source: ConfigSource,
    inputs: MemoInputs,
    fingerprints: Fingerprinter,
    options: PlanOptions,
    tree: str | None = None,
) -> tuple[str, list[str]]:
    """The digest of everything a plan depends on but the elements, and the
    secret references that cannot be resolved here. `tree`: the config files'
    key (`validate.cache.tree_key`) to use instead of `source`'s."""
    digests, unresolved = inputs_digests(source, inputs, fingerprints, [options], tree)
    return digests[0], unresolved


def inputs_digests(
    source: ConfigSource,
    inputs: MemoInputs,
    fingerprints: Fingerprinter,
    options: list[PlanOptions],
    tree: str | None = None,
) -> tuple[list[str], list[str]]:
    """`inputs_digest` for each of `options`, the common part hashed once."""
    h = _common(source, inputs, tree)
    refs = sorted(inputs.secret_refs)
    # One keyed digest over every value, not a fingerprint each: the same
    # changes change it (tests/plan/test_memo_secrets.py).
    values, unresolved = fingerprints.values_digest(refs)
    h.update(f"\0secrets:{len(refs)}:{values}\0".encode())
    h.update("\0".join(refs).encode())
    return _per_option(h, options), unresolved


def reference_digests(
    source: ConfigSource, inputs: MemoInputs, options: list[PlanOptions], tree: str | None = None
) -> list[str]:
    """`inputs_digests` with no secret value in it: the references only (the
    config, code and prompt audio as there). Equal while nothing but a secret's
    value changed; never equal to an `inputs_digests` digest."""
    h = _common(source, inputs, tree)
    refs = sorted(inputs.secret_refs)
    h.update(f"\0references:{len(refs)}\0".encode())
    h.update("\0".join(refs).encode())
    return _per_option(h, options)


def _common(source: ConfigSource, inputs: MemoInputs, tree: str | None) -> Any:
    h = hashlib.sha256(f"{FORMAT}\0{tree or tree_key(source)}".encode())
    for rel in sorted(inputs.reads):
        data = source.read_other(rel)
        h.update(f"\0audio:{rel}:{None if data is None else blob_id(data)}".encode())
    return h


def _per_option(h: Any, options: list[PlanOptions]) -> list[str]:
    digests = []
    for option in options:
        each = h.copy()
        each.update(f"\0prune:{option.prune}".encode())
        if option.claim:  # only then: memos made before --claim stay valid
            each.update(b"\0claim")
        digests.append(each.hexdigest())
    return digests


def operation_summary(raw: list[tuple[Any, ...]]) -> dict[tuple[str, str], tuple[str, Any]]:
    """(collection, key) -> (action, if_revision) of a memo's operations as
    stored (what status reads without building the operations)."""
    return {(o[1], o[2]): (o[0], o[7]) for o in raw}


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


class PlanMemo:
    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        self.dir = Path(state_dir) / "memo"

    @property
    def target_path(self) -> Path:
        return self.dir / "target.sqlite"

    def _key(self, create: bool = False) -> bytes | None:
        """The memo's key (`memo_summary.memo_key`); None: the state directory has none."""
        found = network_key(None, self.dir.parent, create)
        return None if found is None else memo_key(found.secret)

    def load_meta(self) -> MemoMeta | None:
        try:
            pickled = unseal(self._key(), read_state_file(self.dir / "meta.pickle"))
            if pickled is None:  # not sealed by us: never unpickled (it would run)
                return None
            meta = pickle.loads(pickled)
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError, TypeError):
            return None
        return meta if isinstance(meta, MemoMeta) else None

    def save_meta(self, meta: MemoMeta) -> None:
        # Pickle keeps the pydantic settings and elements; sealed, as it runs what it says.
        key = self._key(create=True)
        assert key is not None, "a key is made when there is none"
        sealed = seal(key, pickle.dumps(meta))
        atomic_write(self.dir / "meta.pickle", sealed)
        write_summary(self.dir / "meta.json", meta, sealed, key)

    def forget_meta(self) -> None:
        """No meta: no memo (the next plan takes the full path)."""
        for name in ("meta.pickle", "meta.json"):
            (self.dir / name).unlink(missing_ok=True)

    def load_summary(self) -> MemoSummary | None:
        """What a status reads of the meta (`memo_summary`): from its JSON,
        else from the pickle; None when there is no meta."""
        found = read_summary(self.dir / "meta.json", self.dir / "meta.pickle", self._key())
        if found is None and (meta := self.load_meta()) is not None:
            return summary_of(meta)
        return found

    def load_element(self, element: str) -> Known | None:
        stored = self.load_stored(element)
        return None if stored is None else stored.known()

    def element_doc(self, element: str, key: bytes | None = None) -> dict[str, Any] | None:
        """The element memo's document when its seal holds (`key`: the memo
        key, read here when not given), else None. Sealed like the meta: its
        operations say what `status` reports pending, so an empty list written
        by one without the key would make it say Sync Completed (and the next
        plan re-plan nothing)."""
        try:
            if key is None and (key := self._key()) is None:
                return None
            data = unseal(key, read_state_file(self.element_path(element)))
            if data is None:
                return None
            doc = marshal.loads(data)
        except (OSError, EOFError, ValueError, TypeError):
            return None
        ok = isinstance(doc, dict) and doc.get("format") == FORMAT
        return doc if ok and doc.get("element") == element else None

    def element_path(self, element: str) -> Path:
        return self.dir / "elements" / f"{_safe(element)}.marshal"

    def load_stored(self, element: str) -> StoredKnown | None:
        """The element's memo with its operations' changes and fields still
        one marshal blob: a re-plan that replaces all of an element's
        operations (a template edit: MiCollab's 28,403 pending updates) does
        not decode them."""
        try:
            doc = self.element_doc(element)
            if doc is None:
                return None
            ops, payload = doc["operations"], doc["payload"]
            filled = self._fields_in_target(element, doc["digest"], ops, doc["stored_without"])
            if filled is None:
                return None
            keys = marshal.loads(doc["keys"])
            if not isinstance(keys, dict):
                return None
            return StoredKnown(
                doc["digest"], doc["revision"], ops, payload, filled, doc["warnings"], keys
            )
        except (OSError, EOFError, ValueError, TypeError, KeyError, sqlite3.Error):
            return None

    def _fields_in_target(
        self, element: str, digest: str, ops: list[tuple[Any, ...]], without: list[int]
    ) -> dict[int, bytes] | None:
        """The marshalled fields of the operations (by index) stored without
        them, from the target store's rows; None when the store is not the
        one the memo was planned against or lacks a row (the memo is then not
        used: the full path plans). Read now, while the store is that one."""
        if not without:
            return {}
        store = TargetStore(self.target_path)
        if store.digest() != digest:
            return None
        blobs = store.field_blobs(element, [(ops[i][1], ops[i][2]) for i in without])
        filled = {}
        for i in without:
            blob = blobs.get((ops[i][1], ops[i][2]))
            if blob is None:
                return None
            filled[i] = blob
        return filled

    def save_element(
        self,
        element: str,
        memo: Known,
        *,
        rows_in_target: bool = False,
        kept: StoredKnown | None = None,
    ) -> None:
        """`rows_in_target`: every add's and modify's fields are its record's
        row in the target store of `memo.version` (as a plan against that
        target makes them): they are left out here, not stored twice (most of
        a first rollout's memo) and read back from the store. `kept`: the
        memo `memo`'s operations were read from; when they are all still the
        ones it decoded, its changes and fields are written as read."""
        assert memo.keys is not None, "the memo counts what the element holds by its keys"
        drop = _WRITES if rows_in_target else ()
        ops = memo.operations
        without = [i for i, op in enumerate(ops) if op.action in drop]
        read = kept.chunks_read if kept is not None and not drop else {}
        dumps = marshal.dumps
        payload = []
        for j, at in enumerate(range(0, len(ops), CHUNK)):
            part = ops[at : at + CHUNK]
            was = read.get(j)
            if was is not None and len(was[0]) == len(part) and all(map(is_, was[0], part)):
                payload.append(was[1])  # the same operations in the same places: as read
            else:
                payload.append(
                    dumps([(op.delta, None if op.action in drop else op.fields) for op in part])
                )
        doc = {
            "format": FORMAT,
            "element": element,
            "digest": memo.version,
            "revision": memo.revision,
            # Each operation's attributes but its changes and fields (None
            # here: status reads these alone), which are `payload`, in order.
            "operations": [
                (
                    op.action,
                    op.collection,
                    op.key,
                    op.kind,
                    op.resource,
                    None,
                    None,
                    op.if_revision,
                    op.depends_on,
                    op.managed,
                    # A claim planned with --claim stays one when the memo plans again.
                    op.claim,
                )
                for op in ops
            ],
            # Not redacted: fingerprints and references only, like the target
            # store beside it (owner-only files); no value is ever in a plan.
            "payload": dumps(payload),
            "stored_without": without,
            "warnings": memo.warnings,
            # Its own bytes: decoded by a plan (`load_stored`), never by status.
            "keys": dumps(memo.keys),
        }
        key = self._key(create=True)
        assert key is not None, "a key is made when there is none"
        atomic_write(self.element_path(element), seal(key, marshal.dumps(doc)))

    def forget_element(self, element: str) -> None:
        self.element_path(element).unlink(missing_ok=True)


@dataclass
class StoredKnown:
    """An element memo as stored: each operation's attributes as a tuple, its
    changes and fields in chunks of `CHUNK` operations, each chunk marshal
    bytes of its own (`payload`: the list of them, marshalled), decoded only
    when an operation in it is kept; `filled`: the fields of those stored
    without them, from the target store (by index)."""

    version: str
    revision: int
    operations: list[tuple[Any, ...]]
    payload: bytes
    filled: dict[int, bytes]
    warnings: dict[str, str]
    keys: dict[str, list[str]]
    # The chunks `known()` decoded whole (every operation kept, none filled):
    # their operations and bytes, so a save writes those bytes again while the
    # same operations are in the same places.
    chunks_read: dict[int, tuple[tuple[Operation, ...], bytes]] = field(default_factory=dict)

    def head(self) -> Known:
        """What the memo says of the element but its operations."""
        return Known(self.version, self.revision, (), self.warnings, self.keys)

    def known(self, skip: Collection[tuple[str, str]] = ()) -> Known:
        """The memo, without the operations of the records in `skip`: the
        records to plan again, whose operations `replan` replaces, so leaving
        them out changes no plan."""
        keep = [i for i, o in enumerate(self.operations) if not skip or (o[1], o[2]) not in skip]
        made: list[Operation] = []
        if keep:
            loads = marshal.loads
            chunks: list[bytes] = loads(self.payload)
            decoded: dict[int, list[tuple[Any, Any]]] = {}
            filled, attrs = self.filled, self.operations
            for i in keep:
                j = i // CHUNK
                part = decoded.get(j)
                if part is None:
                    part = decoded[j] = loads(chunks[j])
                o = attrs[i]
                delta, fields = part[i - j * CHUNK]
                stored = filled.get(i)
                if stored is not None:
                    fields = loads(stored)
                made.append(
                    Operation(o[0], o[1], o[2], o[3], o[4], delta, fields, o[7], o[8], o[9], o[10])
                )
            self._note_whole_chunks(keep, made, chunks)
        return Known(
            self.version,
            self.revision,
            tuple(made),
            dict(self.warnings),
            {c: list(k) for c, k in self.keys.items()},
        )

    def _note_whole_chunks(
        self, keep: list[int], made: list[Operation], chunks: list[bytes]
    ) -> None:
        """Remember the chunks whose every operation was kept (`keep`: sorted
        indexes, `made` their operations) and none filled."""
        filled, at = self.filled, 0
        for j, blob in enumerate(chunks):
            start, end = j * CHUNK, min((j + 1) * CHUNK, len(self.operations))
            while at < len(keep) and keep[at] < start:
                at += 1
            n = end - start
            whole = at + n <= len(keep) and keep[at] == start and keep[at + n - 1] == end - 1
            if whole and not (filled and any(i in filled for i in range(start, end))):
                self.chunks_read[j] = (tuple(made[at : at + n]), blob)
