"""What the watcher (`provgit.watch`) uses of the pipeline, beyond `Config`.

A long-running process composes the stages as `provgit reconcile` does, but
keeps state between runs and wraps each step (gated drivers, live progress,
timers). Rather than a second copy of that wiring, the watcher calls the
pieces below, all typed:

- `StageCache` (`provgit.api.incremental`): the incremental planning session
  the watcher holds for its life: validate, project, plan, re-doing only what
  changed since the last run;
- `connect`, `observe_network`, `remember_writes` (`provgit.api.network`):
  the elements and what they hold;
- `apply_plan` with `ApplyOptions`, and the journal's standing questions
  (`down_elements`, `unfinished`, `all_in_sync`, `review_drift`);
- `status_document`: the status document of a run, which the watcher
  publishes and serves (`provgit.watch.reports`);
- the value types these take and return, and the few source helpers a
  follower of a git repository or a directory needs.

Names are re-exported from their stage unchanged: a watcher's `Plan` is the
CLI's `Plan`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from provgit.api.incremental import Desired, StageCache, StatusPlans, tree_key
from provgit.api.network import Network, connect, observe_network, remember_writes
from provgit.api.replica_checks import refuse_unfenced
from provgit.api.swaps_across import SwapWaits, break_across
from provgit.apply import ApplyOptions, ApplyResult, apply_plan
from provgit.apply.drift_detect import feed_missed_message
from provgit.apply.drift_detect import review as review_drift
from provgit.apply.hold_release import deferred, held, load_fell, next_release
from provgit.apply.holds import SYSTEM_CLOCK, Clock
from provgit.apply.standing import all_in_sync, down_elements, settle_dead_runs, unfinished
from provgit.apply.status import ALARM_LEVELS, SYNC_COMPLETED, SYNC_INCOMPLETE, synching

# `watch --drift propose`: the drift branch (importing/drift_proposal.py).
from provgit.importing.drift_branch import DriftError
from provgit.importing.drift_proposal import (
    SHOWN as PROPOSAL_SHOWN,
)
from provgit.importing.drift_proposal import (
    Pushed,
    close_proposal,
    drop_local_branch,
    proposal_closed,
    propose_drift,
    push_drift_branch,
    record_proposal,
)
from provgit.journal import NETWORK, DriftItem, Journal, JournalError, PendingUpdate, Suspension
from provgit.journal import leases as lease_ops
from provgit.journal import pool as journal_pool
from provgit.journal.backend import database_errors
from provgit.journal.lease_keeper import published as keeper_published
from provgit.journal.leases import LEADER, Fences, Lease, LeaseDbError, LeaseStore
from provgit.journal.location import JournalLocation, journal_location
from provgit.journal.notify import Listener as RelayListener
from provgit.journal.notify import notify as relay_notify
from provgit.model.common import SecretRef
from provgit.model.settings import Settings
from provgit.model.state import DesiredState
from provgit.observe import Observation, ObservationCache
from provgit.observe.share import headers, load_sharing, share_desired
from provgit.plan import Plan, PlanOptions
from provgit.plan.model import Operation
from provgit.projection import Target
from provgit.report.document import GitSource, build_document
from provgit.report.document_common import status_class
from provgit.secrets import SecretUnavailable, own_credential, redact, resolve
from provgit.source import IGNORED_DIRS, SETTINGS_FILE, ConfigSource, read_directory
from provgit.source.git import CommitReader, GitSourceError, resolve_commit, run_git
from provgit.validate import Validated

__all__ = [
    "ALARM_LEVELS",
    "IGNORED_DIRS",
    "LEADER",
    "NETWORK",
    "PROPOSAL_SHOWN",
    "SETTINGS_FILE",
    "SYNC_COMPLETED",
    "SYNC_INCOMPLETE",
    "SYSTEM_CLOCK",
    "ApplyOptions",
    "ApplyResult",
    "Clock",
    "CommitReader",
    "ConfigSource",
    "Desired",
    "DesiredState",
    "Document",
    "DriftError",
    "DriftItem",
    "Fences",
    "GitSourceError",
    "Journal",
    "JournalError",
    "JournalLocation",
    "Lease",
    "LeaseDbError",
    "LeaseStore",
    "Network",
    "Observation",
    "ObservationCache",
    "Operation",
    "PendingUpdate",
    "Plan",
    "PlanOptions",
    "Pushed",
    "RelayListener",
    "SecretUnavailable",
    "Settings",
    "StageCache",
    "StatusPlans",
    "Suspension",
    "SwapWaits",
    "Target",
    "Validated",
    "all_in_sync",
    "apply_plan",
    "break_across",
    "call_load_fell",
    "close_proposal",
    "connect",
    "database_errors",
    "deferred",
    "down_elements",
    "drop_local_branch",
    "feed_missed_message",
    "headers",
    "held",
    "journal_location",
    "journal_pool",
    "keeper_published",
    "lease_ops",
    "load_sharing",
    "next_release",
    "observe_network",
    "own_credential",
    "proposal_closed",
    "propose_drift",
    "push_drift_branch",
    "read_directory",
    "record_proposal",
    "redact",
    "refuse_unfenced",
    "relay_notify",
    "remember_writes",
    "resolve",
    "resolve_commit",
    "review_drift",
    "run_git",
    "settle_dead_runs",
    "share_desired",
    "status_class",
    "status_document",
    "synching",
    "tree_key",
    "unfinished",
    "webhook_secret",
]

Document = dict[str, Any]


def status_document(
    journal: Journal,
    *,
    network: str | None,
    result: ApplyResult | None = None,
    state: DesiredState | None = None,
    commit: str | None = None,
    config_path: str = ".",
    target: Target | None = None,
    observations: Mapping[str, Observation] | None = None,
    plans: StatusPlans | None = None,
) -> Document:
    """The status document (`provgit.report`) of the watcher's last run:
    derived from the journal and, when given, the run's result, desired state,
    projection, observations and last plans (`StageCache.last_plans`)."""
    git = GitSource(commit=commit, dirty=False, path=config_path) if commit else None
    return build_document(
        journal,
        network=network,
        result=result,
        state=state,
        git=git,
        target=target,
        observations=observations,
        plans=plans[2] if plans else None,
        target_version=plans[0] if plans else None,
        target_delta=plans[1] if plans else None,
    )


async def call_load_fell(
    state: DesiredState, state_dir: Path, config_root: Path, pending: Sequence[PendingUpdate]
) -> list[str]:
    """The elements whose deferred IVR changes the call load would let out now
    (read from those elements only, no run): see `apply.hold_release.load_fell`."""
    names = sorted({p.element for p in deferred(pending)})
    if not names:
        return []
    network = connect(state, state_dir, config_root, names)
    try:
        return await load_fell(state.settings, network.drivers, pending)
    finally:
        await network.close()


def webhook_secret(env: str, file: str | None) -> str | None:
    """The secret a git host signs its webhook deliveries with: the first line
    of `file` when given (absolute, outside the repository), else the variable
    `env`; None when that variable is unset. Raises ValueError (naming the
    reference, never the value) when a given file cannot be read or is empty."""
    if file is None and not os.environ.get(env):
        return None
    try:
        ref = SecretRef(file=file) if file is not None else SecretRef(env=env)
        return resolve(ref, for_element=False)
    except (SecretUnavailable, ValueError) as e:
        raise ValueError(f"webhook secret: {e}") from None
