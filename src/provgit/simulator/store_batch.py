"""One `ElementStore.write_batch` inside its transaction: the ops' checks
against an in-memory view of the rows they touch, the writes in bulk.

A write used to cost about seven statements (read the record, look up each
DN and COS, upsert, delete and re-add index rows, the feed row); a batch of
5,000 was 35,000 round trips into SQLite. Here a batch reads what its ops
touch up front (records, DN owners, the COS they name: one query each), keeps
that view current as ops succeed (later ops see earlier ones), and writes the
records, index rows, secrets and feed rows with one `executemany` each.

What stays per op is what is rare and needs the table itself: deleting a COS
(is any record still using it?) and rewriting the secrets of a record that
already has some. Before those the pending rows are flushed, so the query sees
every earlier op of the batch. Nothing here commits: the caller's transaction
keeps a batch all or nothing across a crash.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Sequence
from typing import Any

from provgit.records import MANAGED_BY, META_PREFIX, Fields, form_name
from provgit.simulator import rules
from provgit.simulator.store_tables import ContentDigest, Indexes, Secrets
from provgit.wire import codec
from provgit.wire.protocol import ConflictError, NotFoundError, Refusal, RefusedError, WriteOp
from provgit.wire.sensitive import SENSITIVE, split_secrets

STALE = "changed by another user, refresh"
Key = tuple[str, str]
# A batch names its keys as one JSON array (json_each): no host-parameter limit.
_Row = tuple[str, int]
# A put's DNs, COS and over-long directory names (rules.walk).
_Walk = tuple[list[tuple[str, str]], list[tuple[str, str]], list[str]]
_CREATED = "_created"
_QUOTED_SENSITIVE = b'"' + SENSITIVE.encode() + b'"'


def _json_list(values: Iterable[str]) -> str:
    return codec.dumps(list(values)).decode()


class BatchWriter:
    """The view and the pending rows of one batch (see the module docstring)."""

    def __init__(
        self,
        db: sqlite3.Connection,
        element: str,
        element_type: str,
        indexes: Indexes,
        secrets: Secrets,
        refusals: set[Key],
        force: bool,
        *,
        digest: ContentDigest | None = None,
        refusal_reason: str = "The element refused this record (injected fault)",
        lie: str | None = None,
    ) -> None:
        self.db = db
        self.element = element
        self.element_type = element_type
        self.indexes = indexes
        self.secrets = secrets
        self.refusals = refusals
        self.force = force
        self.digest = digest
        self.refusal_reason = refusal_reason
        # The "alter" fault (answered as done, other values kept); "drop" is the store's.
        self.alter = lie == "alter" and not force
        self.created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.created_tail = b',"' + _CREATED.encode() + b'":' + codec.dumps(self.created) + b"}"
        # (collection, key) -> (fields JSON, revision), None when absent: as of
        # the last successful op. Holds every key the batch names, and the COS.
        self.rows: dict[Key, _Row | None] = {}
        self.dn_owner: dict[str, Key | None] = {}
        # Keys whose record the table holds (as of the last flush): only those
        # can have index rows to delete.
        self.held: set[Key] = set()
        # Pending: final record rows, records to re-index (their final index
        # entries), records without secrets any more, new secret rows, feed rows.
        self.dirty: dict[Key, tuple[str, str, str, int] | None] = {}
        self.reindex: dict[Key, tuple[list[str], list[str]]] = {}
        self.drop_secrets: set[Key] = set()
        self.secret_rows: list[tuple[str, str, str, str]] = []
        self.changes: list[tuple[int, str, str, str, str | None, int]] = []
        self.forms: dict[str, str] = {}  # collections checked: their form names
        self.walks: list[_Walk | None] = []

    # ---- the view --------------------------------------------------------

    def prefetch(self, ops: Sequence[WriteOp]) -> None:
        """Read every row the ops can look at: one query per collection named,
        one for the DNs and one for the COS their fields use."""
        keys: dict[str, set[str]] = {}
        dns: set[str] = set()
        cos_named: set[str] = set()
        walks, element_type, walk = self.walks, self.element_type, rules.walk
        for op in ops:
            names = keys.get(op.collection)
            if names is None:
                names = keys[op.collection] = set()
            names.add(op.key)
            if op.op == "put" and isinstance(op.fields, dict):
                walked = walk(element_type, op.fields)
                walks.append(walked)
                found, cos, _ = walked
                for _, dn in found:
                    dns.add(dn)
                for _, number in cos:
                    cos_named.add(number)
            else:
                walks.append(None)
        if cos_named:
            keys.setdefault("cos", set()).update(cos_named)
        rows, held = self.rows, self.held
        for collection, names in keys.items():
            rows.update({(collection, key): None for key in names})
            for key, fields, revision in self.db.execute(
                "SELECT key, fields, revision FROM records WHERE collection = ? "
                "AND key IN (SELECT value FROM json_each(?))",
                (collection, _json_list(names)),
            ):
                rows[(collection, key)] = (fields, revision)
                held.add((collection, key))
        if dns:
            for dn in dns:
                self.dn_owner[dn] = None
            for dn, collection, key in self.db.execute(
                "SELECT dn, collection, key FROM dns WHERE dn IN (SELECT value FROM json_each(?))",
                (_json_list(dns),),
            ):
                self.dn_owner[dn] = (collection, key)

    def _set(self, key: Key, row: _Row | None) -> None:
        self.rows[key] = row
        self.dirty[key] = None if row is None else (key[0], key[1], row[0], row[1])

    # ---- one op ----------------------------------------------------------

    def apply(self, i: int, op: WriteOp, revision: int) -> str | None:
        """Op `i` of the batch at `revision`; the stored fields JSON (None for a
        delete). Every check comes before the first change, so a refusal
        changes nothing."""
        collection = op.collection
        owner = (collection, op.key)
        form = self.forms.get(collection)
        if form is None:
            refusal = rules.check_collection(self.element_type, collection)
            if refusal is not None:
                raise RefusedError(refusal.reason, [refusal])
            form = self.forms[collection] = form_name(self.element_type, collection)
        row = self.rows[owner]
        # A create of an absent record meets its condition: most of a rollout.
        if not self.force and (row is not None or op.if_revision is not None):
            self._check_condition(op, row)
        if owner in self.refusals:
            raise RefusedError(
                f"{form} {op.key} refused by the element",
                [Refusal(form, None, self.refusal_reason)],
            )
        if op.op == "delete":
            self._delete(op, row, revision, form)
            return None
        walk = self.walks[i]
        if op.op != "put" or walk is None or not isinstance(op.fields, dict):
            raise RefusedError(
                f"{form} {op.key}: a put needs an object of fields",
                [Refusal(form, None, "A put needs an object of fields")],
            )
        return self._put(owner, op.fields, row, revision, form, walk)

    def _check_condition(self, op: WriteOp, row: _Row | None) -> None:
        where = f"{op.collection}/{op.key}"
        if row is None and op.if_revision is not None:
            raise NotFoundError(f"{where} does not exist on element {self.element}")
        if row is not None and op.if_revision is None and op.op == "put":
            raise ConflictError(f"{where} already exists: {STALE}")
        if row is not None and op.if_revision is not None and row[1] != op.if_revision:
            raise ConflictError(f"{where} is at revision {row[1]}, not {op.if_revision}: {STALE}")

    def _delete(self, op: WriteOp, row: _Row | None, revision: int, form: str) -> None:
        collection, key = op.collection, op.key
        if row is None:
            raise NotFoundError(f"{collection}/{key} does not exist on element {self.element}")
        if collection == "cos":
            # Which records use this COS is in cos_refs: bring it up to date first.
            self.flush()
            self.indexes.check_delete(collection, key, form)
        if self.digest is not None:
            self.digest.moved(collection, key, codec.loads(row[0]), None)
        self._unindex((collection, key), row)
        self.reindex[(collection, key)] = ([], [])
        self._set((collection, key), None)
        self.drop_secrets.add((collection, key))
        self.changes.append((revision, collection, key, "delete", None, revision))

    def _put(
        self,
        owner: Key,
        fields: Fields,
        row: _Row | None,
        revision: int,
        form: str,
        walk: _Walk,
    ) -> str:
        collection, key = owner
        dns, cos, long_names = walk
        # One C-speed encoding tells which records have secrets or long strings
        # at all: most have neither, and walking every record for them was a
        # third of a bulk write.
        encoded = codec.dumps(fields)
        sensitive = _QUOTED_SENSITIVE in encoded
        if sensitive:
            stored, secrets = split_secrets(fields)
        else:
            stored, secrets = fields, {}
        refusals = rules.check_record(
            self.element_type,
            collection,
            key,
            fields,
            secrets=secrets,
            encoded=encoded,
            form=form,
            long_names=long_names,
        )
        if dns or cos:
            refusals += self._check_references(owner, dns, cos, form)
        if refusals:
            raise RefusedError(
                f"{form} {key} refused: " + "; ".join(r.reason for r in refusals), refusals
            )
        if row is None and not sensitive and not self.alter and fields and _CREATED not in fields:
            # A plain create (most of a rollout): stored is what was sent plus
            # _created, which orjson would encode as these very bytes; encoding
            # it again and parsing it back for the digest was a fifth of a put.
            text, old = (encoded[:-1] + self.created_tail).decode(), None
            if self.digest is not None:
                self.digest.created(collection, key, fields, encoded)
        else:
            text, stored, old = self._stored(collection, key, row, stored)
        reindexed = row is not None and self._unindex(owner, row, old)
        if dns or cos or reindexed:
            for _, dn in dns:
                self.dn_owner[dn] = owner
            self.reindex[owner] = ([dn for _, dn in dns], [c for _, c in cos])
        if secrets or SENSITIVE in text or (row is not None and SENSITIVE in row[0]):
            self._keep_secrets(owner, stored, secrets)
        self.rows[owner] = (text, revision)
        self.dirty[owner] = (collection, key, text, revision)
        self.changes.append((revision, collection, key, "put", text, revision))
        return text

    def _stored(
        self, collection: str, key: str, row: _Row | None, sent: Fields
    ) -> tuple[str, Fields, Fields | None]:
        """The fields JSON the element keeps of a put, their dict and the old
        record's (None: a create)."""
        stored = dict(sent)
        old: Fields | None = codec.loads(row[0]) if row is not None else None
        # Element-filled bookkeeping; provgit ignores `_` fields except _managed_by.
        for name, value in (old or {}).items():
            if name.startswith(META_PREFIX) and name != MANAGED_BY:
                stored.setdefault(name, value)
        stored.setdefault(_CREATED, self.created)
        if self.alter:
            stored = rules.altered(stored)
        text = codec.dumps(stored).decode()
        if self.digest is not None:
            self.digest.moved(collection, key, old, stored)
        return text, stored, old

    def _check_references(
        self, owner: Key, dns: list[tuple[str, str]], cos: list[tuple[str, str]], form: str
    ) -> list[Refusal]:
        out: list[Refusal] = []
        seen: set[str] = set()
        for path, dn in dns:
            if dn in seen:
                out.append(Refusal(form, path, f"DN {dn} is used twice in this record"))
                continue
            seen.add(dn)
            used = self.dn_owner[dn]
            if used is not None and used != owner:
                out.append(Refusal(form, path, f"DN {dn} is already used by {used[0]}/{used[1]}"))
        for path, number in cos:
            if self.rows[("cos", number)] is None:
                out.append(
                    Refusal(form, path, f"Class of Service {number} does not exist on this element")
                )
        return out

    def _unindex(self, owner: Key, row: _Row | None, old: Fields | None = None) -> bool:
        """Free the DNs the record held (in the view); whether it had index rows."""
        if row is None:
            return False
        if old is None:
            old = codec.loads(row[0])
        held = rules.directory_numbers(old)
        for _, dn in held:
            if self.dn_owner.get(dn) in (owner, None):
                self.dn_owner[dn] = None
        return bool(held or rules.cos_references(self.element_type, old))

    def _keep_secrets(self, owner: Key, stored: Fields, secrets: dict[str, Any]) -> None:
        if owner in self.dirty or self.rows[owner] is not None:
            # The record has (or had, this batch) plaintexts: the table decides
            # which are kept, so it must be current.
            self.flush()
            self.secrets.store(owner[0], owner[1], stored, secrets)
            return
        # A new record: nothing kept, so its rows are the plaintexts sent.
        self.secret_rows.extend(
            (owner[0], owner[1], path, codec.dumps(value).decode())
            for path, value in secrets.items()
        )

    # ---- writing ---------------------------------------------------------

    def flush(self) -> None:
        """Write the pending rows: one executemany per table."""
        db = self.db
        held = [k for k in self.reindex if k in self.held]
        if dirty := self.dirty:
            gone = [k for k, row in dirty.items() if row is None]
            if gone:
                db.executemany("DELETE FROM records WHERE collection = ? AND key = ?", gone)
            db.executemany(
                "INSERT INTO records VALUES (?, ?, ?, ?) ON CONFLICT (collection, key) "
                "DO UPDATE SET fields = excluded.fields, revision = excluded.revision",
                [row for row in dirty.values() if row is not None],
            )
            self.held.update(dirty)
            self.held.difference_update(gone)
            self.dirty = {}
        if self.reindex:
            if held:
                db.executemany("DELETE FROM dns WHERE collection = ? AND key = ?", held)
                db.executemany("DELETE FROM cos_refs WHERE collection = ? AND key = ?", held)
            db.executemany(
                "INSERT OR IGNORE INTO dns VALUES (?, ?, ?)",
                [(dn, c, k) for (c, k), (dns, _) in self.reindex.items() for dn in dns],
            )
            db.executemany(
                "INSERT OR IGNORE INTO cos_refs VALUES (?, ?, ?)",
                [(n, c, k) for (c, k), (_, cos) in self.reindex.items() for n in set(cos)],
            )
            self.reindex = {}
        if self.drop_secrets:
            db.executemany(
                "DELETE FROM secrets WHERE collection = ? AND key = ?", list(self.drop_secrets)
            )
            self.drop_secrets = set()
        if self.secret_rows:
            db.executemany("INSERT INTO secrets VALUES (?, ?, ?, ?)", self.secret_rows)
            self.secret_rows = []
        if self.changes:
            db.executemany("INSERT INTO changes VALUES (?, ?, ?, ?, ?, ?)", self.changes)
            self.changes = []
