"""What a plan is asked for, apart from the plan itself: a status reads the
memo's digest over these without loading the plan computation."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PlanOptions:
    prune: bool = False  # delete records provgit did not create, for every kind
    allow_deletes: bool = False
    allow_updates: bool = False
    elements: tuple[str, ...] = ()  # limit to these elements (empty: all)
    # Take ownership of records the config has that provgit did not create
    # (entries `import` read from a directory): a conditional write adding the marker.
    claim: bool = False
