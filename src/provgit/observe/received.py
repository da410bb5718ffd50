"""The bytes one read of an element may make provgit hold, counted as received.

A listing is held whole (an observation keeps every record), so what bounds
provgit's memory is the bytes an element sends, not its record count: under
MAX_LISTED records an element sending made-up records of megabytes each would
take gigabytes (the process OOM-killed, and then no status written at all).
Each page's answer is counted as the driver received it (`Page.received`:
the http driver's body, the ldap driver's entries); past a bound the read
stops, and the element is not read, so not in sync, with the bound named.

The bounds, from data: a listing of the generated network (benchmarks/
generate.py, 30,000 users, wire format as the simulator answers it) weighs
477 bytes a MiCollab user, 466 a call server's; the 300,000-user target puts
300,000 users on one MiCollab: ~143 MB for its users, ~144 MB for the whole
element. A listing may take 512 MiB (3.7x that: users of ~1.8 KB each, or the
MAX_LISTED records of today's size), a full read of one element 1 GiB in all
(7x). Held in memory a real record takes ~3x its bytes (~1.5 KB a user): a
hostile element is stopped short of ~3.5 GB held, where before only the
record count (one million records of up to MAX_ANSWER_BYTES a page) bounded it.
"""

from __future__ import annotations

from provgit.wire.protocol import ChangeFeed, Page, TransportError

MAX_LISTING_BYTES = 512 * 2**20
MAX_READ_BYTES = 1024 * 2**20
# A change feed read from one revision on (up to MAX_FEED_PAGES pages) holds
# the last change of each record it names, so it is bounded as a full read is:
# its pages (10,000 changes each) in all may take what a full read may.
MAX_FEED_BYTES = 1024 * 2**20


def _mib(size: int) -> str:
    return f"{size / 2**20:g} MiB"


class Received:
    """The bytes one read of element `element` received: per collection
    listed and in all. Read at each page, so a bound set on this module
    (tests) holds for reads started after."""

    def __init__(self, element: str) -> None:
        self.element = element
        self.total = 0
        self.listings: dict[str, int] = {}
        self.feed = 0  # of its change feed, read since one revision

    def take(self, collection: str, page: Page) -> None:
        """One page more of `collection`'s listing; TransportError past a bound."""
        size = page.received
        if size is None:
            return
        listed = self.listings[collection] = self.listings.get(collection, 0) + size
        self.total += size
        if listed > MAX_LISTING_BYTES:
            raise TransportError(
                f"element {self.element} sent more than {_mib(MAX_LISTING_BYTES)} listing "
                f"its {collection} (the bound of one listing): not read further"
            )
        if self.total > MAX_READ_BYTES:
            raise TransportError(
                f"element {self.element} sent more than {_mib(MAX_READ_BYTES)} in one full "
                f"read (the bound of one element's), at its {collection}: not read further"
            )

    def take_feed(self, feed: ChangeFeed) -> None:
        """One page more of the element's change feed; TransportError past its bound."""
        if feed.received is None:
            return
        self.feed += feed.received
        if self.feed > MAX_FEED_BYTES:
            raise TransportError(
                f"element {self.element} sent more than {_mib(MAX_FEED_BYTES)} in its "
                "change feed (the bound of one feed's read): not read further"
            )
