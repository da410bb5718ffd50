"""What is known of each element without contacting it: its last observation
(in memory, the cache file, or the last plan's memo of it) and whether the last
run found it down."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provgit.observe import Observation, ObservationCache
from provgit.records import Fields
from provgit.report.states import OFFLINE, STOPPED, TOKEN_REFUSED, UNKNOWN, UNREADABLE, Ref


@dataclass
class ElementFacts:
    """What is known of one element without contacting it."""

    name: str
    type: str
    # running / locked (records readable), or offline / stopped / token_refused /
    # error / unknown (never observed)
    state: str
    revision: int | None = None
    records: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, repr=False)
    detail: str | None = None
    # Instead of `records`: the operations the last plan found for this element
    # (a newer reading than the cache), (collection, key) -> (action, record
    # revision); every other record of the target was as desired.
    ops: dict[Ref, tuple[str, int | None]] | None = field(default=None, repr=False)
    objects: bool = False  # `records` holds StoredRecord objects, not (fields, revision)
    # When the element was last read in full (its change feed verified); None: unknown.
    full_read_at: float | None = None

    @property
    def readable(self) -> bool:
        return self.state in ("running", "locked")


_DOWN_ROW = {
    "offline": OFFLINE,
    "stopped": STOPPED,
    "unauthorized": TOKEN_REFUSED,
    "error": UNREADABLE,
}
_OBS_DOWN = {
    "offline": OFFLINE,
    "unauthorized": TOKEN_REFUSED,
    "error": UNREADABLE,
}


def element_facts(
    element_types: Mapping[str, str],
    state_dir: Path,
    journal_rows: Mapping[str, tuple[str, str | None, float]],
    observations: Mapping[str, Observation] | None = None,
    memo_digest: str | None = None,
    plans: Mapping[str, tuple[int, dict[Ref, tuple[str, int | None]]]] | None = None,
) -> dict[str, ElementFacts]:
    """Each element's last observation (in memory when given, else the cache
    file or, when newer, the last plan's memo of it) and whether the last run
    found it down.

    The newer wins: a run that found the element offline after it was last
    read makes it offline; a later successful read makes it readable.
    `memo_digest`: the digest of the target being derived from; a memo
    entry planned against another target is not used.
    """
    cache = ObservationCache(state_dir)
    out: dict[str, ElementFacts] = {}
    for name, etype in element_types.items():
        row = journal_rows.get(name)
        obs = (observations or {}).get(name)
        if obs is not None:
            # The watcher keeps only good readings in memory: a run that found
            # the element down since is the newer word.
            if row is not None and row[0] in _DOWN_ROW:
                out[name] = ElementFacts(name, etype, _DOWN_ROW[row[0]], detail=row[1])
            elif obs.ok:
                plan = (plans or {}).get(name)
                if plan is not None and obs.revision is not None and plan[0] >= obs.revision:
                    # The watcher's plan of this reading: its operations are what differs.
                    out[name] = ElementFacts(name, etype, obs.state, plan[0], ops=plan[1])
                else:
                    out[name] = ElementFacts(
                        name, etype, obs.state, obs.revision, obs.records, objects=True
                    )
            else:
                down = _OBS_DOWN.get(obs.state, UNREADABLE)
                if row is not None and row[0] == "stopped":
                    down = STOPPED
                out[name] = ElementFacts(name, etype, down, detail=obs.error)
            continue
        planned = _load_memo(state_dir, name, memo_digest) if memo_digest else None
        # The plan memo is written after the observation it was planned from,
        # so a cache file newer than it holds a later reading (the watcher's).
        loaded = None
        if planned is None or _mtime(cache._path(name)) > planned[2]:
            loaded = _load_cached(cache, name)
            if planned is not None and loaded is not None and planned[0] < loaded[0]:
                planned = None
        elif (seen := cache.header_revision(name)) is not None and planned[0] < seen:
            # A memo of an older reading than the cache's, yet newer on disk:
            # copied back (sealed by provgit, of the same target). Its mtime
            # says nothing; the reading it was planned from is older.
            planned, loaded = None, _load_cached(cache, name)
        mtime = max([t for t in (loaded and loaded[2], planned and planned[2]) if t] or [0.0])
        # A plan (or run) that could not read the element since: its failure
        # is the newer word, unless a run found it down later still.
        failed = cache.down(name)
        if (
            failed is not None
            and failed[2] >= mtime
            and not (row is not None and row[0] in _DOWN_ROW and row[2] >= failed[2])
        ):
            down = _OBS_DOWN.get(failed[0], UNREADABLE)
            out[name] = ElementFacts(name, etype, down, detail=failed[1])
        elif row is not None and row[0] in _DOWN_ROW and (not mtime or row[2] >= mtime):
            out[name] = ElementFacts(name, etype, _DOWN_ROW[row[0]], detail=row[1])
        elif planned is not None:
            out[name] = ElementFacts(name, etype, "running", planned[0], ops=planned[1])
        elif loaded is not None:
            revision, records, _ = loaded
            out[name] = ElementFacts(name, etype, "running", revision, records)
        else:
            out[name] = ElementFacts(name, etype, UNKNOWN, detail="never observed")
    for name, facts in out.items():
        obs = (observations or {}).get(name)
        # One small file per element: what the status rests on, at little cost.
        facts.full_read_at = obs.full_read_at if obs is not None else cache.full_read_at(name)
    return out


def _mtime(path: Path) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


def _load_cached(
    cache: ObservationCache, element: str
) -> tuple[int, dict[str, dict[str, tuple[Fields, int]]], float] | None:
    """The cache file as plain tuples (no record objects: 300,000 of them cost
    more than the whole derivation)."""
    try:
        mtime = os.stat(cache._path(element)).st_mtime
    except OSError:
        return None
    found = cache.raw(element)
    return None if found is None else (*found, mtime)


def _load_memo(
    state_dir: Path, element: str, digest: str
) -> tuple[int, dict[Ref, tuple[str, int | None]], float] | None:
    """The last plan of an element (incremental.disk), read raw: its revision
    and operations; None unless sealed with the state directory's key."""
    from provgit.incremental import disk as memo

    store = memo.PlanMemo(state_dir)
    try:
        mtime = os.stat(store.element_path(element)).st_mtime
        doc = store.element_doc(element)
        if doc is None or doc["digest"] != digest:
            return None
        return int(doc["revision"]), memo.operation_summary(doc["operations"]), mtime
    except (OSError, ValueError, TypeError, KeyError, IndexError):
        return None
