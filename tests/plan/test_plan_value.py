"""The Plan value: JSON round trip, content digest, format errors, renderers."""

from __future__ import annotations

import dataclasses
import json

import pytest
from rich.console import Console

from provgit.plan import ElementPlan, Operation, Plan, PlanFormatError
from provgit.render import plan_markdown, plan_text


def _plan(n_ops: int = 3) -> Plan:
    ops = tuple(
        Operation(
            "add" if i % 3 else "delete",
            "users",
            f"user{i:05d}",
            "users",
            f"user{i:05d}",
            changes={"first_name": {"after": f"Name {i}"}, "pin": {"after": {"$sensitive": "ab"}}},
            fields={"first_name": f"Name {i}"},
        )
        for i in range(n_ops)
    )
    return Plan(
        "net",
        (
            ElementPlan("mivb1", "mivb", "running", 7, ops),
            ElementPlan("mivb2", "mivb", "offline", None, error="connection refused"),
            ElementPlan("mcl", "micollab", "running", 3),
        ),
        commit="abc",
    )


def test_json_round_trip_keeps_checksum_and_revisions() -> None:
    plan = _plan()
    again = Plan.loads(plan.dumps())
    assert again.checksum() == plan.checksum()
    assert again.element("mivb1") is not None and again.element("mivb1").observed_revision == 7  # type: ignore[union-attr]
    doc = json.loads(plan.dumps())
    assert doc["format"] == "provgit.plan/3"
    assert doc["elements"][0]["counts"] == {"add": 2, "modify": 0, "delete": 1}
    assert doc["totals"] == {"add": 2, "modify": 0, "delete": 1}


def test_options_it_was_planned_with_round_trip() -> None:
    plan = dataclasses.replace(_plan(), prune=True, allow_updates=True)
    doc = json.loads(plan.dumps())
    assert doc["options"] == {"prune": True, "allow_mass_delete": False, "allow_mass_update": True}
    again = Plan.loads(plan.dumps())
    assert (again.prune, again.allow_deletes, again.allow_updates) == (True, False, True)


@pytest.mark.parametrize("text", ["not json", "{}", '{"format": "provgit.plan/2"}'])
def test_not_a_plan_is_a_clear_error(text: str) -> None:
    with pytest.raises(PlanFormatError):
        Plan.loads(text)


def test_sensitive_values_render_as_sensitive() -> None:
    text = _plan().dumps()
    assert '"$sensitive"' not in text.split('"fields"')[0]
    assert "(sensitive)" in text


def test_text_puts_destructive_changes_first_and_summary_last() -> None:
    console = Console(record=True, width=200)
    plan_text.render(_plan(), console)
    out = console.export_text()
    lines = [x.strip() for x in out.splitlines() if x.strip()]
    ops = [x for x in lines if x.startswith(("+", "-", "~"))]
    assert ops[0].startswith("- delete")
    assert lines[-1].startswith("Summary: 2 to add, 0 to modify, 1 to delete on 1 of 3 element(s)")
    assert "1 in sync" in lines[-1] and "1 not reachable (mivb2)" in lines[-1]
    assert "not observed: connection refused" in out


def test_markdown_is_bounded_and_says_what_was_cut() -> None:
    md = plan_markdown.render(_plan(5000), max_bytes=8000)
    assert len(md.encode()) <= 8000
    assert md.startswith(plan_markdown.MARKER)
    assert md.index("| element |") < md.index("<details>")
    assert "operation(s) not shown to keep this comment under 8,000 bytes" in md


def test_markdown_small_plan_shows_every_operation() -> None:
    md = plan_markdown.render(_plan(3))
    assert md.count("| ➕ add |") == 2 and md.count("| 🗑️ delete |") == 1
    assert "not shown" not in md


def test_only_keeps_the_named_elements_and_their_revisions() -> None:
    plan = _plan()
    part = plan.only(["mivb2", "mcl"])
    assert [e.element for e in part.elements] == ["mivb2", "mcl"]
    assert part.network == plan.network and part.commit == plan.commit
    assert part.totals() == {"add": 0, "modify": 0, "delete": 0}
    assert plan.only(["mivb1"]).totals() == plan.totals()
