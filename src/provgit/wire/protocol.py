"""The element protocol: what provgit and an element say to each other.

The records, pages, change feeds and conditional writes both ends exchange,
the element's answers as exceptions, and the one interface every element
driver implements. Both the drivers and the simulator build on this module;
neither imports the other for it.

A driver speaks to one element: list records (paged), read the change feed
since a revision, and put/delete a record conditionally on its revision. All
methods are async so the http driver can pool connections; the embedded driver
simply answers at once.

Errors are the element's answers, as exceptions, so callers can tell a refusal
(a distribution error an admin must look at) from a transport problem (a
pending update to retry later).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from provgit.records import Fields

ElementState = Literal["running", "locked", "offline"]


@dataclass(frozen=True)
class CallLoad:
    """The live call load an IVR server (or a call server) reports: what
    `apply.quiet_load` compares before IVR content changes go out."""

    active_calls: int
    queued_calls: int
    # Share of the element's call capacity in use, in percent (0-100).
    load_percent: float


@dataclass(frozen=True)
class ElementInfo:
    name: str
    type: str
    version: str
    revision: int
    state: ElementState
    # None: the element does not report its call load.
    call_load: CallLoad | None = None
    # The content digest of every record it holds (wire/digest.py); None:
    # the element does not report one (the feed is then verified by full reads only).
    digest: str | None = None


# slots: an observation of 100,000 users holds ~300,000 of these (no
# per-record __dict__: ~100 bytes each, ~30 MB in the watcher, #16).
@dataclass(frozen=True, slots=True)
class StoredRecord:
    collection: str
    key: str
    fields: Fields
    revision: int  # per-record revision (the element revision of its last write)


@dataclass(frozen=True)
class Page:
    records: list[StoredRecord]
    next_cursor: str | None
    revision: int  # element revision the page was read at
    # The bytes its answer took as received (decoded, before parsing), which a
    # listing's byte budget counts (observe/received.py); None: not counted
    # (an element in this process, holding what it lists already).
    received: int | None = None


@dataclass(frozen=True)
class Change:
    revision: int
    collection: str
    key: str
    op: Literal["put", "delete"]
    fields: Fields | None  # None for deletes
    record_revision: int


@dataclass(frozen=True)
class ChangeFeed:
    changes: list[Change]
    revision: int  # element revision at the time of reading
    # More changes are due: ask again since `revision` (an element may page
    # below the limit asked for; the feed's revision is then its last change).
    more: bool = False
    # The bytes its answer took as received, as `Page.received`: what a feed
    # read's byte budget counts (observe/received.py); None: not counted.
    received: int | None = None


@dataclass(frozen=True)
class WriteOp:
    """One conditional write.

    `if_revision`: None means create only if absent; an int means the record
    must currently be at that revision (update/delete).
    """

    op: Literal["put", "delete"]
    collection: str
    key: str
    fields: Fields | None = None
    if_revision: int | None = None
    # A put that takes ownership of a record provgit did not create (`plan
    # --claim`): an element that guards its records by an ownership marker
    # (the ldap driver) accepts it at `if_revision` and adds the marker.
    claim: bool = False


@dataclass(frozen=True)
class WriteResult:
    ok: bool
    revision: int | None = None  # new record revision on success
    error: ElementError | None = None


# ---- the element's answers -------------------------------------------------


class ElementError(Exception):
    """Base of everything an element (or the road to it) answers with."""

    code: str = "error"
    # Transport-class errors are retried later (pending updates); the rest are
    # distribution errors an admin must act on.
    retryable: bool = False

    def __init__(self, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.message = message
        self.detail: dict[str, Any] = detail

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.detail}


@dataclass(frozen=True)
class Refusal:
    form: str
    field: str | None
    reason: str


class RefusedError(ElementError):
    """The element refused the data (validation), naming form, field and reason."""

    code = "refused"

    def __init__(self, message: str, refusals: Sequence[Refusal] = ()) -> None:
        super().__init__(message)
        self.refusals = list(refusals)

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "refusals": [
                {"form": r.form, "field": r.field, "reason": r.reason} for r in self.refusals
            ],
        }


class ConflictError(ElementError):
    """Changed by another user (stale revision, or create of an existing record)."""

    code = "conflict"


class NotFoundError(ElementError):
    code = "not_found"


class LockedError(ElementError):
    """The element is busy (e.g. a sync in progress); try again later."""

    code = "locked"
    retryable = True


class OfflineError(ElementError):
    """Services stopped or the element is offline."""

    code = "offline"
    retryable = True


class TransportError(ElementError):
    """Could not talk to the element (connection refused, timeout, 5xx)."""

    code = "transport"
    retryable = True


class UnauthorizedError(ElementError):
    code = "unauthorized"


class FencedError(ElementError):
    """The write carried a fencing token lower than one the element has seen:
    the writer lost its lease on the element to another replica (a provgit
    replica's problem, never the record's; the new holder writes it)."""

    code = "fenced"


FENCE_HEADER = "X-Provgit-Fence"


# Same as the header's pattern in element-api-v1.yaml.
FENCE_PATTERN = re.compile(r"([A-Za-z0-9_.-]{1,200})/([0-9]{1,18})")


def parse_fence(value: str) -> tuple[str, int]:
    """`<element>/<token>` as (element, token); ValueError when malformed."""
    match = FENCE_PATTERN.fullmatch(value)
    if match is None:
        raise ValueError(
            f"{FENCE_HEADER} must be <element>/<token>: an element name (letters, digits, "
            "_ . -) and an integer of at most 18 digits"
        )
    return match.group(1), int(match.group(2))


class FeedTooOldError(ElementError):
    """The change feed no longer reaches back to the asked revision: resync fully."""

    code = "feed_too_old"


@runtime_checkable
class Driver(Protocol):
    """What provgit needs from a network element."""

    name: str

    async def info(self) -> ElementInfo: ...

    async def list_records(
        self, collection: str, cursor: str | None = None, limit: int = 1000
    ) -> Page: ...

    async def changes(self, since: int, limit: int = 10000) -> ChangeFeed: ...

    async def write(self, op: WriteOp) -> WriteResult:
        """Apply one conditional write; element errors are raised."""
        ...

    async def write_batch(self, ops: Sequence[WriteOp]) -> list[WriteResult]:
        """Apply several writes; per-op errors come back in the results, while
        errors that concern the whole element (offline, locked, transport) raise."""
        ...

    async def close(self) -> None: ...


class ForwardingDriver:
    """A driver around another that reads and closes through it unchanged; a
    subclass decides what happens to writes (the watcher's shutdown gate, a
    replica's fencing)."""

    def __init__(self, inner: Driver) -> None:
        self.inner = inner
        self.name = inner.name

    async def info(self) -> ElementInfo:
        return await self.inner.info()

    async def list_records(
        self, collection: str, cursor: str | None = None, limit: int = 1000
    ) -> Page:
        return await self.inner.list_records(collection, cursor, limit)

    async def changes(self, since: int, limit: int = 10000) -> ChangeFeed:
        return await self.inner.changes(since, limit)

    async def write(self, op: WriteOp) -> WriteResult:
        return await self.inner.write(op)

    async def write_batch(self, ops: Sequence[WriteOp]) -> list[WriteResult]:
        return await self.inner.write_batch(ops)

    async def close(self) -> None:
        await self.inner.close()
