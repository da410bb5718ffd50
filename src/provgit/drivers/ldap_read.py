"""The `ldap` driver's read path: paged searches through python-ldap (libldap, C).

ldap3 decodes BER in pure Python: a full read of 100,000 entries took about
ten times as long as the same search with OpenLDAP's own client (see
benchmarks/README.md, "Directory full read"). python-ldap hands the decoding
to libldap, so reads (full reads, refreshes, the OU's user names) go through
it; writes stay on ldap3, whose assertion control the conditional writes use.

One connection, opened on first use and kept; calls come from the driver's
worker thread under its lock. TLS as the ldap3 side: the chain and host name
are always checked (against `ca_file` when given).
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import ldap
from ldap.controls import SimplePagedResultsControl

from provgit.drivers.ldap_incoming import cap_incoming
from provgit.drivers.ldap_pages import (
    MAX_ANSWER_BYTES,
    AnswerTooLarge,
    Budget,
    Entry,
    PagedReader,
    SyncRefreshRequired,
)
from provgit.drivers.ldap_sync import SyncResult, offered, refresh
from provgit.wire.codec import element_text
from provgit.wire.protocol import (
    ElementError,
    LockedError,
    OfflineError,
    TransportError,
    UnauthorizedError,
)

PAGED = SimplePagedResultsControl.controlType
T = TypeVar("T")


class Reader(PagedReader):
    def __init__(
        self,
        name: str,
        url: str,
        base: str,
        bind_dn: str | None,
        password: str | None,
        timeout: int,
        start_tls: bool = False,
        ca_file: str | None = None,
    ) -> None:
        self.name = name
        self.url = url
        self.base = base
        self.bind_dn = bind_dn
        self._password = password
        self.timeout = timeout
        self.start_tls = start_tls
        self.ca_file = ca_file
        self._conn: Any = None
        # The connection's socket (a duplicate descriptor): shut from another
        # thread when a call runs past the deadline (`cut`).
        self._socket: socket.socket | None = None
        self._was_cut = False
        self._sync: bool | None = None  # the server offers RFC 4533 (asked once per connection)

    def __repr__(self) -> str:  # never show the password
        return f"Reader({self.name!r}, {self.url!r})"

    def _connect(self) -> Any:
        if self._conn is not None:
            return self._conn
        conn = ldap.initialize(self.url)
        conn.set_option(ldap.OPT_PROTOCOL_VERSION, 3)
        conn.set_option(ldap.OPT_REFERRALS, 0)
        conn.set_option(ldap.OPT_NETWORK_TIMEOUT, self.timeout)
        conn.set_option(ldap.OPT_TIMEOUT, self.timeout)
        conn.set_option(ldap.OPT_X_TLS_REQUIRE_CERT, ldap.OPT_X_TLS_DEMAND)
        if self.ca_file:
            conn.set_option(ldap.OPT_X_TLS_CACERTFILE, self.ca_file)
        conn.set_option(ldap.OPT_X_TLS_NEWCTX, 0)  # applies the TLS options above
        # Each message (the bind's answer, the root DSE's, an entry) refused past
        # an answer's bound as its header comes, not held to the deadline.
        cap_incoming(conn, MAX_ANSWER_BYTES)
        try:
            if self.start_tls:
                conn.start_tls_s()
            # Sent, then awaited: the socket is known (to `cut`) while the answer
            # comes, so a bind answered a byte at a time ends at the deadline.
            msgid = conn.simple_bind(self.bind_dn or "", self._password or "")
            self._socket = socket.socket(fileno=os.dup(conn.get_option(ldap.OPT_DESC)))
            if self._was_cut:  # cut before the socket was known
                raise ldap.SERVER_DOWN({"desc": "cut past connection.request_deadline"})
            conn.result(msgid, all=1, timeout=self.timeout)
        except ldap.LDAPError as e:
            self.close()
            with contextlib.suppress(ldap.LDAPError):
                conn.unbind_s()
            raise self._error(e) from None
        self._conn = conn
        return conn

    def _run(self, fn: Callable[[Any], T], again: bool = True) -> T:
        """`fn` on the kept connection. One the server dropped (it restarted) is
        opened again once, with `again`: a read, asked again on a new connection."""
        fresh = self._conn is None
        conn = self._connect()
        try:
            return fn(conn)
        except ldap.SERVER_DOWN:
            self.close()
            if fresh or not again or self._was_cut:  # cut: past the deadline, not again
                raise
        return fn(self._connect())

    def page(
        self, flt: str, attrs: Sequence[str], size: int, cookie: bytes | None
    ) -> tuple[list[Entry], bytes | None]:
        """One page of a one-level search under the base, and the next page's cookie."""
        control = SimplePagedResultsControl(True, size=size, cookie=cookie or b"")

        def search(conn: Any) -> tuple[list[Entry], Any]:
            msgid = conn.search_ext(
                self.base,
                ldap.SCOPE_ONELEVEL,
                flt,
                list(attrs),
                serverctrls=[control],
                timeout=self.timeout,
            )
            return self._answer(conn, msgid, Budget.page(self.name, size))

        try:
            # A paging cookie belongs to its connection: only a first page is asked again.
            entries, controls = self._run(search, again=cookie is None)
        except ldap.NO_SUCH_OBJECT:
            return [], None
        except ldap.LDAPError as e:
            self.close()  # the next call reconnects
            raise self._error(e) from None
        except AnswerTooLarge as e:
            self.close()  # the rest of the answer is not read: the connection goes
            raise TransportError(str(e)) from None
        nxt = next((c.cookie for c in controls if c.controlType == PAGED), None)
        return entries, nxt or None

    def _answer(self, conn: Any, msgid: int, budget: Budget) -> tuple[list[Entry], Any]:
        """A search's entries and its result's controls, read one message at a
        time as they arrive and counted against `budget`:
        the whole answer is never held before it is known to fit. Within
        `timeout` in all, as one libldap call would be."""
        end = time.monotonic() + self.timeout
        entries: list[Entry] = []
        while True:
            left = max(0.001, end - time.monotonic())
            kind, data, _, controls = conn.result3(msgid, all=0, timeout=left)
            for dn, attrs in data:
                if dn is None or not isinstance(attrs, dict):  # a continuation reference
                    budget.take("", {})
                    continue
                budget.take(dn, attrs)
                entries.append((dn, attrs))
            if kind == ldap.RES_SEARCH_RESULT:
                return entries, controls

    def can_sync(self) -> bool:
        """Whether refreshes can use the content synchronisation control here."""
        if self._sync is None:
            try:
                found = self._run(lambda conn: offered(conn, self.timeout))
            except ldap.LDAPError as e:
                self.close()
                raise self._error(e) from None
            self._sync = found
            return found
        return self._sync

    def sync(self, flt: str, attrs: Sequence[str], cookie: bytes | None) -> SyncResult:
        """A refreshOnly synchronisation of the entries one level under the base."""

        def ask(conn: Any) -> SyncResult:
            # No page size: as many changes as there are, up to MAX_ANSWER_BYTES.
            budget = Budget(self.name, None, MAX_ANSWER_BYTES)
            return refresh(conn, self.base, flt, attrs, cookie, self.timeout, budget)

        try:
            return self._run(ask)
        except ldap.NO_SUCH_OBJECT:  # the OU is not there: nothing is
            return SyncResult(None, complete_presence=True)
        except AnswerTooLarge as e:
            self.close()
            raise TransportError(str(e)) from None
        except (ldap.SERVER_DOWN, ldap.CONNECT_ERROR, ldap.TIMEOUT) as e:
            self.close()
            raise self._error(e) from None
        except ldap.LDAPError as e:
            if cookie is None:
                self.close()
                raise self._error(e) from None
            # A cookie the server will not take (malformed, another server's):
            # start over from a full read rather than stay stuck on it.
            raise SyncRefreshRequired(str(self._error(e))) from None

    def cut(self) -> None:
        """Shut the connection's socket under a call that ran past the deadline
        (from another thread: python-ldap holds the connection meanwhile)."""
        self._was_cut = True
        if (sock := self._socket) is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._sync = None
        sock, self._socket = self._socket, None
        if sock is not None:
            sock.close()  # the duplicate: the connection's own closes with it
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(ldap.LDAPError):  # a connection that already broke
                conn.unbind_s()

    def _error(self, e: ldap.LDAPError) -> ElementError:
        info = e.args[0] if e.args and isinstance(e.args[0], dict) else {}
        said = str(info.get("desc", type(e).__name__))
        if info.get("info"):
            said += f": {info['info']}"
        text = f"element {self.name}: {element_text(said)}"
        if isinstance(e, ldap.INVALID_CREDENTIALS):
            return UnauthorizedError(
                f"element {self.name}: the directory refused the bind DN and password "
                "(token refused): check connection.token and directory.bind_dn"
            )
        if isinstance(e, ldap.BUSY):
            return LockedError(text)
        if isinstance(e, ldap.UNAVAILABLE | ldap.UNWILLING_TO_PERFORM):
            return OfflineError(text)
        if info.get("errno") == errno.ERANGE:  # liblber's bound (`cap_incoming`)
            return TransportError(
                f"element {self.name}: the directory sent one message of more than "
                f"{MAX_ANSWER_BYTES // 2**20} MiB (an entry, or the answer to the bind or "
                "to the root DSE search): not read further"
            )
        if isinstance(e, ldap.SERVER_DOWN | ldap.CONNECT_ERROR | ldap.TIMEOUT):
            tls = self.start_tls or self.url.lower().startswith("ldaps:")
            # libldap says no more than "can't contact" when the certificate fails.
            why = " (or its TLS certificate did not verify against directory.ca_file)"
            return TransportError(
                f"element {self.name}: cannot reach {self.url}{why if tls else ''}: {text}"
            )
        return TransportError(text)
