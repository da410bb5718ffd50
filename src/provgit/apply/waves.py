"""Cut one element's operations, in plan order, into waves (pure).

A wave is a run of consecutive operations of the same collection and action
where none needs another of the same wave: its operations may go out side by
side (as batches, several in flight); the next wave waits for it, so an add
never races the modify that frees its DN.
"""

from __future__ import annotations

from collections.abc import Sequence

from provgit.plan.model import Operation

Ref = tuple[str, str]


def waves(ops: Sequence[Operation]) -> list[list[Operation]]:
    """Cut the plan order into waves whose operations may run side by side."""
    out: list[list[Operation]] = []
    current: list[Operation] = []
    refs: set[Ref] = set()
    group: tuple[str, str] | None = None
    for op in ops:
        g = (op.collection, op.action)
        if current and (g != group or any(d in refs for d in op.depends_on)):
            out.append(current)
            current, refs = [], set()
        group = g
        current.append(op)
        refs.add((op.collection, op.key))
    if current:
        out.append(current)
    return out
