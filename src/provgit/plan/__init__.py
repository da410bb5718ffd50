"""The plan stage: a pure function of (desired, observed, settings) -> `Plan`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from provgit.lazy import lazy_exports

if TYPE_CHECKING:
    from provgit.plan.compute import compute_plan
    from provgit.plan.model import ElementPlan, Operation, Plan, PlanFormatError
    from provgit.plan.options import PlanOptions

# Loaded on first use (PEP 562): a status reads `plan.model` and `plan.options`
# (the memo), and importing any submodule runs this file first; the
# computation loads the projection, the observation reads and the ordering.
_LAZY: dict[str, str] = {
    "ElementPlan": "provgit.plan.model",
    "Operation": "provgit.plan.model",
    "Plan": "provgit.plan.model",
    "PlanFormatError": "provgit.plan.model",
    "PlanOptions": "provgit.plan.options",
    "compute_plan": "provgit.plan.compute",
}


__getattr__ = lazy_exports(__name__, _LAZY, globals())


__all__ = [
    "ElementPlan",
    "Operation",
    "Plan",
    "PlanFormatError",
    "PlanOptions",
    "compute_plan",
]
