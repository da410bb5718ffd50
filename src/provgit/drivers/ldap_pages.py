"""What both `ldap` read paths (python-ldap, ldap3) share: walking a paged
one-level search to its end."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

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
