"""A plan for a pull request comment: summary table first, details folded, bounded size."""

from __future__ import annotations

from collections.abc import Sequence

from provgit.plan.model import ElementPlan, Operation, Plan
from provgit.plan.moves import move_map
from provgit.render.escape import md_code, md_html, md_text
from provgit.render.plan_text import error_line, move_note, summary_line, would_wait_line
from provgit.render.values import short

MARKER = "<!-- provgit-plan -->"
# Errors shown in a comment (the summary line counts them all): a comment is bounded.
MAX_ERRORS = 20


def _op_row(
    op: Operation, waits: bool = False, moving: Sequence[str] = (), swap: str | None = None
) -> str:
    if op.action == "modify":
        detail = "; ".join(
            f"{md_code(f)}: {md_code(short(c.get('before'), 40))} → "
            f"{md_code(short(c.get('after'), 40))}"
            for f, c in op.changes.items()
        )
    elif op.action == "add":
        detail = ", ".join(md_code(f) for f in op.changes)
    else:
        detail = ""
    sign = {"add": "➕ add", "modify": "✏️ modify", "delete": "🗑️ delete"}[op.action]
    if op.claim:
        sign += " (claim: takes ownership)"
    if waits:
        sign += " ⏸️ would wait"
    if moving:
        sign += f" ⏳ {md_text(move_note(moving))}"
    if swap is not None:
        sign += f" ⏳ {md_text(swap)}"
    return f"| {sign} | {md_code(f'{op.collection}/{op.key}')} | {detail} |"


def _state(e: ElementPlan) -> str:
    if not e.observed:
        return f"⚠️ {e.state}"
    if e.refusal:
        return "⛔ refused"
    if e.would_wait:
        return "changes, ⏸️ some would wait"
    return "changes" if e.operations else "✅ in sync"


def render(plan: Plan, max_bytes: int = 60_000) -> str:
    title = "provgit diff" if plan.mode == "diff" else "provgit plan"
    t = plan.totals()
    out = [MARKER, f"### {title}: {md_text(plan.network)}", ""]
    out.append(f"**{md_text(summary_line(plan))}**")
    if plan.source:
        out.append(f"\n<sub>{md_html(plan.source)}</sub>")
    out += ["", "| element | type | add | modify | delete | state |", "|---|---|--:|--:|--:|---|"]
    for e in plan.elements:
        c = e.counts()
        out.append(
            f"| {md_text(e.element)} | {md_text(e.element_type)} | {c['add']} | {c['modify']} "
            f"| {c['delete']} | {_state(e)} |"
        )
    out.append(f"| **total** | | **{t['add']}** | **{t['modify']}** | **{t['delete']}** | |")
    for w in plan.warnings:
        out.append(f"\n> ⚠️ {md_text(w)}")
    for err in plan.errors[:MAX_ERRORS]:
        out.append(f"\n> ❌ **error** {md_text(error_line(err))}")
    if len(plan.errors) > MAX_ERRORS:
        more = len(plan.errors) - MAX_ERRORS
        out.append(f"\n> ❌ … and {more} more resource(s) in error (`--format json` lists all)")
    head = "\n".join(out) + "\n"
    budget = max_bytes - len(head.encode()) - 400
    parts: list[str] = []
    omitted = 0
    for e in plan.elements:
        notes = []
        if e.refusal:
            notes.append(f"> ⛔ {md_text(e.refusal)}")
        if not e.observed:
            notes.append(f"> ⚠️ not observed: {md_text(e.error or e.state)}")
            if e.queued:
                notes.append(
                    f"> {len(e.queued)} change(s) kept as pending updates until it is back"
                )
        notes += [f"> ⚠️ {md_text(w)}" for w in e.warnings]
        notes += [f"> ⏸️ {md_text(would_wait_line(w))}" for w in e.would_wait]
        if not e.operations and not notes:
            continue
        c = e.counts()
        block = [
            "",
            f"<details><summary><b>{md_html(e.element)}</b>: "
            f"+{c['add']} ~{c['modify']} -{c['delete']}</summary>",
            "",
            *notes,
        ]
        if e.operations:
            block += ["", "| action | record | changes |", "|---|---|---|"]
        size = sum(len(x.encode()) + 1 for x in block) + 20
        if size > budget:
            omitted += len(e.operations)
            continue
        budget -= size
        ops = sorted(e.operations, key=lambda o: {"delete": 0, "modify": 1, "add": 2}[o.action])
        waiting = {r for w in e.would_wait for r in w.operations}
        moving = move_map(e)
        swaps = {(s.collection, s.key): s.note() for s in e.swaps}
        for i, op in enumerate(ops):
            ref = (op.collection, op.key)
            row = _op_row(op, ref in waiting, moving.get(ref, ()), swaps.get(ref))
            if len(row.encode()) + 1 > budget:
                omitted += len(ops) - i
                block.append(f"| … | {len(ops) - i} more operation(s) not shown | |")
                break
            budget -= len(row.encode()) + 1
            block.append(row)
        block += ["", "</details>"]
        parts.append("\n".join(block))
    text = head + "\n".join(parts)
    if omitted:
        text += (
            f"\n\n_{omitted} operation(s) not shown to keep this comment under "
            f"{max_bytes:,} bytes; the full plan is in the JSON output (`--format json`)._"
        )
    return text + "\n"
