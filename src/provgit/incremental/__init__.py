"""Incremental planning: re-plan only what changed since the last plan.

One package for both users of it:

- the CLI (`provgit plan`, `apply`, `reconcile`) keeps, on disk, what the last
  full plan knew of each element (`disk.PlanMemo`) and the projected target
  (`store.TargetStore`); while nothing the projection depends on changed, the
  next plan reads each element's change feed and re-plans the records it names;
  after a config change, `shared` (what each file defined, which records each
  resource became) bounds what to project and plan again;
- the watcher keeps the same per element in memory (`memory.MemorySession`),
  with the numbered projection it was planned against and the records a
  reprojection moved.

Both hold one `known.Known` per element and run one loop
(`session.plan_incrementally` over `replan.replan`); the result equals the full
plan (`plan.compute.compute_plan`), which tests/plan/test_memo.py and
tests/plan/test_incremental.py hold it to over random edits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from provgit.lazy import lazy_exports

if TYPE_CHECKING:
    from provgit.incremental.known import Known, known_of
    from provgit.incremental.memory import MemorySession, StatusPlans
    from provgit.incremental.replan import replan, replan_element
    from provgit.incremental.session import Replan, plan_incrementally

# Loaded on first use (PEP 562): a status reads the plan memo (`disk`, `store`)
# and importing them runs this file first; the re-plan loop loads the plan
# computation, the projection and the observation reads.
_LAZY: dict[str, str] = {
    "Known": "provgit.incremental.known",
    "known_of": "provgit.incremental.known",
    "MemorySession": "provgit.incremental.memory",
    "StatusPlans": "provgit.incremental.memory",
    "replan": "provgit.incremental.replan",
    "replan_element": "provgit.incremental.replan",
    "Replan": "provgit.incremental.session",
    "plan_incrementally": "provgit.incremental.session",
}


__getattr__ = lazy_exports(__name__, _LAZY, globals())


__all__ = [
    "Known",
    "MemorySession",
    "Replan",
    "StatusPlans",
    "known_of",
    "plan_incrementally",
    "replan",
    "replan_element",
]
