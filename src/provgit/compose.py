"""Moved to the library API: `provgit.api.network` (connect, observe, remember
writes) and `provgit.api.planning` (plan, diff, status inputs).

Re-exported here for the callers not yet on the API (the watcher, the
benchmarks, some tests); new code uses `provgit.api`.
"""

from __future__ import annotations

from provgit.api.network import (
    Network,
    connect,
    desired_target,
    fingerprinter,
    landed_writes,
    observe_network,
    remember_writes,
)
from provgit.api.planning import (
    PlanRun,
    StatusInputs,
    diff_states,
    plan_from_memo,
    plan_network,
    status_inputs,
)

__all__ = [
    "Network",
    "PlanRun",
    "StatusInputs",
    "connect",
    "desired_target",
    "diff_states",
    "fingerprinter",
    "landed_writes",
    "observe_network",
    "plan_from_memo",
    "plan_network",
    "remember_writes",
    "status_inputs",
]
