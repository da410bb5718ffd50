"""A plan for people at a terminal: per element, destructive changes first, summary last."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.text import Text

from provgit.plan.errors import ResourceError
from provgit.plan.model import ElementPlan, Operation, Plan, WouldWait
from provgit.plan.moves import move_map
from provgit.registry import KEYED_APART
from provgit.render.escape import visible
from provgit.render.values import short

_MARK = {"delete": ("-", "red"), "modify": ("~", "yellow"), "add": ("+", "green")}
_DISPLAY_ORDER = {"delete": 0, "modify": 1, "add": 2}


def summary_line(plan: Plan) -> str:
    t = plan.totals()
    changed = [e for e in plan.elements if e.operations]
    in_sync = [e for e in plan.elements if e.observed and not e.operations]
    unreachable = [e for e in plan.elements if not e.observed]
    parts = [
        f"{t['add']} to add, {t['modify']} to modify, {t['delete']} to delete "
        f"on {len(changed)} of {len(plan.elements)} element(s)"
    ]
    if in_sync:
        parts.append(f"{len(in_sync)} in sync")
    if unreachable:
        names = ", ".join(e.element for e in unreachable)
        queued = sum(len(e.queued) for e in unreachable)
        parts.append(
            f"{len(unreachable)} not reachable ({names})"
            + (f", {queued} change(s) kept for it as pending updates" if queued else "")
        )
    waiting = plan.waiting()
    if waiting:
        parts.append(
            f"{waiting} would wait if applied now (a suspension, a sync window or the call load)"
        )
    if plan.refused:
        parts.append(f"{len(plan.refused)} refused for safety")
    if plan.errors:
        parts.append(f"{len(plan.errors)} resource(s) in error")
    return "; ".join(parts)


def error_line(e: ResourceError) -> str:
    """One resource apply would refuse on every element, and why (no value)."""
    return (
        f"{e.kind}/{e.resource}: {e.message}; apply writes it on none of its elements "
        f"({', '.join(e.elements)})"
    )


def would_wait_line(w: WouldWait) -> str:
    """One element's operations a hold would keep back, and why."""
    return f"would wait: {w.reason}: {len(w.operations)} operation(s)"


def move_note(to: Sequence[str]) -> str:
    """What a plan says of a move's delete (plan/moves.py)."""
    return f"move: waits for the create on {', '.join(to)}; deleted here once it is there"


def _op_lines(
    op: Operation,
    detail: bool,
    waits: bool = False,
    moving: Sequence[str] = (),
    swap: str | None = None,
) -> list[Text]:
    mark, style = _MARK[op.action]
    head = Text(f"  {mark} {op.action:<6} ", style=style)
    # Keys and field names may be an element's own (a record it holds, a
    # field it added): shown, not sent to the terminal (`visible`).
    head.append(f"{op.collection}/{visible(op.key)}", style="bold")
    if op.collection in KEYED_APART or op.resource != op.key:
        head.append(f"  ({op.kind}/{visible(op.resource)})", style="dim")
    if op.claim:
        head.append("  claim: not provgit's yet, takes ownership", style="bold yellow")
    if waits:
        head.append("  (would wait)", style="magenta")
    if moving:
        head.append(f"  ({move_note(moving)})", style="magenta")
    if swap is not None:
        head.append(f"  ({swap})", style="magenta")
    lines = [head]
    if not detail:
        return lines
    for field, change in op.changes.items():
        line = Text(f"      {visible(field)}: ")
        if op.action == "modify":
            line.append(short(change.get("before")), style="red")
            line.append(" -> ")
            line.append(short(change.get("after")), style="green")
        elif op.action == "add":
            line.append(short(change.get("after")), style="green")
        else:
            continue  # a delete lists the record in one line; details are in --format json
        lines.append(line)
    return lines


def _element(e: ElementPlan, limit: int | None) -> list[Text]:
    head = Text(f"{e.element}", style="bold cyan")
    head.append(f" ({e.element_type}", style="dim")
    head.append(
        f", revision {e.observed_revision})" if e.observed else f", {e.state})", style="dim"
    )
    out = [head]
    if not e.observed:
        if not e.queued:
            out.append(Text(f"  not observed: {e.error or e.state}; nothing planned", style="red"))
            return out
        out.append(
            Text(
                f"  not observed: {e.error or e.state}; {len(e.queued)} change(s) against "
                "what it last held, kept as pending updates until it is back:",
                style="red",
            )
        )
        queued = sorted(e.queued, key=lambda o: _DISPLAY_ORDER[o.action])
        for op in queued if limit is None else queued[:limit]:
            out.extend(_op_lines(op, detail=False))
        if limit is not None and len(queued) > limit:
            out.append(Text(f"  … and {len(queued) - limit} more (use --full)", style="dim"))
        return out
    if e.refusal:
        out.append(Text(f"  REFUSED: {e.refusal}", style="bold red"))
    for w in e.warnings:
        out.append(Text(f"  warning: {w}", style="yellow"))
    for ww in e.would_wait:
        out.append(Text(f"  {would_wait_line(ww)}", style="magenta"))
    waiting = {r for ww in e.would_wait for r in ww.operations}
    ops = sorted(e.operations, key=lambda o: _DISPLAY_ORDER[o.action])
    if not ops:
        out.append(Text("  in sync", style="green"))
    shown = ops if limit is None else ops[:limit]
    moving = move_map(e)
    swaps = {(s.collection, s.key): s.note() for s in e.swaps}
    for op in shown:
        ref = (op.collection, op.key)
        out.extend(_op_lines(op, True, ref in waiting, moving.get(ref, ()), swaps.get(ref)))
    if len(shown) < len(ops):
        out.append(Text(f"  … and {len(ops) - len(shown)} more (use --full)", style="dim"))
    return out


def render(plan: Plan, console: Console, limit: int | None = 200) -> None:
    title = "Diff" if plan.mode == "diff" else "Plan"
    head = f"{title} for network {plan.network}"
    if plan.source:
        head += f" ({plan.source})"
    console.print(Text(head, style="bold"))
    for w in plan.warnings:
        console.print(Text(f"warning: {w}", style="yellow"))
    errors = plan.errors if limit is None else plan.errors[:limit]
    for err in errors:
        console.print(Text(f"error: {error_line(err)}", style="bold red"), soft_wrap=True)
    if len(errors) < len(plan.errors):
        more = len(plan.errors) - len(errors)
        console.print(Text(f"… and {more} more resource(s) in error (use --full)", style="dim"))
    # Elements with destructive changes first, then the rest in config order.
    elements = sorted(
        plan.elements, key=lambda e: (not e.refusal, not any(o.destructive for o in e.operations))
    )
    for e in elements:
        console.print()
        # One print per element: rich's cost is per call, not per line.
        console.print(Text("\n").join(_element(e, limit)), soft_wrap=True)
    console.print()
    console.print(Text("Summary: " + summary_line(plan), style="bold"))
