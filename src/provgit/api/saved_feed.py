"""What a saved plan carries of the change feeds (`plan.feed_check`), acted
on when it is applied: the changes a full read found a feed missed are
reviewed as drift and said (a `feed_missed` event) once per full read,
however often the file is applied; and the full read's time is recorded in
this state directory when its copy of the element is what that read found.

Internal to the API (`provgit.api`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path

from provgit.journal import Journal
from provgit.observe import ObservationCache
from provgit.plan import Plan
from provgit.wire.digest import from_text

# Journal meta, per element: the time of the last full read whose findings
# an apply of a saved plan said (a repr of the float).
SAID = "feed_missed_said:"

RecordRefs = frozenset[tuple[str, str]]


def unsaid(plan: Plan, journal: Journal, missed: Mapping[str, RecordRefs]) -> dict[str, RecordRefs]:
    """`missed` without the elements whose full read an earlier apply of this
    plan (or of another carrying the same read) said already."""
    out: dict[str, RecordRefs] = {}
    for name, refs in missed.items():
        ep = plan.element(name)
        at = ep.feed_check.at if ep is not None and ep.feed_check is not None else None
        if at is not None and journal.meta(SAID + name) == repr(at):
            continue
        out[name] = refs
    return out


def mark_said(plan: Plan, journal: Journal, said: Mapping[str, RecordRefs]) -> None:
    for name in said:
        ep = plan.element(name)
        if ep is not None and ep.feed_check is not None and ep.feed_check.at is not None:
            journal.set_meta(SAID + name, repr(ep.feed_check.at))


def note_full_reads(plan: Plan, state_dir: Path) -> list[str]:
    """Record the plan's full reads in this state directory's cache where its
    copy of the element is the content that read verified (same revision,
    same content digest). Returns why each other one was not recorded: a
    copy the read did not look at is not vouched for by it."""
    cache = ObservationCache(state_dir)
    why: list[str] = []
    for ep in plan.elements:
        check = ep.feed_check
        if check is None or check.at is None:
            continue
        known = cache.full_read_at(ep.element)
        if known is not None and known >= check.at:
            continue  # this state directory read it then (or since)
        stamped = cache.stamped(ep.element)
        digest = from_text(check.digest)
        if digest is None or stamped != (ep.observed_revision, digest):
            why.append(
                f"{ep.element}: the plan's full read is not recorded here: this state "
                "directory's copy of the element is not the content that read verified"
            )
            continue
        with contextlib.suppress(OSError):
            cache.note_full_read(ep.element, check.at)
    return why
