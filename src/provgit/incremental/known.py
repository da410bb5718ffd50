"""What the last plan knew of one element: the record both incremental paths keep."""

from __future__ import annotations

from dataclasses import dataclass

from provgit.plan.model import ElementPlan, Operation
from provgit.plan.options import PlanOptions


@dataclass(frozen=True)
class Known:
    """One element as its last plan left it.

    `version` names the projection the plan was made against: the inputs
    digest on disk (`disk.PlanMemo`), the projection serial in memory
    (`memory.MemorySession`). `keys` is what the element held, by collection,
    when nothing else says so (on disk: the run reads only the change feed);
    None when the observation holds every record (in memory). `options`: the
    planning options, when the version does not already cover them (None).
    """

    version: str | int
    revision: int
    operations: tuple[Operation, ...]
    warnings: dict[str, str]  # "collection/key" -> warning
    keys: dict[str, list[str]] | None = None
    options: PlanOptions | None = None


def warnings_by_record(plan: ElementPlan) -> dict[str, str]:
    """An element plan's warnings by the record they name (`collection/key …`)."""
    return {w.split(" ", 1)[0]: w for w in plan.warnings}


def known_of(
    plan: ElementPlan,
    version: str | int,
    keys: dict[str, list[str]] | None = None,
    options: PlanOptions | None = None,
) -> Known:
    """What to keep of an element's plan (it must have observed the element)."""
    assert plan.observed_revision is not None
    # A swap's steps are not kept: the plan from this memo breaks the cycle again.
    ops = plan.operations if plan.unbroken is None else plan.unbroken
    return Known(version, plan.observed_revision, ops, warnings_by_record(plan), keys, options)
