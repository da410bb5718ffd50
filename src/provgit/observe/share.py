"""Observations that hold the desired record where the element holds the same.

The watcher keeps every element's observation and the projection between
runs: at 100,000 users both hold ~300,000 records, and in sync they are the
same records, once as the config says them and once as the element does
(~230 MB of the observations' ~300 MB, #16). A record whose observed fields
equal the desired ones holds the desired dict itself: nothing reads a
difference, since `plan_record` compares by value, and neither side changes a
record's fields in place (a reprojection or a write puts a new dict there).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from provgit.observe import Observation, ObservationCache, ObservedRecords, held_as
from provgit.records import Fields
from provgit.wire.protocol import StoredRecord

# element -> collection -> key -> fields: `Target.records`.
DesiredRecords = Mapping[str, Mapping[str, Mapping[str, Fields]]]


def share_desired(
    observation: Observation, desired: Mapping[str, Mapping[str, Fields]]
) -> Observation:
    """`observation` with every record equal to its desired one holding that one's fields."""
    if not observation.ok or not desired:
        return observation
    records: ObservedRecords = {}
    for coll, recs in observation.records.items():
        want = desired.get(coll)
        if not want:
            records[coll] = recs
            continue
        out: dict[str, StoredRecord] = {}
        for key, rec in recs.items():
            out[key] = held_as(rec, want.get(key))
        records[coll] = out
    return dataclasses.replace(observation, records=records)


def load_sharing(
    cache: ObservationCache, elements: Iterable[str], desired: DesiredRecords | None
) -> dict[str, Observation]:
    """`cache.load_all`, each element shared with its desired records as soon
    as it is loaded: the peak holds one element's copy, not all of them."""
    out: dict[str, Observation] = {}
    for element in elements:
        found = cache.load(element)
        if found is not None:
            out[element] = (
                found if desired is None else share_desired(found, desired.get(element, {}))
            )
    return out


def headers(observations: Mapping[str, Observation]) -> dict[str, Observation]:
    """Each observation without its records: all `ObservationCache.save`
    reads of the one on disk (its revision and missed changes). Kept with the
    records, the watcher's copy of what it wrote held a second map of every
    element's 300,000 records beside the refreshed one."""
    return {n: dataclasses.replace(o, records={}) for n, o in observations.items()}
