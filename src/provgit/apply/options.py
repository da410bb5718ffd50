"""How an apply run is asked to behave (the CLI and the watcher fill it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from provgit.apply import drift_detect as drift
from provgit.apply import holds
from provgit.plan.swap_mark import Unread


@dataclass(frozen=True)
class ApplyOptions:
    command: str = "apply"
    # A saved plan: refuse elements whose revision moved since it was made.
    check_stale: bool = True
    # Apply the elements that are not refused even when others are.
    partial: bool = False
    # The plan was computed from an observation made in this run: records with
    # no operation are in sync, so their pending updates and errors are over.
    fresh: bool = False
    # Only these (element, collection, key) records (errors retry/force).
    only: frozenset[tuple[str, str, str]] | None = None
    # Records whose open distribution errors this run retries rather than holds.
    release: frozenset[tuple[str, str, str]] = frozenset()
    # None: `apply.batch_size` / `apply.batches_in_flight` of the settings.
    batch_size: int | None = None
    batches_in_flight: int | None = None
    # The saved plan's checksum, recorded with the run (hashing a large plan
    # again here would cost more than applying it).
    plan_checksum: str | None = None
    # Records changed outside provgit (apply/drift_detect.py): "report" holds
    # them, "correct" overwrites them; None: `drift.mode` of the settings, else correct.
    drift: drift.DriftMode | None = None
    # A person decided: write drifted records even in report mode.
    overwrite_drift: bool = False
    # Per element, records a full read found changed with no word from the
    # change feed: drift whatever their revision says, and an event.
    feed_missed: Mapping[str, frozenset[tuple[str, str]]] = field(default_factory=dict)
    # Where "now" comes from for sync windows (apply/holds.py); tests pass a fake.
    clock: holds.Clock = holds.SYSTEM_CLOCK
    # apply --override-window --reason TEXT: go through closed windows (journaled).
    override_window: str | None = None
    # (element, collection, key) -> the number swap that write belongs to,
    # waiting for elements that did not answer (api/swaps_across.py): held,
    # saying so (apply/moves.py).
    swap_waits: Mapping[tuple[str, str, str], Unread] = field(default_factory=dict)
    # Elements of the config this run does not cover (`--element`): never
    # summarised as in sync by it (ApplyResult.overall).
    left_out: tuple[str, ...] = ()
