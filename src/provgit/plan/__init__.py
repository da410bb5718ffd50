"""The plan stage: a pure function of (desired, observed, settings) -> `Plan`."""

from provgit.plan.compute import PlanOptions, compute_plan
from provgit.plan.model import ElementPlan, Operation, Plan, PlanFormatError

__all__ = [
    "ElementPlan",
    "Operation",
    "Plan",
    "PlanFormatError",
    "PlanOptions",
    "compute_plan",
]
