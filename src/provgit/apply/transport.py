"""Send batches to an element: retries with backoff, the write hook, and the
change-feed lookup that tells an existing identical record from a conflict.

The engine owns what a batch means; this module only gets answers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from provgit.apply.work import ElementWork
from provgit.drivers.base import (
    Driver,
    ElementError,
    FeedTooOldError,
    FencedError,
    RefusedError,
    StoredRecord,
    TransportError,
    UnauthorizedError,
    WriteOp,
    WriteResult,
)
from provgit.model.settings import Settings
from provgit.observe import MAX_LISTED
from provgit.observe.received import Received
from provgit.plan.compute import field_changes
from provgit.plan.model import Operation
from provgit.records import Fields
from provgit.secret_refs import has_reference
from provgit.secrets import SHOWN, with_values
from provgit.wire.codec import CUT
from provgit.wire.sensitive import SENSITIVE

# When a write hook is called: "before" the Nth write call is sent (its
# intents are committed), "after" it returned (its outcome not yet journaled).
WriteMoment = Literal["before", "after"]
# Called with the run's write call number (from 1) and the moment. Tests use
# it to stop a real process at chosen instants (tests/support/kill_after.py).
WriteHook = Callable[[int, WriteMoment], None]

_installed: WriteHook | None = None


def install_write_hook(hook: WriteHook | None) -> None:
    """The hook every later apply in this process calls unless given its own
    (a launcher installs it before running the CLI); None removes it."""
    global _installed
    _installed = hook


def installed_write_hook() -> WriteHook | None:
    return _installed


def backoff(settings: Settings, attempt: int) -> float:
    a = settings.apply
    # Full jitter on the upper half: spreads retries of many appliers apart.
    return float(min(a.retry_max_seconds, a.retry_base_seconds * 2**attempt)) * random.uniform(
        0.5, 1.0
    )


def write_op(op: Operation) -> WriteOp:
    """The element write for `op`; raises SecretUnavailable for a missing secret."""
    if op.action == "delete":
        return WriteOp("delete", op.collection, op.key, None, op.if_revision)
    # Secrets are resolved here, right before the write, and nowhere else.
    fields = op.fields or {}
    if has_reference(fields):
        fields = with_values(fields)
    return WriteOp("put", op.collection, op.key, fields, op.if_revision, op.claim)


class Transport:
    """Write calls of one run: counted, retried, and seen by the write hook."""

    def __init__(self, settings: Settings, hook: WriteHook | None = None) -> None:
        self.settings = settings
        self.hook = hook
        self.writes = 0

    async def transmit(self, w: ElementWork, batch: list[WriteOp]) -> dict[int, WriteResult]:
        """Answers by index in `batch`. Element-wide trouble is retried with
        backoff; when retries run out, `w.down` is set and the rest fails with it."""
        assert w.driver is not None
        results: dict[int, WriteResult] = {}
        if w.down is not None:
            # Went down while this batch waited: it stays pending (its intents close).
            return {i: WriteResult(ok=False, error=w.down) for i in range(len(batch))}
        remaining = list(range(len(batch)))
        attempt = 0
        while remaining:
            answers, error = await self._call(w.driver, [batch[i] for i in remaining])
            retry: list[int] = []
            if answers is None:
                if not error.retryable:
                    if isinstance(error, UnauthorizedError | FencedError):
                        # The token is refused: no retry helps, and no later
                        # write of this run is sent; they wait for a fixed token.
                        w.down = w.down or error
                    for i in remaining:
                        results[i] = WriteResult(ok=False, error=error)
                    break
                retry = remaining
            else:
                for i, answer in zip(remaining, answers, strict=True):
                    if answer.ok or answer.error is None or not answer.error.retryable:
                        results[i] = answer
                        if isinstance(answer.error, UnauthorizedError | FencedError):
                            w.down = w.down or answer.error
                    else:
                        retry.append(i)
                        error = answer.error
            if not retry:
                break
            if attempt >= self.settings.apply.retry_attempts or w.down is not None:
                w.down = w.down or error
                for i in retry:
                    results[i] = WriteResult(ok=False, error=error)
                break
            await asyncio.sleep(backoff(self.settings, attempt))
            attempt += 1
            remaining = retry
        return results

    async def _call(
        self, driver: Driver, writes: list[WriteOp]
    ) -> tuple[list[WriteResult] | None, ElementError]:
        """One write call: its answers, or None and the error of the whole call."""
        self.writes += 1
        n = self.writes
        if self.hook is not None:
            self.hook(n, "before")
        answers: list[WriteResult] | None = None
        error: ElementError = TransportError("no answer")
        try:
            answers = await driver.write_batch(writes)
        except ElementError as e:
            error = e
        except Exception as e:  # a driver bug must not take the other elements down
            error = TransportError(f"driver error: {type(e).__name__}: {e}")
        if self.hook is not None:
            self.hook(n, "after")
        failed = [error] if answers is None else [a.error for a in answers if a.error is not None]
        if failed:
            hide_plaintexts(failed, writes)
        return answers, error


def _plaintexts(value: Any, out: set[str]) -> None:
    if isinstance(value, dict):
        if SENSITIVE in value:
            if isinstance(value.get("value"), str) and value["value"]:
                out.add(value["value"])
            return
        value = value.values()
    elif not isinstance(value, list):
        return
    for v in value:
        if isinstance(v, dict | list):
            _plaintexts(v, out)


def hide_plaintexts(errors: Iterable[ElementError], writes: Sequence[WriteOp]) -> None:
    """Every secret value `writes` carried, out of the words of `errors` (in place).

    An element may quote what it was sent, and one error of a whole call (an
    HTTP 500 or 400 for the batch) is every write's of the call: each record's
    own scrub (`secrets.scrub`) hid its own secrets only, so the others kept
    the value it quoted, into their pending updates and distribution errors,
    the status and the run's output. Only on failure: a call that landed
    costs nothing."""
    found: set[str] = set()
    for w in writes:
        if w.fields is not None:
            _plaintexts(w.fields, found)
    if not found:
        return
    values = sorted(found, key=len, reverse=True)  # a value holding another: hidden whole

    def clean(text: str) -> str:
        for v in values:
            text = text.replace(v, SHOWN)
        if text.endswith(CUT):
            # Cut at its bound (`element_text`): a value's start may end it.
            kept = text[: -len(CUT)]
            for v in values:
                start = next((k for k in range(len(v) - 1, 0, -1) if kept.endswith(v[:k])), 0)
                if start:
                    return kept[:-start] + SHOWN + CUT
        return text

    for e in {id(e): e for e in errors}.values():
        e.message = clean(e.message)
        e.args = (e.message,)
        e.detail = {k: clean(v) if isinstance(v, str) else v for k, v in e.detail.items()}
        if isinstance(e, RefusedError):
            e.refusals = [
                dataclasses.replace(
                    r,
                    reason=clean(r.reason),
                    field=None if r.field is None else clean(r.field),
                    form=clean(r.form),
                )
                for r in e.refusals
            ]


async def identical(w: ElementWork, op: Operation) -> int | None:
    """A create that met an existing record: its revision if it holds what we want.

    The record did not exist when the plan observed the element, so it was
    written since: the change feed from the plan's revision has it.
    """
    assert w.driver is not None
    since = w.plan.observed_revision or 0
    found: StoredRecord | None = None
    received = Received(w.driver.name)
    try:
        for _ in range(MAX_FEED_PAGES):  # a feed that never ends is not read for ever
            feed = await w.driver.changes(since)
            received.take_feed(feed)  # nor one of ever fatter pages
            for c in feed.changes:
                if (c.collection, c.key) == (op.collection, op.key):
                    found = (
                        None
                        if c.op == "delete"
                        else StoredRecord(c.collection, c.key, c.fields or {}, c.record_revision)
                    )
            if not feed.changes or feed.revision <= since:
                break
            since = feed.revision
        else:
            return None
    except (FeedTooOldError, ElementError):
        return None
    except Exception:  # a driver bug: then it is not known to be identical
        return None
    if found is None or field_changes(op.fields or {}, found.fields):
        return None
    return found.revision


# A change the element's feed says it made: (collection, key, fields; None for a delete).
FeedChange = tuple[str, str, Fields | None]
# Bounds the kept-write check's feed reads: past this many pages that settle
# none of the writes, the written collections are read in full instead.
MAX_FEED_PAGES = 100


@dataclass
class FeedSince:
    """What an element's change feed says since a revision: the changes at
    the revisions asked for, and each record's last change (its revision)."""

    at: dict[int, FeedChange]
    last: dict[tuple[str, str], tuple[int, FeedChange]]
    # Past the feed's reach: the written collections read in full, page by
    # page, each written record's verdict as it came by (why it is not kept;
    # None: it is). Verdicts, not the records: a first rollout's 100,000
    # records held whole beside the run set its peak. None: the feed reached.
    now: dict[tuple[str, str], str | None] | None = None


