"""Which pending updates are due for a retry, whatever clock stamped them.

A pending update's `next_retry` is the stamping replica's wall clock plus at
most `apply.retry_max_seconds` (apply/ledger.py). A replica whose wall clock
runs hours ahead stamps times hours ahead, and every other replica would see
the row as not due for hours (issue #19): the update waits though the element
may be back. A `next_retry` further than `retry_max_seconds` (and a few
seconds of ordinary clock difference) past this replica's now was stamped by
a clock ahead, or under a longer retry_max since lowered: it is due now, and
said once in the log (`retry_time_ahead`) until no row is ahead any more.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from provgit.watch.logs import Log

# Clocks kept by NTP differ by far less: a row this little ahead of
# retry_max_seconds waits its time as stamped.
CLOCK_SLACK_SECONDS = 5.0


class Pending(Protocol):
    @property
    def element(self) -> str: ...

    @property
    def key(self) -> str: ...

    @property
    def next_retry(self) -> float: ...


class RetryClock:
    """Due-ness of pending updates, and the once-only log of rows stamped ahead."""

    def __init__(self, log: Log) -> None:
        self.log = log
        self._said = False

    def due(
        self,
        rows: Iterable[Pending],
        now: float,
        retry_max_seconds: float,
        elements: Iterable[str] | None = None,
    ) -> bool:
        """Whether one of `rows` is due at `now` (this replica's wall clock).
        `elements`: a replica's writable elements (another replica's rows are
        its to retry); None: all."""
        ahead_of = now + retry_max_seconds + CLOCK_SLACK_SECONDS
        due = False
        ahead: Pending | None = None
        mine = None if elements is None else set(elements)
        for p in rows:
            if mine is not None and p.element not in mine:
                continue
            if p.next_retry > ahead_of:
                ahead = ahead or p
            due = due or p.next_retry <= now or p.next_retry > ahead_of
        if ahead is None:
            self._said = False
        elif not self._said:
            self._said = True
            self.log.warning(
                "retry_time_ahead",
                element=ahead.element,
                key=ahead.key,
                ahead_seconds=round(ahead.next_retry - now - retry_max_seconds),
                reason="a pending update's next retry was stamped by a clock running ahead "
                "(another replica's?): retried now",
            )
        return due
