"""The working state of one element during a run, and how an operation is settled."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from provgit.apply import holds
from provgit.apply import status as st
from provgit.apply.result import ElementResult, OpResult, OpStatus
from provgit.drivers.base import Driver, ElementError
from provgit.plan.model import ElementPlan, Operation

Ref = tuple[str, str]


def initial(ep: ElementPlan) -> ElementResult:
    """An element's result before anything is done: in sync if observed (until
    its work says otherwise), else down with the plan's reason."""
    if ep.observed:
        return ElementResult(
            ep.element,
            ep.element_type,
            st.SYNC_COMPLETED,
            "in_sync",
            ep.state,
            read_only=ep.read_only,
        )
    state = ep.state if ep.state in st.DOWN_STATES else "offline"
    return ElementResult(
        ep.element,
        ep.element_type,
        st.down_status(ep.element, state, ep.element_type),
        "unreachable",
        state,
        error=ep.error,
    )


@dataclass
class ElementWork:
    """Working state of one element during the run."""

    plan: ElementPlan
    driver: Driver | None
    ops: list[Operation]
    result: ElementResult
    done: int = 0
    down: ElementError | None = None  # element-wide failure after retries
    blocked: dict[Ref, str] = field(default_factory=dict)
    held: dict[Ref, tuple[int, str | None]] = field(default_factory=dict)
    # Records of this element with a pending update or distribution error:
    # only those need clearing when a write lands.
    troubled: set[Ref] = field(default_factory=set)
    outcomes: dict[Ref, OpResult] = field(default_factory=dict)
    # Set when a suspension or a sync window held some of its writes.
    hold: holds.Hold | None = None
    # Deletes that wait for the run's creates on other elements (apply/moves.py).
    later: list[Operation] = field(default_factory=list)

    def settle(
        self,
        op: Operation,
        status: OpStatus,
        *,
        message: str | None = None,
        error_type: str | None = None,
        error_id: int | None = None,
        revision: int | None = None,
    ) -> None:
        """`op` is done with `status`; what depends on it is blocked unless ok."""
        result = OpResult(
            op.action,
            op.collection,
            op.key,
            op.kind,
            op.resource,
            status,
            message,
            error_type,
            error_id,
            revision,
        )
        ref = (op.collection, op.key)
        self.outcomes[ref] = result
        self.result.operations.append(result)
        self.done += 1
        if status != "ok":
            self.blocked[ref] = status


def chosen(
    only: frozenset[tuple[str, str, str]] | None, ep: ElementPlan, ops: Sequence[Operation]
) -> list[Operation]:
    """The operations of `ops` a run restricted to `only` records applies (all without)."""
    if only is None:
        return list(ops)
    return [op for op in ops if (ep.element, op.collection, op.key) in only]