async def feed_at(
    driver: Driver,
    since: int,
    revisions: set[int],
    ops: Mapping[tuple[str, str], Operation | None],
) -> FeedSince | None:
    """The element's change feed from `since` to its end: what it says each
    change at `revisions` (all after `since`) was, and what it changed last
    of each record (a write kept, then changed a moment later, is not held).
    A feed that no longer reaches back to `since` (a rollout of more writes
    than the element keeps changes of): the collections of `ops` (the writes
    by record) read in full instead, or the writes would count as kept unseen.
    None when the element cannot say (gone, driver error, a listing without
    end): the writes stay unchecked."""
    found = FeedSince({}, {})
    # Pages that settle none of the writes (other writers' changes, or past
    # the writes): bounded, else an element that answered its writes at a
    # revision its feed never reaches, paging "more" for ever, holds the run.
    idle = 0
    received = Received(driver.name)
    try:
        while True:
            feed = await driver.changes(since)
            received.take_feed(feed)  # past its bound: the writes stay unchecked
            settled = len(found.at)
            for c in feed.changes:
                change = (c.collection, c.key, None if c.op == "delete" else c.fields)
                if c.revision in revisions:
                    found.at[c.revision] = change
                found.last[(c.collection, c.key)] = (c.revision, change)
            if not feed.changes or feed.changes[-1].revision <= since:
                break
            since = feed.changes[-1].revision
            if not feed.more and since >= feed.revision:
                break
            idle += len(found.at) == settled
            if idle > MAX_FEED_PAGES:  # the feed is not believed: the records say
                return await _held_now(driver, ops)
    except FeedTooOldError:
        return await _held_now(driver, ops)
    except ElementError:
        return None
    except Exception:  # a driver bug: the next observation says what is there
        return None
    return found


