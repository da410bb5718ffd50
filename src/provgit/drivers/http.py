"""The `http` driver: the element API v1 over HTTP (see element-api-v1.yaml).

Settings:
  url          base URL of the element, e.g. http://127.0.0.1:8080
  token        bearer token, already resolved from its reference (or None)
  timeout      seconds, for connecting and for each read (default 10)
  request_deadline
               seconds for the whole of one request, its answer read to the
               end (default 120): an element that sends a byte inside each
               read timeout would otherwise hold the request, and the run,
               for ever
  concurrency  requests in flight at once to this element (default 32)
  retries      extra attempts where a retry is safe (default 2)

One pooled keep-alive ClientSession per driver, opened on first use inside the
running loop, bounded by a semaphore.

Retries, and why they are safe:
  * GETs (info, listing, feed): retried on connection failures, timeouts and
    5xx other than 503 — reading twice changes nothing.
  * Any request whose connection could not be established: retried — it never
    reached the element.
  * PUT and DELETE, after a failure once sent (timeout, dropped connection,
    500): retried, because they are conditional and so idempotent-checkable. A
    retried put that meets 409/412 reads the record back: if it holds exactly
    what we sent, our first attempt landed and the result is that success. A
    retried delete that meets 404 means the record is gone, which is what we
    wanted.
  * Batches are not retried once sent: their per-op results cannot be
    recovered; the caller sees a TransportError and retries its operations as
    pending updates.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

from provgit.drivers.base import MAX_ANSWER_BYTES, DriverConfig
from provgit.records import MANAGED_BY, META_PREFIX, Fields
from provgit.wire import codec, sensitive
from provgit.wire.protocol import (
    FENCE_HEADER,
    CallLoad,
    ChangeFeed,
    ElementError,
    ElementInfo,
    FeedTooOldError,
    NotFoundError,
    OfflineError,
    Page,
    TransportError,
    WriteOp,
    WriteResult,
)

DEFAULT_TIMEOUT = 10.0
DEFAULT_REQUEST_DEADLINE = 120.0
DEFAULT_CONCURRENCY = 32
DEFAULT_RETRIES = 2
BACKOFF = (0.1, 0.3, 1.0)


class _NotSent(Exception):
    """The connection could not be made: the element never saw the request."""


class _Ambiguous(Exception):
    """Sent, but no usable answer: the element may or may not have acted."""


@dataclass
class RequestStats:
    """Where a driver's time went: round trips as seen here, and the share the
    element itself reported holding them (its `Server-Timing: total;dur=`)."""

    requests: int = 0
    round_trip_seconds: float = 0.0
    element_seconds: float = 0.0  # only from answers that carry Server-Timing
    timed_requests: int = 0

    def add(self, round_trip: float, server_timing: str | None) -> None:
        self.requests += 1
        self.round_trip_seconds += round_trip
        held = _server_total(server_timing)
        if held is not None:
            self.element_seconds += held
            self.timed_requests += 1


def _server_total(header: str | None) -> float | None:
    """Seconds from a `Server-Timing` header's `total` metric (RFC: dur in ms)."""
    if not header:
        return None
    for metric in header.split(","):
        name, _, params = metric.strip().partition(";")
        if name != "total":
            continue
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "dur":
                try:
                    ms = float(value.strip('"'))
                except ValueError:
                    return None
                # NaN or a negative time would poison the sums.
                return ms / 1000 if 0 <= ms < float("inf") else None
    return None


def comparable(fields: Fields) -> Fields:
    """Fields as provgit compares them: secrets as fingerprints, `_` fields
    dropped except `_managed_by`."""
    redacted, _ = sensitive.split_secrets(fields)
    return {k: v for k, v in redacted.items() if not k.startswith(META_PREFIX) or k == MANAGED_BY}


