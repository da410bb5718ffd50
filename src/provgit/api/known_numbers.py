"""The numbers in use beyond what a plan has in hand, for a number swap's spare.

A plan breaks a number swap with a spare DN that must ring no one else
(plan/numbers.py). The full path has the whole target and observes every
element, except in a run cut to some (`--element`); the memo paths plan
from the records that changed (a partial target, observations without
records). Here the rest is read only when a swap needs a spare: the config's
stored target, element by element, and what the observation cache says each
element held (the last reads, with provgit's own writes since).

Internal to the API (`provgit.api`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from pathlib import Path

from provgit.incremental.store import TargetStore
from provgit.observe import ObservationCache, ObservedRecords
from provgit.plan.numbers import numbers_held


def known_numbers(
    state_dir: Path,
    elements: Iterable[str],
    stored: TargetStore | None = None,
    owners: Collection[str] = (),
) -> Callable[[], set[str]]:
    """What `elements` were last seen to hold and (with `stored`) the
    config's records for them: asked once, and only for a spare. The records
    of `owners` (users, by key or `login_id`) are left out: a number a swap's
    own user holds rings no one else (a saved plan applied once already is
    refused as stale, not for its own spare)."""
    names = list(elements)

    def found() -> set[str]:
        out: set[str] = set()
        if stored is not None:
            with stored.one_by_one() as load:
                for name in names:
                    target = load(name)
                    if target is not None:
                        out.update(numbers_held(target.records.values()))
        cache = ObservationCache(state_dir)
        for name in names:  # one element's records at a time
            seen = cache.load(name)
            if seen is not None:
                out.update(numbers_held([_without(seen.records, owners)]))
        return out

    return found


def _without(records: ObservedRecords, owners: Collection[str]) -> ObservedRecords:
    if not owners:
        return records
    return {
        coll: {
            key: r
            for key, r in recs.items()
            if key not in owners and _login(r.fields) not in owners
        }
        for coll, recs in records.items()
    }


def _login(fields: object) -> str | None:
    login = fields.get("login_id") if isinstance(fields, dict) else None
    return login if isinstance(login, str) else None
