"""The watcher's full reads: each element read in full on a slower timer than
the resyncs (`observe.watch_full_read_minutes`), one element a run at most, so
a run never reads all of them at once; what a full read finds the element's
change feed never named is said once (journal event, log, /metrics)."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, MutableMapping

from provgit.api.watching import (
    Journal,
    JournalError,
    Observation,
    Settings,
    feed_missed_message,
)
from provgit.api.watching import ObservationCache as _Cache
from provgit.watch.logs import Log
from provgit.watch.metrics import Metrics


def due(
    previous: Mapping[str, Observation], names: Collection[str], settings: Settings, now: float
) -> set[str]:
    """The one element (if any) whose last full read is the oldest and older
    than the setting. An element with no reading to refresh is read in full anyway."""
    max_age = settings.observe.watch_full_read_minutes * 60
    ages = {
        n: now - (previous[n].full_read_at or 0.0)
        for n in names
        if n in previous and previous[n].ok
    }
    if not ages:
        return set()
    oldest = max(ages, key=lambda n: ages[n])
    return {oldest} if ages[oldest] >= max_age else set()


def say_missed(
    observed: MutableMapping[str, Observation],
    full: Collection[str],
    journal: Journal,
    cache: _Cache,
    metrics: Metrics,
    log: Log,
) -> None:
    """Count the full reads; say what they (or a digest that did not agree,
    observe.py) found the feeds missed, once: the missed records are cleared
    from the readings once said (the plan made from these readings finds
    them as drift all the same)."""
    for name, o in list(observed.items()):
        if name in full and o.ok:
            metrics.full_reads.labels(name).inc()
        if not o.missed:
            continue
        metrics.feed_missed.labels(name).inc(len(o.missed))
        log.warning("feed_missed", element=name, changes=len(o.missed))
        try:
            journal.add_event("feed_missed", feed_missed_message(name, o.missed), element=name)
        except JournalError as e:
            log.warning("feed_missed_not_journaled", element=name, error=str(e))
        observed[name] = dataclasses.replace(o, missed=frozenset())
        cache.forget_missed(name)
