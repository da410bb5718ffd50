"""The `ldap` driver: a `directory` element is an organisational unit of an LDAP
directory that MiCollab Integrated Directory Services (IDS) reads its users from.

provgit's `users` records become entries under the OU, with the attribute
mapping MiCollab IDS applies (a preset, `active_directory` or `openldap`, with
per-field overrides). Every entry provgit creates carries a marker value in
`description`; entries without it are listed (so `import` and plans see them)
but never written or deleted, and nothing outside the OU is ever touched.

Reads go through python-ldap (`provgit.drivers.ldap_read`: libldap decodes
in C), writes through ldap3 (its assertion control); each keeps a connection.

Revisions are the entries' `entryCSN` (microsecond change sequence numbers, so a
change made in the directory meanwhile is a conflict): updates and deletes carry
the LDAP assertion control (RFC 4528) naming the CSN they were planned against.
Full reads use the simple paged results control; refreshes search
`modifyTimestamp>=` the last revision and find deletions by listing the OU's
user names against what this driver last saw (the first refresh in a process
answers "feed too old", so it starts with one full read).

Settings (DriverConfig.settings):
  url        ldap://host[:port] or ldaps://host[:port]
  token      the bind password, already resolved from its secret reference
  timeout    seconds for connecting and for each operation
  directory  base_dn, bind_dn, preset, attributes (field -> attribute or None),
             object_classes, start_tls (see provgit.model.directory)
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import math
import os
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import ldap3
from ldap3.core import exceptions as lx
from ldap3.operation.search import compile_filter, parse_filter
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn
from pyasn1.codec.ber import encoder as ber  # ldap3's own ASN.1 library

from provgit.drivers.base import DriverConfig
from provgit.drivers.ldap_csn import csn_bounds as _csn_bounds
from provgit.drivers.ldap_csn import csn_revision
from provgit.drivers.ldap_csn import stamp as _stamp
from provgit.drivers.ldap_errors import error_of, lowered, text_of
from provgit.drivers.ldap_read3 import Reader as SlowReader

try:  # python-ldap: the `fast-ldap` extra (it builds against libldap's headers)
    from provgit.drivers.ldap_read import Reader as FastReader
except ImportError:  # pragma: no cover - depends on the install
    FastReader = None  # type: ignore[assignment,misc]
from provgit.model.directory import FIELDS, PRESET_CLASSES, PRESET_RDN, carried
from provgit.records import MANAGED_BY, MANAGED_BY_VALUE, Fields
from provgit.wire.protocol import (
    Change,
    ChangeFeed,
    ConflictError,
    ElementError,
    ElementInfo,
    FeedTooOldError,
    LockedError,
    NotFoundError,
    OfflineError,
    Page,
    Refusal,
    RefusedError,
    StoredRecord,
    TransportError,
    UnauthorizedError,
    WriteOp,
    WriteResult,
)

USERS = "users"
FORM = "User and Services (IDS entry)"
# provgit's ownership mark on an entry (a `description` value).
MARKER_ATTRIBUTE = "description"
MARKER = f"managed-by={MANAGED_BY_VALUE}"
MARKER_BYTES = MARKER.encode()
# What `_record` makes of the entryCSN and marker attributes (not user fields).
_CSN, _MARK = "\0csn", "\0mark"
ASSERTION_OID = "1.3.6.1.1.12"
T = TypeVar("T")


def mapping_of(directory: Mapping[str, Any]) -> dict[str, str]:
    """field -> attribute for what this element carries (preset, then overrides)."""
    return carried(str(directory.get("preset") or "active_directory"), directory.get("attributes"))


def _assertion(filter_text: str) -> tuple[str, bool, bytes]:
    node = parse_filter(filter_text, None, True, True, None, False)
    return (ASSERTION_OID, True, ber.encode(compile_filter(node.elements[0])))


class LdapDriver:
    """A Driver over one LDAP connection (calls run in a worker thread, one at a time)."""

    revision_is_clock = True  # info(): a read's time; apply checks each entryCSN instead

    def __init__(self, config: DriverConfig) -> None:
        self.name = config.element
        self.config = config
        s = config.settings
        d: Mapping[str, Any] = s.get("directory") or {}
        self.url = str(s.get("url") or "")
        # Whole seconds: ldap3 sets socket timeouts with struct-packed integers.
        self.timeout = max(1, math.ceil(float(s.get("timeout") or 10.0)))
        self.base = str(d.get("base_dn") or "")
        self.bind_dn = str(d.get("bind_dn") or "") or None
        self._password: str | None = s.get("token") or None
        self.start_tls = bool(d.get("start_tls"))
        ca_file = d.get("ca_file")
        self.ca_file = os.path.expanduser(str(ca_file)) if ca_file else None
        preset = str(d.get("preset") or "active_directory")
        self.mapping = mapping_of(d)
        self.rdn = str(d.get("rdn_attribute") or PRESET_RDN[preset])
        self.object_classes = list(d.get("object_classes") or PRESET_CLASSES[preset])
        self.attributes = sorted(set(self.mapping.values()))
        self._conn: ldap3.Connection | None = None
        # Reads go through libldap (python-ldap, the `fast-ldap` extra) when it
        # is installed, else through ldap3 (see provgit.drivers.ldap_read3).
        self._reader: FastReader | SlowReader
        if FastReader is not None:
            self._reader = FastReader(
                self.name,
                self.url,
                self.base,
                self.bind_dn,
                self._password,
                self.timeout,
                self.start_tls,
                self.ca_file,
            )
        else:
            self._reader = SlowReader(
                self.name, self.base, self.timeout, self._connect, error_of, self._drop
            )
        self._lock = threading.Lock()
        # (field, attribute in lower case) of what an entry carries, for decoding
        # reads; and each attribute name as the server spells it -> its field.
        self._wanted = [(f, a.lower()) for f in FIELDS if (a := self.mapping.get(f))]
        self._names: dict[str, tuple[str, ...]] = {}
        # key -> revision of the entries (managed or not) last seen; None: no full
        # read yet. A refresh reports the keys gone from the OU since as deletes.
        self._known: dict[str, int] | None = None
        self._pending: dict[str, int] = {}

    def __repr__(self) -> str:  # never show the password
        return f"LdapDriver({self.name!r}, {self.url!r}, base={self.base!r})"

    # ---- connection -------------------------------------------------------------

    def _connect(self) -> ldap3.Connection:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        # Certificates are always checked (chain and host name), against ca_file if given.
        tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=self.ca_file)
        server = ldap3.Server(self.url, get_info=ldap3.NONE, connect_timeout=self.timeout, tls=tls)
        conn = ldap3.Connection(
            server,
            user=self.bind_dn,
            password=self._password,
            receive_timeout=self.timeout,
            raise_exceptions=False,
            auto_referrals=False,
        )
        try:
            conn.open()
            if self.start_tls and not conn.start_tls():
                raise TransportError(f"element {self.name}: StartTLS failed: {conn.result}")
            if not conn.bind():
                code = conn.result.get("result")
                if code == 49:
                    raise UnauthorizedError(
                        f"element {self.name}: the directory refused the bind DN and "
                        "password (token refused): check connection.token and directory.bind_dn"
                    )
                raise error_of(self.name, conn.result)
        except lx.LDAPException as e:
            conn.unbind()
            raise TransportError(f"element {self.name}: cannot reach {self.url}: {e}") from e
        self._conn = conn
        return conn

    async def _call(self, fn: Callable[[ldap3.Connection], T]) -> T:
        def run() -> T:
            with self._lock:
                conn = self._connect()
                try:
                    return fn(conn)
                except lx.LDAPException as e:
                    # A dropped connection is a transport problem; the next call reconnects.
                    self._drop()
                    raise TransportError(f"element {self.name}: {e}") from e

        return await asyncio.to_thread(run)

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(lx.LDAPException):
                conn.unbind()

    async def _read(self, fn: Callable[[FastReader | SlowReader], T]) -> T:
        def run() -> T:
            with self._lock:
                return fn(self._reader)

        return await asyncio.to_thread(run)

    # ---- entries <-> records ------------------------------------------------------

    def _dn(self, key: str) -> str:
        return f"{self.rdn}={escape_rdn(key)},{self.base}"

    def _record(self, raw: Mapping[str, Sequence[bytes]]) -> StoredRecord | None:
        """A read entry's attributes (values as bytes, as libldap gives them) -> a record."""
        fields: Fields = {}
        csn: bytes | None = None
        owned = False
        names = self._names
        for attribute, values in raw.items():
            targets = names.get(attribute)
            if targets is None:  # first sight of this spelling of an attribute name
                targets = names[attribute] = self._fields_of(attribute.lower())
            if not values or not targets:
                continue
            if targets[0] == _CSN:
                csn = values[0]
            elif targets[0] == _MARK:
                owned = MARKER_BYTES in values
            else:
                text = values[0].decode("utf-8", "replace")
                for name in targets:
                    fields[name] = text
        key = fields.get("login_id")
        if not key or csn is None:
            return None
        if owned:
            fields[MANAGED_BY] = MANAGED_BY_VALUE
        return StoredRecord(USERS, str(key), fields, csn_revision(csn.decode("ascii", "replace")))

    def _fields_of(self, attribute: str) -> tuple[str, ...]:
        """An attribute (lower case) -> its fields (maybe 2), or (_CSN,), (_MARK,), ()."""
        if attribute == "entrycsn":
            return (_CSN,)
        if attribute == MARKER_ATTRIBUTE.lower():
            return (_MARK,)
        return tuple(f for f, a in self._wanted if a == attribute)

    def _entry(self, key: str, fields: Fields) -> dict[str, list[str]]:
        values: dict[str, list[str]] = {}
        for f, a in self.mapping.items():
            v = fields.get(f)
            values[a] = [] if v is None or v == "" else [str(v)]
        values[self.mapping["login_id"]] = [key]
        return values

    def _read_attrs(self) -> list[str]:
        return [*self.attributes, MARKER_ATTRIBUTE, "entryCSN"]

    # ---- the Driver interface ---------------------------------------------------------

    async def info(self) -> ElementInfo:
        def ask(conn: ldap3.Connection) -> ElementInfo:
            ok = conn.search(self.base, "(objectClass=*)", ldap3.BASE, attributes=["1.1"])
            if not ok:
                if conn.result.get("result") == 32:
                    raise NotFoundError(
                        f"element {self.name}: the base OU {self.base!r} does not exist "
                        "in the directory: create it, or fix directory.base_dn"
                    )
                raise error_of(self.name, conn.result)
            return ElementInfo(self.name, "directory", "LDAP", _now_revision(), "running")

        return await self._call(ask)

    async def list_records(
        self, collection: str, cursor: str | None = None, limit: int = 1000
    ) -> Page:
        if collection != USERS:
            return Page([], None, _now_revision())
        start = _now_revision()
        cookie = base64.b64decode(cursor) if cursor else None

        def page(reader: FastReader | SlowReader) -> Page:
            flt = f"({self.mapping['login_id']}=*)"
            entries, nxt = reader.page(flt, self._read_attrs(), max(1, limit), cookie)
            records = [r for _, attrs in entries if (r := self._record(attrs)) is not None]
            if cookie is None:
                self._pending = {}
            self._pending.update({r.key: r.revision for r in records})
            if nxt is None:
                self._known = dict(self._pending)
            return Page(records, base64.b64encode(nxt).decode() if nxt else None, start)

        return await self._read(page)

    async def changes(self, since: int, limit: int = 10000) -> ChangeFeed:
        if self._known is None:
            # Deletions are only found against what was seen: start from a full read.
            raise FeedTooOldError(f"element {self.name}: no full read yet in this process")
        stamp = _stamp(since).strftime("%Y%m%d%H%M%SZ")

        def read(reader: FastReader | SlowReader) -> ChangeFeed:
            assert self._known is not None
            login = self.mapping["login_id"]
            flt = f"(&({login}=*)(modifyTimestamp>={stamp}))"
            changed = [attrs for _, attrs in reader.every(flt, self._read_attrs())]
            present = self._present_keys(reader)
            out: list[Change] = []
            top = since
            for r in map(self._record, changed):
                if r is None or r.revision <= since:
                    continue
                top = max(top, r.revision)
                out.append(Change(r.revision, USERS, r.key, "put", r.fields, r.revision))
            for key in sorted(set(self._known) - present):
                out.append(Change(top, USERS, key, "delete", None, self._known[key]))
            self._known = {k: v for k, v in self._known.items() if k in present}
            self._known.update({c.key: c.revision for c in out if c.op == "put"})
            return ChangeFeed(out, top)

        return await self._read(read)

    def _present_keys(self, reader: FastReader | SlowReader) -> set[str]:
        """Every user name in the OU (names only: cheap next to a full read)."""
        login = self.mapping["login_id"]
        keys: set[str] = set()
        for _, attrs in reader.every(f"({login}=*)", [login]):
            values = {k.lower(): v for k, v in attrs.items()}.get(login.lower())
            if values:
                keys.add(text_of(values[0]))
        return keys

    async def write(self, op: WriteOp) -> WriteResult:
        return await self._call(lambda conn: self._write(conn, op))

    async def write_batch(self, ops: Sequence[WriteOp]) -> list[WriteResult]:
        def run(conn: ldap3.Connection) -> list[WriteResult]:
            results: list[WriteResult] = []
            for op in ops:
                try:
                    results.append(self._write(conn, op))
                except (OfflineError, LockedError, TransportError, UnauthorizedError):
                    raise
                except ElementError as e:
                    results.append(WriteResult(False, error=e))
            return results

        return await self._call(run)

    def _write(self, conn: ldap3.Connection, op: WriteOp) -> WriteResult:
        if op.collection != USERS:
            raise RefusedError(
                f"element {self.name}: a directory holds users only, not {op.collection}",
                [Refusal(op.collection, None, "not carried by a directory element")],
            )
        dn = self._dn(op.key)
        owned = f"({MARKER_ATTRIBUTE}={escape_filter_chars(MARKER)})"
        if op.claim and op.op == "put" and op.if_revision is not None:
            return self._claim(conn, dn, op)
        if op.if_revision is not None:
            low, high = _csn_bounds(op.if_revision)
            flt = f"(&(entryCSN>={low})(entryCSN<={high}){owned})"
        else:
            flt = owned
        controls = [_assertion(flt)]
        if op.op == "delete":
            if not conn.delete(dn, controls=controls):
                raise self._write_error(conn, dn, op)
            if self._known is not None:
                self._known.pop(op.key, None)
            return WriteResult(True)
        values = self._entry(op.key, op.fields or {})
        if op.if_revision is None:
            attrs = {a: v for a, v in values.items() if v}
            attrs[MARKER_ATTRIBUTE] = [MARKER]
            if self.rdn not in attrs:
                attrs[self.rdn] = [op.key]
            if "sn" not in attrs:  # person's required attributes
                attrs["sn"] = [op.key]
            if "cn" not in attrs:
                first = (op.fields or {}).get("first_name") or ""
                last = (op.fields or {}).get("last_name") or op.key
                attrs["cn"] = [f"{first} {last}".strip()]
            if not conn.add(dn, self.object_classes, attrs):
                if conn.result.get("result") == 68:
                    raise ConflictError(
                        f"element {self.name}: {dn} already exists"
                        + ("" if self._owned(conn, dn) else " and is not managed by provgit"),
                        collection=USERS,
                        key=op.key,
                    )
                raise self._write_error(conn, dn, op)
        else:
            changes = {a: [(ldap3.MODIFY_REPLACE, v)] for a, v in values.items()}
            if not conn.modify(dn, changes, controls=controls):
                raise self._write_error(conn, dn, op)
        return self._written(conn, dn, op)

    def _claim(self, conn: ldap3.Connection, dn: str, op: WriteOp) -> WriteResult:
        """Take ownership of an entry provgit did not create (`plan --claim`):
        the entry exactly as planned (its entryCSN, no marker yet) gets the
        marker (beside the admin's description) and the planned values in one modify;
        a change in the directory since the plan read it is a conflict, nothing written."""
        low, high = _csn_bounds(op.if_revision or 0)
        not_owned = f"(!({MARKER_ATTRIBUTE}={escape_filter_chars(MARKER)}))"
        flt = f"(&(entryCSN>={low})(entryCSN<={high}){not_owned})"
        values = self._entry(op.key, op.fields or {})
        changes: dict[str, list[tuple[Any, list[str]]]] = {
            a: [(ldap3.MODIFY_REPLACE, v)] for a, v in values.items()
        }
        changes.setdefault(MARKER_ATTRIBUTE, []).append((ldap3.MODIFY_ADD, [MARKER]))
        if not conn.modify(dn, changes, controls=[_assertion(flt)]):
            if conn.result.get("result") == 122:
                raise ConflictError(
                    f"element {self.name}: {dn} was changed in the directory (or claimed) "
                    "since the plan read it; nothing written: plan --claim again",
                    collection=USERS,
                    key=op.key,
                )
            raise self._write_error(conn, dn, op)
        return self._written(conn, dn, op)

    def _written(self, conn: ldap3.Connection, dn: str, op: WriteOp) -> WriteResult:
        """The result of a write that landed: the entry's new entryCSN."""
        entries = conn.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["entryCSN"])
        csn = (
            lowered(conn.response[0].get("raw_attributes") or {}).get("entrycsn")
            if entries
            else None
        )
        revision = csn_revision(csn[0]) if csn else None
        if revision is not None and self._known is not None:
            self._known[op.key] = revision
        return WriteResult(True, revision)

    def _owned(self, conn: ldap3.Connection, dn: str) -> bool:
        flt = f"({MARKER_ATTRIBUTE}={escape_filter_chars(MARKER)})"
        return bool(conn.search(dn, flt, ldap3.BASE, attributes=["1.1"]) and conn.response)

    def _write_error(self, conn: ldap3.Connection, dn: str, op: WriteOp) -> ElementError:
        code = conn.result.get("result")
        if code == 122:  # assertionFailed
            if not self._owned(conn, dn):
                return ConflictError(
                    f"element {self.name}: {dn} is not managed by provgit (no "
                    f"{MARKER_ATTRIBUTE}: {MARKER}); provgit does not change it "
                    "(`provgit plan --claim` plans taking ownership of it)",
                    collection=USERS,
                    key=op.key,
                    unowned=True,
                )
            return ConflictError(
                f"element {self.name}: {dn} was changed by another user in the directory "
                "since it was read; refresh",
                collection=USERS,
                key=op.key,
            )
        if code == 32:
            return NotFoundError(
                f"element {self.name}: {dn} does not exist", collection=USERS, key=op.key
            )
        if code in (17, 18, 19, 21, 64, 65, 67, 69):
            reason = str(conn.result.get("message") or conn.result.get("description"))
            return RefusedError(
                f"element {self.name}: the directory refused {dn}: {reason}",
                [Refusal(FORM, None, reason)],
            )
        return error_of(self.name, conn.result)

    async def close(self) -> None:
        def close() -> None:
            with self._lock:
                self._reader.close()
                if self._conn is not None:
                    self._conn.unbind()
                    self._conn = None

        await asyncio.to_thread(close)


# How far the directory's clock may run behind provgit's: a read's start is taken
# this much earlier, so a refresh re-reads (and drops as unchanged) the entries
# of that window rather than missing a change stamped by a slower clock.
CLOCK_SKEW = 5.0


def _now_revision() -> int:
    return int((time.time() - CLOCK_SKEW) * 1_000_000) * 1000
