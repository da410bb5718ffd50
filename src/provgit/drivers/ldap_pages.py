"""What both `ldap` read paths (python-ldap, ldap3) share: walking a paged
one-level search to its end."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import chain

from provgit.drivers.base import MAX_ANSWER_BYTES as MAX_ANSWER_BYTES

Entry = tuple[str, dict[str, list[bytes]]]


class SyncRefreshRequired(Exception):
    """The server cannot continue a content synchronisation from this cookie
    (e-syncRefreshRequired, or a cookie it refuses): read everything again."""


class PagedReader:
    """A reader that answers one page at a time (`page`), with `every` on top."""

    def page(
        self, flt: str, attrs: Sequence[str], size: int, cookie: bytes | None
    ) -> tuple[list[Entry], bytes | None]:
        raise NotImplementedError

    def every(self, flt: str, attrs: Sequence[str], size: int = 1000) -> Iterator[Entry]:
        """Every entry a one-level search finds, page by page."""
        cookie: bytes | None = None
        while True:
            entries, cookie = self.page(flt, attrs, size, cookie)
            yield from entries
            if not cookie:
                return


# What one entry of a page's answer may take on average (its DN and the values
# asked for, their attributes' names not counted; a user's come to a few hundred
# bytes): a page of `size` entries is cut past (size + 1) times this, and no
# answer past MAX_ANSWER_BYTES (as the http driver's answers), however paged.
ENTRY_BYTES = 64 * 1024
# What the answers to one of the driver's own calls may take (a base entry's
# existence, a written entry's entryCSN and entryUUID, the DNs of a login).
CALL_BYTES = 16 * ENTRY_BYTES


class AnswerTooLarge(Exception):
    """A search's answer passed its budget: the read stops there (`Budget`)."""


class Budget:
    """Counts one search's answer as it arrives, entry by entry. A server that
    ignores the paged results control (or floods) sends one answer of any size
    within the request deadline; the reader stops it at `size` entries (a page
    asked for, RFC 2696: never more) or at its bytes, rather than hold it all."""

    def __init__(self, name: str, entries: int | None, size_bytes: int) -> None:
        self.name = name
        self.max_entries = entries
        self.max_bytes = min(size_bytes, MAX_ANSWER_BYTES)
        self.entries = 0
        self.bytes = 0

    @classmethod
    def page(cls, name: str, size: int) -> Budget:
        """A page of `size` entries."""
        return cls(name, size, (size + 1) * ENTRY_BYTES)

    @classmethod
    def call(cls, name: str) -> Budget:
        """The answers to one call of the driver's own (an entry's revision, a
        login's DN, the base's existence): a few entries of a few names."""
        return cls(name, None, CALL_BYTES)

    def take(self, dn: str, attrs: dict[str, list[bytes]]) -> None:
        """One entry more; AnswerTooLarge past the budget."""
        self.count(1)
        self.over(_size(dn, attrs))

    def count(self, entries: int) -> None:
        """`entries` entries more; AnswerTooLarge past the budget."""
        self.entries += entries
        if self.max_entries is not None and self.entries > self.max_entries:
            raise AnswerTooLarge(
                f"element {self.name}: the directory answered more than {self.max_entries} "
                "entries to a page of that size (it ignores the paged results control): "
                "not read further"
            )

    def over(self, more: int) -> None:
        """`more` bytes more; AnswerTooLarge past the budget."""
        self.bytes += more
        if self.bytes > self.max_bytes:
            cap = self.max_bytes
            size = f"{cap // 2**20} MiB" if cap >= 2**20 else f"{cap // 1024} KiB"
            raise AnswerTooLarge(
                f"element {self.name}: the directory answered more than {size} "
                "to one search: not read further"
            )


def _size(dn: str, attrs: dict[str, list[bytes]]) -> int:
    return len(dn) + sum(map(len, chain.from_iterable(attrs.values())))


def entry_bytes(entries: Sequence[Entry]) -> int:
    """What a page's entries took as received, as `Budget` counts them (their
    DNs and values): what a listing's byte budget counts (observe/received.py)."""
    return sum(_size(dn, attrs) for dn, attrs in entries)