class HttpDriver:
    """A Driver speaking the element API v1."""

    def __init__(self, config: DriverConfig) -> None:
        settings = config.settings
        url = settings.get("url")
        if not url or not isinstance(url, str):
            raise ValueError(f"element {config.element}: the http driver needs a 'url' setting")
        self.name = config.element
        self.base = url.rstrip("/") + codec.API_PREFIX
        self.token: str | None = settings.get("token") or None
        self.timeout = float(settings.get("timeout", DEFAULT_TIMEOUT))
        self.deadline = float(settings.get("request_deadline", DEFAULT_REQUEST_DEADLINE))
        self.concurrency = int(settings.get("concurrency", DEFAULT_CONCURRENCY))
        self.retries = int(settings.get("retries", DEFAULT_RETRIES))
        if self.concurrency < 1 or self.timeout <= 0 or self.deadline <= 0 or self.retries < 0:
            raise ValueError(
                f"element {config.element}: timeout and request_deadline must be > 0, "
                "concurrency >= 1, retries >= 0"
            )
        # `<element>/<token>` while a provgit replica holds the element's lease:
        # sent with every write so the element refuses a replica that lost it.
        self.fence: str | None = None
        self._session: aiohttp.ClientSession | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self.stats = RequestStats()

    def __repr__(self) -> str:  # never show the token
        return f"HttpDriver({self.name!r}, {self.base!r})"

    # ---- plumbing --------------------------------------------------------

    def _open(self) -> tuple[aiohttp.ClientSession, asyncio.Semaphore]:
        if self._session is None or self._session.closed or self._semaphore is None:
            headers = {"Accept": "application/json"}
            if self.token:
                headers["Authorization"] = f"Bearer {self.token}"
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self.concurrency, keepalive_timeout=30, enable_cleanup_closed=True
                ),
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=self.timeout,
                    sock_connect=self.timeout,
                    sock_read=self.timeout,
                ),
                headers=headers,
                json_serialize=json.dumps,
                # Elements set no cookies; skipping the jar saves work per request.
                cookie_jar=aiohttp.DummyCookieJar(),
            )
            self._semaphore = asyncio.Semaphore(self.concurrency)
        return self._session, self._semaphore

    def _url(self, path: str) -> URL:
        return URL(self.base + path, encoded=True)

    @staticmethod
    def _record_path(collection: str, key: str) -> str:
        return f"/collections/{quote(collection, safe='')}/records/{quote(key, safe='')}"

    async def _once(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        body: Any = None,
        received: list[int] | None = None,
    ) -> tuple[int, Any]:
        session, semaphore = self._open()
        data = None if body is None else codec.dumps(body)
        if data is not None:
            headers = {**(headers or {}), "Content-Type": "application/json"}
        async with semaphore:
            # Started once a place is free: waiting for one is not the element's time.
            whole = asyncio.timeout(self.deadline)
            try:
                sent = time.perf_counter()
                async with (
                    whole,
                    session.request(
                        method,
                        self._url(path),
                        params=params,
                        headers=headers,
                        data=data,
                        # Not followed: a 307 re-sends a write's body (its
                        # secrets' plaintext) to wherever it points.
                        allow_redirects=False,
                    ) as response,
                ):
                    raw = await self._read_capped(response)
                    status = response.status
                    moved = response.headers.get("Location") if 300 <= status < 400 else None
                if received is not None:
                    received.append(len(raw))
                self.stats.add(time.perf_counter() - sent, response.headers.get("Server-Timing"))
            except aiohttp.ClientConnectorError as e:
                raise _NotSent(f"cannot connect to element {self.name}: {e.os_error}") from None
            except TimeoutError:
                if whole.expired():
                    raise _Ambiguous(
                        f"element {self.name} did not answer in full within {self.deadline:g} s "
                        "(connection.request_deadline)"
                    ) from None
                raise _Ambiguous(
                    f"element {self.name} did not answer within {self.timeout:g} s"
                ) from None
            except aiohttp.ClientError as e:
                raise _Ambiguous(
                    f"connection to element {self.name} failed: {type(e).__name__}"
                ) from None
        if 300 <= status < 400:
            raise _Ambiguous(
                f"element {self.name} answered HTTP {status}, a redirect to "
                f"{codec.element_text(moved or 'nowhere')[:200]}: not followed (connection.url "
                "must name the element API itself)"
            )
        try:
            parsed = codec.loads(raw) if raw else None
        except ValueError:
            parsed = None
        if status >= 500 and status != 503:
            message = parsed.get("message") if isinstance(parsed, dict) else None
            said = codec.element_text(message or "error")
            raise _Ambiguous(f"element {self.name} answered HTTP {status}: {said}")
        return status, parsed

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        body: Any = None,
        retry_sent: bool,
        received: list[int] | None = None,
    ) -> tuple[int, Any, bool]:
        """(status, body, retried-after-ambiguous). Transport failures raise TransportError."""
        ambiguous = False
        for attempt in range(self.retries + 1):
            try:
                status, parsed = await self._once(
                    method, path, params=params, headers=headers, body=body, received=received
                )
                return status, parsed, ambiguous
            except _NotSent as e:
                error: Exception = e
            except _Ambiguous as e:
                error = e
                ambiguous = True
                if not retry_sent:
                    break
            if attempt < self.retries:
                await asyncio.sleep(BACKOFF[min(attempt, len(BACKOFF) - 1)])
        raise TransportError(str(error))

    def _raise(self, status: int, body: Any) -> None:
        if status == 503:
            message = body.get("message") if isinstance(body, dict) else None
            raise OfflineError(
                codec.element_text(message or f"element {self.name} is stopped/offline")
            )
        if status >= 400:
            raise codec.error_from_json(body, status)

    async def _get(
        self,
        path: str,
        params: dict[str, str] | None = None,
        received: list[int] | None = None,
    ) -> Any:
        """The answer's body, parsed; its size as received appended to `received`."""
        status, body, _ = await self._call(
            "GET", path, params=params, retry_sent=True, received=received
        )
        self._raise(status, body)
        if not isinstance(body, dict):
            raise self._garbled()
        return body

    async def _read_capped(self, response: aiohttp.ClientResponse) -> bytes:
        """The answer's body, refused past MAX_ANSWER_BYTES: an element that
        streams without end (or claims to) must not take provgit's memory."""
        if (response.content_length or 0) > MAX_ANSWER_BYTES:
            raise self._too_big()
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(1 << 20):
            size += len(chunk)
            if size > MAX_ANSWER_BYTES:
                raise self._too_big()
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_big(self) -> TransportError:
        return TransportError(
            f"element {self.name} answered more than {MAX_ANSWER_BYTES // 2**20} MiB "
            "to one request: not read further"
        )

    def _garbled(self) -> TransportError:
        # Something answers at that URL, but not the element API v1.
        return TransportError(f"element {self.name} answered something that is not element API v1")

    # ---- Driver ----------------------------------------------------------

    async def info(self) -> ElementInfo:
        b = await self._get("/element")
        try:
            load = b.get("call_load")
            call_load = (
                None
                if load is None
                else CallLoad(
                    int(load["active_calls"]),
                    int(load["queued_calls"]),
                    float(load["load_percent"]),
                )
            )
            digest = b.get("digest")
            return ElementInfo(
                b["name"],
                b["type"],
                b["version"],
                codec.revision_of(b["revision"]),
                b["state"],
                call_load,
                digest if isinstance(digest, str) else None,
            )
        except (KeyError, TypeError, ValueError):
            raise self._garbled() from None

    async def list_records(
        self, collection: str, cursor: str | None = None, limit: int = 1000
    ) -> Page:
        params = {"limit": str(limit)}
        if cursor is not None:
            params["cursor"] = cursor
        path = f"/collections/{quote(collection, safe='')}/records"
        received: list[int] = []
        b = await self._get(path, params, received)
        try:
            records = [codec.record_from_json(item) for item in b["records"]]
            revision = codec.revision_of(b["revision"])
            return Page(records, b.get("next_cursor"), revision, received[-1])
        except (KeyError, TypeError):
            raise self._garbled() from None

    async def changes(self, since: int, limit: int = 10000) -> ChangeFeed:
        received: list[int] = []
        b = await self._get("/changes", {"since": str(since), "limit": str(limit)}, received)
        try:
            feed = ChangeFeed(
                [codec.change_from_json(c) for c in b["changes"]],
                codec.revision_of(b["revision"]),
                b.get("more") is True,
                received[-1],
            )
        except (KeyError, TypeError):
            raise self._garbled() from None
        self._in_order(feed, since)
        return feed

    def _in_order(self, feed: ChangeFeed, since: int) -> None:
        """A feed's changes come oldest first, each after `since` and at most
        the feed's revision. Read in another order, a record's older change
        would pass for its last and the copy keep a value the element no
        longer holds: such a feed is not used, the element is read in full."""
        before = since
        for c in feed.changes:
            if not before < c.revision <= feed.revision:
                raise FeedTooOldError(
                    f"element {self.name}: its change feed is not in revision order "
                    f"(revision {c.revision} after {before}, feed at {feed.revision}): "
                    "not used, read in full"
                )
            before = c.revision

    async def write(self, op: WriteOp) -> WriteResult:
        path = self._record_path(op.collection, op.key)
        if op.op == "put":
            if op.fields is None:
                raise ValueError("a put needs fields")
            headers = (
                {"If-None-Match": "*"}
                if op.if_revision is None
                else {"If-Match": f'"{op.if_revision}"'}
            )
            headers.update(self._fence_header())
            status, body, retried = await self._call(
                "PUT", path, headers=headers, body=op.fields, retry_sent=True
            )
            if retried and status in (409, 412):
                landed = await self._landed(op)
                if landed is not None:
                    return WriteResult(ok=True, revision=landed)
        else:
            headers = {} if op.if_revision is None else {"If-Match": f'"{op.if_revision}"'}
            headers.update(self._fence_header())
            status, body, retried = await self._call(
                "DELETE", path, headers=headers, retry_sent=True
            )
            if retried and status == 404:
                return WriteResult(ok=True, revision=None)
        self._raise(status, body)
        if not isinstance(body, dict) or "revision" not in body:
            raise self._garbled()
        return WriteResult(ok=True, revision=self._revision(body["revision"]))

    def _revision(self, value: Any) -> int:
        try:
            return codec.revision_of(value)
        except TypeError:
            raise self._garbled() from None

    def _fence_header(self) -> dict[str, str]:
        return {} if self.fence is None else {FENCE_HEADER: self.fence}

    async def _landed(self, op: WriteOp) -> int | None:
        """After an ambiguous put: the record's revision if it holds what we sent."""
        try:
            b = await self._get(self._record_path(op.collection, op.key))
        except NotFoundError:
            return None
        if comparable(b["fields"]) == comparable(op.fields or {}):
            return self._revision(b["revision"])
        return None

    async def write_batch(self, ops: Sequence[WriteOp]) -> list[WriteResult]:
        if not ops:
            return []
        status, body, _ = await self._call(
            "POST",
            "/batch",
            headers=self._fence_header(),
            body={"ops": [codec.op_to_json(op) for op in ops]},
            retry_sent=False,
        )
        self._raise(status, body)
        items = body.get("results") if isinstance(body, dict) else None
        if not isinstance(items, list) or len(items) != len(ops):
            raise self._garbled()
        results: list[WriteResult] = []
        for item in items:
            if not isinstance(item, dict):
                raise self._garbled()
            if item.get("ok"):
                revision = item.get("revision")
                landed = None if revision is None else self._revision(revision)
                results.append(WriteResult(ok=True, revision=landed))
            else:
                error: ElementError = codec.error_from_json(item.get("error"), item.get("status"))
                results.append(WriteResult(ok=False, error=error))
        return results

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


__all__ = ["HttpDriver", "RequestStats", "comparable"]
