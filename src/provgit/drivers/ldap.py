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
Full reads use the simple paged results control. Refreshes use the content
synchronisation control (RFC 4533) where the server offers it, O(changes),
else search `modifyTimestamp>=` the last revision and list the OU's user
names to find deletions (provgit.drivers.ldap_refresh). What was seen is kept
for the process, per element and settings (the watcher makes new drivers
every run); the first refresh in a process answers "feed too old", so it
starts with one full read.

Settings (DriverConfig.settings):
  url        ldap://host[:port] or ldaps://host[:port]
  token      the bind password, already resolved from its secret reference
  timeout    seconds for connecting and for each operation
  request_deadline
             seconds for the whole of one call (a page, a refresh, a batch of
             writes), its answers read to the end (default 120, as the http
             driver's): a directory that sends a byte inside each read timeout,
             or never answers a search, would otherwise hold the run for ever.
             Past it the call fails with an error naming this setting, its
             connections are cut, and this driver refuses further calls (the
             run reports the element not in sync; the next run connects anew)
  directory  base_dn, bind_dn, preset, attributes (field -> attribute or None),
             object_classes, start_tls (see provgit.model.directory)
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import math
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import ldap3
from ldap3.core import exceptions as lx

from provgit.drivers.base import DriverConfig
from provgit.drivers.ldap_csn import csn_bounds as _csn_bounds
from provgit.drivers.ldap_csn import csn_revision
from provgit.drivers.ldap_deadline import in_thread
from provgit.drivers.ldap_entries import Codec
from provgit.drivers.ldap_errors import error_of, lowered
from provgit.drivers.ldap_names import child_dn, filter_value, is_child
from provgit.drivers.ldap_pages import Budget, SyncRefreshRequired, entry_bytes
from provgit.drivers.ldap_read3 import Reader as SlowReader
from provgit.drivers.ldap_read3 import counted_bind, counting
from provgit.drivers.ldap_refresh import Seen
from provgit.drivers.ldap_write import (
    FORM,
    MARKER,
    MARKER_ATTRIBUTE,
    USERS,
    assertion,
    lookup,
    write_error,
)
from provgit.drivers.ldap_write import (
    owned as is_owned,
)

try:  # python-ldap: the `fast-ldap` extra (it builds against libldap's headers)
    from provgit.drivers.ldap_read import Reader as FastReader
except ImportError:  # pragma: no cover - depends on the install
    FastReader = None  # type: ignore[assignment,misc]
from provgit.model.directory import PRESET_CLASSES, PRESET_RDN, carried
from provgit.model.network import DEFAULT_REQUEST_DEADLINE
from provgit.wire.codec import element_text
from provgit.wire.protocol import (
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
    TransportError,
    UnauthorizedError,
    WriteOp,
    WriteResult,
)

T = TypeVar("T")


def mapping_of(directory: Mapping[str, Any]) -> dict[str, str]:
    """field -> attribute for what this element carries (preset, then overrides)."""
    return carried(str(directory.get("preset") or "active_directory"), directory.get("attributes"))


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
        self.deadline = float(s.get("request_deadline") or DEFAULT_REQUEST_DEADLINE)
        # Why calls are refused: a call ran past the deadline (its thread may
        # still be inside libldap or ldap3, holding the connection).
        self._expired: str | None = None
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
        self.codec = Codec(self.mapping)
        # The entries (managed or not) last seen: revisions (a refresh reports the
        # keys gone since as deletes), DNs (an entry provgit did not create keeps
        # the DN it has, whatever its RDN), entryUUIDs, the synchronisation cookie.
        # Kept for the process (the watcher makes new drivers every run), per
        # element and directory settings, with the lock that guards it.
        self.seen, self._lock = _seen(self)

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
        # Known before it opens: a bind that trickles past the deadline is cut too.
        self._conn = conn
        try:
            conn.open()
            if self._expired is not None:  # cut before its socket was there to cut
                raise TransportError(self._expired)
            if self.start_tls and not conn.start_tls():
                raise TransportError(f"element {self.name}: StartTLS failed: {conn.result}")
            if not counted_bind(conn, Budget.call(self.name)):
                code = conn.result.get("result")
                if code == 49:
                    raise UnauthorizedError(
                        f"element {self.name}: the directory refused the bind DN and "
                        "password (token refused): check connection.token and directory.bind_dn"
                    )
                raise error_of(self.name, conn.result)
        except BaseException as e:
            self._conn = None
            with contextlib.suppress(lx.LDAPException):
                conn.unbind()
            if isinstance(e, lx.LDAPException):
                raise TransportError(
                    f"element {self.name}: cannot reach {self.url}: {element_text(e)}"
                ) from e
            raise
        return conn

    async def _bounded(self, run: Callable[[], T]) -> T:
        if self._expired is not None:
            raise TransportError(self._expired)
        try:
            return await in_thread(run, self.deadline, f"ldap {self.name}")
        except TimeoutError:
            self._expired = (
                f"element {self.name}: the directory did not answer in full within "
                f"{self.deadline:g} s (connection.request_deadline)"
            )
            self._cut()
            raise TransportError(self._expired) from None

    def _cut(self) -> None:
        """Shut the connections' sockets (not under the lock: the late call
        holds it), so the thread still in a read gets an error and lets go."""
        conn = self._conn
        sock = getattr(conn, "socket", None) if conn is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._reader.cut()

    async def _call(self, fn: Callable[[ldap3.Connection], T], read: bool = False) -> T:
        def run() -> T:
            with self._lock:
                for again in (read, False):
                    if self._expired is not None:  # cut meanwhile: not asked again
                        raise TransportError(self._expired)
                    fresh = self._conn is None or self._conn.closed
                    conn = self._connect()
                    # Its answers (an entry, a DN or two) counted as they arrive:
                    # ldap3 holds a message whole, and one entry may be enormous.
                    budget = Budget.call(self.name)
                    try:
                        with counting(conn, budget) as counted:
                            return fn(conn)
                    except lx.LDAPException as e:
                        # A dropped connection is a transport problem; the next call
                        # reconnects. A read on a kept connection the server dropped
                        # (it restarted) is asked again at once; a write never is.
                        self._drop()
                        if counted.too_large is not None:
                            raise TransportError(str(counted.too_large)) from None
                        if not (again and not fresh):
                            raise TransportError(f"element {self.name}: {element_text(e)}") from e
                raise AssertionError("unreachable")

        return await self._bounded(run)

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(lx.LDAPException):
                conn.unbind()

    async def _read(self, fn: Callable[[FastReader | SlowReader], T]) -> T:
        def run() -> T:
            with self._lock:
                if self._expired is not None:
                    raise TransportError(self._expired)
                return fn(self._reader)

        return await self._bounded(run)

    # ---- entries <-> records ------------------------------------------------------

    def _dn(self, key: str) -> str:
        return child_dn(self.rdn, key, self.base)

    def _target(self, conn: ldap3.Connection, op: WriteOp) -> str:
        """The DN `op` writes: a new entry's is `rdn=<login>` under the OU; an
        existing entry keeps its own (as read, else found by its login), so an
        imported `uid=jdoe` or `cn=John Doe` is changed where it is. Whatever
        the login holds, the DN is checked to be one level under the OU."""
        if op.op == "put" and op.if_revision is None:
            dn = self._dn(op.key)
        else:
            dn = (
                self.seen.dns.get(op.key)
                or lookup(conn, self.name, self.base, self.mapping["login_id"], op.key)
                or self._dn(op.key)
            )
        if not is_child(dn, self.base):
            raise RefusedError(
                f"element {self.name}: {dn!r} is not an entry of {self.base!r}; "
                "provgit writes only directly under its OU",
                [Refusal(FORM, "login_id", "names an entry outside the OU")],
            )
        return dn

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

        return await self._call(ask, read=True)

    async def list_records(
        self, collection: str, cursor: str | None = None, limit: int = 1000
    ) -> Page:
        if collection != USERS:
            return Page([], None, _now_revision())
        start = _now_revision()
        cookie = base64.b64decode(cursor) if cursor else None

        def page(reader: FastReader | SlowReader) -> Page:
            flt = f"({self.mapping['login_id']}=*)"
            entries, nxt = reader.page(flt, self.codec.read_attrs(), max(1, limit), cookie)
            records = self.seen.page(entries, cookie is None, nxt is None)
            cursor = base64.b64encode(nxt).decode() if nxt else None
            return Page(records, cursor, start, entry_bytes(entries))

        return await self._read(page)

    async def changes(self, since: int, limit: int = 10000) -> ChangeFeed:
        def read(reader: FastReader | SlowReader) -> ChangeFeed:
            try:
                return self.seen.refresh(reader, self.mapping["login_id"], since)
            except SyncRefreshRequired as e:
                self.seen.known = None
                raise FeedTooOldError(
                    f"element {self.name}: the directory cannot continue the content "
                    f"synchronisation from its cookie ({element_text(e)}): reading it all again"
                ) from None

        return await self._read(read)

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
        try:
            return self._write_at(conn, op, self._target(conn, op))
        except NotFoundError:
            if self.seen.dns.pop(op.key, None) is None:
                raise
            # The DN last read is gone (renamed, or another server at this
            # address): find the entry by its login, once.
            return self._write_at(conn, op, self._target(conn, op))

    def _write_at(self, conn: ldap3.Connection, op: WriteOp, dn: str) -> WriteResult:
        owned = f"({MARKER_ATTRIBUTE}={filter_value(MARKER)})"
        if op.claim and op.op == "put" and op.if_revision is not None:
            return self._claim(conn, dn, op)
        if op.if_revision is not None:
            low, high = _csn_bounds(op.if_revision)
            flt = f"(&(entryCSN>={low})(entryCSN<={high}){owned})"
        else:
            flt = owned
        controls = [assertion(flt)]
        if op.op == "delete":
            if not conn.delete(dn, controls=controls):
                raise write_error(conn, self.name, dn, op.key)
            self.seen.deleted(op.key)
            return WriteResult(True)
        values = self.codec.entry(op.key, op.fields or {})
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
                        + ("" if is_owned(conn, dn) else " and is not managed by provgit"),
                        collection=USERS,
                        key=op.key,
                    )
                raise write_error(conn, self.name, dn, op.key)
        else:
            changes = {a: [(ldap3.MODIFY_REPLACE, v)] for a, v in values.items()}
            if not conn.modify(dn, changes, controls=controls):
                raise write_error(conn, self.name, dn, op.key)
        return self._written(conn, dn, op)

    def _claim(self, conn: ldap3.Connection, dn: str, op: WriteOp) -> WriteResult:
        """Take ownership of an entry provgit did not create (`plan --claim`):
        the entry exactly as planned (its entryCSN, no marker yet) gets the
        marker (beside the admin's description) and the planned values in one modify;
        a change in the directory since the plan read it is a conflict, nothing written."""
        low, high = _csn_bounds(op.if_revision or 0)
        not_owned = f"(!({MARKER_ATTRIBUTE}={filter_value(MARKER)}))"
        flt = f"(&(entryCSN>={low})(entryCSN<={high}){not_owned})"
        values = self.codec.entry(op.key, op.fields or {})
        changes: dict[str, list[tuple[Any, list[str]]]] = {
            a: [(ldap3.MODIFY_REPLACE, v)] for a, v in values.items()
        }
        changes.setdefault(MARKER_ATTRIBUTE, []).append((ldap3.MODIFY_ADD, [MARKER]))
        if not conn.modify(dn, changes, controls=[assertion(flt)]):
            if conn.result.get("result") == 122:
                raise ConflictError(
                    f"element {self.name}: {dn} was changed in the directory (or claimed) "
                    "since the plan read it; nothing written: plan --claim again",
                    collection=USERS,
                    key=op.key,
                )
            raise write_error(conn, self.name, dn, op.key)
        return self._written(conn, dn, op)

    def _written(self, conn: ldap3.Connection, dn: str, op: WriteOp) -> WriteResult:
        """The result of a write that landed: the entry's new entryCSN (and its
        entryUUID, so a refresh can name its deletion)."""
        attrs = ["entryCSN", "entryUUID"]
        found = conn.search(dn, "(objectClass=*)", ldap3.BASE, attributes=attrs)
        got = lowered(conn.response[0].get("raw_attributes") or {}) if found else {}
        csn, uuid = got.get("entrycsn"), got.get("entryuuid")
        revision = csn_revision(csn[0]) if csn else None
        self.seen.written(op.key, dn, revision, uuid[0] if uuid else None)
        return WriteResult(True, revision)

    async def close(self) -> None:
        if self._expired is not None:
            self._cut()  # the late call holds the lock; its thread ends on the cut
            return

        def close() -> None:
            with self._lock:
                self._reader.close()
                if self._conn is not None:
                    self._conn.unbind()
                    self._conn = None

        await asyncio.to_thread(close)


_SEEN: dict[tuple[str, ...], tuple[Seen, threading.Lock]] = {}
_SEEN_LOCK = threading.Lock()


def _seen(d: LdapDriver) -> tuple[Seen, threading.Lock]:
    key = (d.name, d.url, d.base, d.bind_dn or "", d.rdn, repr(sorted(d.mapping.items())))
    with _SEEN_LOCK:
        found = _SEEN.get(key)
        if found is None:
            found = _SEEN[key] = (Seen(d.name, d.codec), threading.Lock())
        return found


# How far the directory's clock may run behind provgit's: a read's start is taken
# this much earlier, so a refresh re-reads (and drops as unchanged) the entries
# of that window rather than missing a change stamped by a slower clock.
CLOCK_SKEW = 5.0


def _now_revision() -> int:
    return int((time.time() - CLOCK_SKEW) * 1_000_000) * 1000
