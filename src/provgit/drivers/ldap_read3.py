"""The `ldap` driver's read path when python-ldap is not installed: the same
paged one-level searches through ldap3 (pure Python, about 5x slower on a full
read of 100,000 entries: benchmarks/README.md, "Directory full read").

python-ldap needs libldap's and libsasl2's headers to install; provgit must not
ask that of every user, so it is the `fast-ldap` extra and this reader stands in
when it is absent. Same interface and answers as `ldap_read.Reader`: entries as
(dn, {attribute: [bytes]}) and the next page's cookie.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NoReturn

import ldap3
from ldap3.core import exceptions as lx

from provgit.drivers.ldap_pages import AnswerTooLarge, Budget, Entry, PagedReader
from provgit.wire.protocol import ElementError, TransportError

PAGED = "1.2.840.113556.1.4.319"


class Reader(PagedReader):
    """Reads through the driver's own ldap3 connection (`connect` opens or
    reuses it, binding and checking TLS; calls run under the driver's lock)."""

    def __init__(
        self,
        name: str,
        base: str,
        timeout: int,
        connect: Callable[[], ldap3.Connection],
        error: Callable[[str, Mapping[str, Any]], ElementError],
        drop: Callable[[], None],
    ) -> None:
        self.name = name
        self.base = base
        self.timeout = timeout
        self._connect = connect
        self._error = error
        self._drop = drop

    def page(
        self, flt: str, attrs: Sequence[str], size: int, cookie: bytes | None
    ) -> tuple[list[Entry], bytes | None]:
        """One page of a one-level search under the base, and the next page's cookie."""
        conn = self._connect()
        budget = Budget.page(self.name, size)
        # ldap3 holds a whole answer before it decodes it: its bytes and
        # messages are counted as they arrive, on the socket it reads them from.
        counted = conn.socket = Counted(conn.socket, budget)
        try:
            ok = conn.search(
                self.base,
                flt,
                ldap3.LEVEL,
                attributes=list(attrs),
                time_limit=self.timeout,
                paged_size=size,
                paged_cookie=cookie,
            )
        except lx.LDAPException as e:
            self._drop()  # the next call reconnects
            if counted.too_large is not None:
                raise TransportError(str(counted.too_large)) from None
            raise TransportError(f"element {self.name}: {e}") from e
        finally:
            if conn.socket is counted:
                conn.socket = counted.inner
        if not ok:
            if conn.result.get("result") == 32:  # no such object: the OU is not there
                return [], None
            if conn.result.get("result") != 0:
                raise self._error(self.name, conn.result)
        entries = [
            (str(e["dn"]), {str(k): list(v) for k, v in (e.get("raw_attributes") or {}).items()})
            for e in conn.response or []
            if e.get("type") == "searchResEntry"
        ]
        controls = (conn.result.get("controls") or {}).get(PAGED) or {}
        nxt = (controls.get("value") or {}).get("cookie") or None
        return entries, nxt

    def can_sync(self) -> bool:
        """ldap3 has no content synchronisation: refreshes list the OU's names."""
        return False

    def sync(self, flt: str, attrs: Sequence[str], cookie: bytes | None) -> NoReturn:
        raise NotImplementedError("content synchronisation needs python-ldap (fast-ldap)")

    def cut(self) -> None:
        """The connection is the driver's: it cuts it."""

    def close(self) -> None:
        """The connection is the driver's: it closes it."""


class Counted:
    """A socket whose received bytes, and the LDAP messages they begin, count
    against a budget as they arrive (ldap3 decodes them only after): past it,
    a read fails (ldap3 drops the connection) and `too_large` says why. One
    message is the search's end, not an entry."""

    def __init__(self, inner: Any, budget: Budget) -> None:
        self.inner = inner
        self.budget = budget
        self.too_large: AnswerTooLarge | None = None
        self._head = b""  # the start of a message whose length is not read yet
        self._left = 0  # bytes of the current message still to come
        self._spare = 1  # the search's result message

    def recv(self, size: int) -> bytes:
        data: bytes = self.inner.recv(size)
        try:
            self.budget.over(len(data))
            new = self._messages(data)
            spare = min(new, self._spare)
            self._spare -= spare
            self.budget.count(new - spare)
        except AnswerTooLarge as e:
            self.too_large = e
            raise OSError(str(e)) from None
        return data

    def _messages(self, data: bytes) -> int:
        """How many LDAP messages begin in `data` (BER: a tag, then the length)."""
        count, i = 0, 0
        while i < len(data):
            if self._left:
                step = min(self._left, len(data) - i)
                self._left -= step
                i += step
                continue
            self._head += data[i : i + 1]  # a header is a few bytes: one at a time
            i += 1
            whole = _message_size(self._head)
            if whole is not None:
                count += 1
                self._left = whole - len(self._head)
                self._head = b""
        return count

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@contextlib.contextmanager
def counting(conn: ldap3.Connection, budget: Budget) -> Iterator[Counted]:
    """`conn`'s answers counted against `budget` while in the block (ldap3
    holds a message whole before decoding it: one entry of any size would
    be held, bounded only by the request deadline)."""
    counted = conn.socket = Counted(conn.socket, budget)
    try:
        yield counted
    finally:
        if conn.socket is counted:
            conn.socket = counted.inner


def _message_size(head: bytes) -> int | None:
    """The whole size of the message `head` begins (None: more of it needed)."""
    if len(head) < 2:
        return None
    if head[1] < 0x80:  # short form
        return 2 + head[1]
    n = head[1] & 0x7F
    if len(head) < 2 + n:
        return None
    return 2 + n + int.from_bytes(head[2 : 2 + n], "big")


def counted_bind(conn: ldap3.Connection, budget: Budget) -> bool:
    """`conn.bind()`, its answer counted against `budget` as it arrives
    (TransportError past it), as a call's answer is (`counting`): ldap3 holds
    a message whole, and a bind answered with an endless one was held to the
    request deadline."""
    with counting(conn, budget) as counted:
        try:
            bound = conn.bind()
        except lx.LDAPException:
            if counted.too_large is None:
                raise
            bound = False
    if counted.too_large is not None:
        raise TransportError(str(counted.too_large))
    return bool(bound)