async def _held_now(
    driver: Driver, ops: Mapping[tuple[str, str], Operation | None]
) -> FeedSince | None:
    """Past the feed's reach: each record of `ops` as its element lists it now,
    its verdict (why it is not kept; None: it is, or for a record asked with
    no operation, that the element holds it at all). Not listed: not held."""
    now: dict[tuple[str, str], str | None] = {}
    # Not held, but read: an element sending without end would hold the run.
    received = Received(driver.name)
    try:
        for collection in sorted({c for c, _ in ops}):
            cursor: str | None = None
            # A page's first key: no two pages of one listing begin with the same record.
            firsts: set[str] = set()
            listed = 0
            while True:
                page = await driver.list_records(collection, cursor)
                received.take(collection, page)  # past its bound: not known kept
                for r in page.records:
                    key = (r.collection, r.key)
                    if key in ops:
                        op = ops[key]
                        now[key] = None if op is None else not_kept(op, (*key, r.fields))
                if not (cursor := page.next_cursor) or not page.records:
                    break
                # A cursor handed back twice, or the same records under ever new
                # cursors, would page for ever; ever more records past any real
                # element's size would hold the run as long.
                first, listed = page.records[0].key, listed + len(page.records)
                if first in firsts or listed > MAX_LISTED:
                    return None
                firsts.add(first)
    except Exception:  # the element went away meanwhile: not known to be kept
        return None
    return FeedSince({}, {}, now)


# Why a write answered as done stays pending: its keeping could not be read.
UNCHECKED = (
    "the element answered the write as done, but its change feed (or past the feed's "
    "reach, its records) could not be read to check it kept it: checked again next run"
)


def not_held(op: Operation, revision: int | None, since: int, seen: FeedSince) -> str | None:
    """Why the element does not hold `op`, answered as done at `revision`,
    as its change feed since `since` (or its records now) has it (None: it does)."""
    if revision is None or revision <= since:
        return (
            "the element answered the write as done, but not at a revision after "
            f"the one it was observed at ({since}): its change feed cannot hold it"
        )
    if seen.now is not None:
        key = (op.collection, op.key)
        if key not in seen.now:
            return None if op.action == "delete" else "the element does not hold the record"
        return seen.now[key]
    why = not_kept(op, seen.at.get(revision))
    if why is not None:
        return why
    last = seen.last.get((op.collection, op.key))
    if last is not None and last[0] > revision and not_kept(op, last[1]) is not None:
        return "the element changed the record again after it answered the write as done"
    return None


def not_kept(op: Operation, change: FeedChange | None) -> str | None:
    """Why the element does not hold `op`, answered as done, as its feed has it
    at the write's revision (None: it does)."""
    if change is None or change[:2] != (op.collection, op.key):
        return "the element answered the write as done, but its change feed does not hold it"
    fields = change[2]
    if op.action == "delete":
        return None if fields is None else "the element kept the record it answered as deleted"
    if fields is None or field_changes(op.fields or {}, fields):
        return "the element answered the write as done, but holds other values"
    return None
