"""A move's delete is marked in the plan (plan/moves.py): kept through the
JSON form and the signature, shown by the renderers; a plan without one
serializes as before."""

from __future__ import annotations

import dataclasses
import json

import pytest
from rich.console import Console

from provgit.model.settings import Settings
from provgit.plan import ElementPlan, Operation, Plan, signing
from provgit.plan.compute import PlanOptions, gather
from provgit.plan.moves import Move, unmarked_moves
from provgit.render import plan_markdown, plan_text
from provgit.secrets import FROM_SECRET_KEY, NetworkKey

KEY = NetworkKey(b"k" * 32, FROM_SECRET_KEY, "env:PROVGIT_SECRET_KEY")


def _op(action: str, collection: str, key: str, resource: str | None = None) -> Operation:
    fields = None if action == "delete" else {"login_id": key}
    return Operation(action, collection, key, "users", resource or key, {}, fields)  # type: ignore[arg-type]


def _moved() -> Plan:
    """alice moves from cs1 to cs2 (a directory entry the other way); bob is removed."""
    elements = [
        ElementPlan(
            "cs1",
            "mivb",
            "running",
            4,
            (_op("delete", "users", "alice"), _op("delete", "users", "bob")),
        ),
        ElementPlan("cs2", "mivb", "running", 4, (_op("add", "users", "alice"),)),
        ElementPlan("mcl", "micollab", "running", 2, (_op("add", "users", "bob"),)),
    ]
    return gather(elements, (), Settings(network="net"), PlanOptions(), None, None)


def test_the_delete_of_a_moved_user_waits_for_its_new_host_and_a_removal_does_not() -> None:
    plan = _moved()
    cs1 = plan.element("cs1")
    assert cs1 is not None
    # bob is created on mcl, another element type: not where it moves.
    assert cs1.moves == (Move("users", "alice", ("cs2",)),)
    assert all(not e.moves for e in plan.elements if e.element != "cs1")


def test_moves_survive_the_json_form_and_the_signature() -> None:
    plan = _moved()
    again = Plan.loads(plan.dumps())
    assert again.checksum() == plan.checksum()
    assert again.element("cs1").moves == plan.element("cs1").moves  # type: ignore[union-attr]
    verified = signing.verify(signing.signed_text(plan, KEY), KEY)
    assert verified.element("cs1").moves == (Move("users", "alice", ("cs2",)),)  # type: ignore[union-attr]
    # Cut to the old element (apply --element): the mark stays with it.
    assert plan.only(("cs1",)).element("cs1").moves == plan.element("cs1").moves  # type: ignore[union-attr]


def test_a_plan_without_moves_serializes_as_before() -> None:
    plan = Plan("net", (ElementPlan("cs1", "mivb", "running", 4, (_op("delete", "users", "x"),)),))
    assert "moves" not in json.loads(plan.dumps())["elements"][0]


def test_the_plan_says_the_delete_waits_for_the_create() -> None:
    plan = _moved()
    console = Console(record=True, width=200)
    plan_text.render(plan, console)
    lines = [x for x in console.export_text().splitlines() if "delete" in x and "users/" in x]
    alice = next(x for x in lines if "users/alice" in x)
    bob = next(x for x in lines if "users/bob" in x)
    assert "move: waits for the create on cs2; deleted here once it is there" in alice
    assert "move" not in bob
    md = plan_markdown.render(plan)
    row = next(x for x in md.splitlines() if "users/alice" in x and "delete" in x)
    assert "waits for the create on cs2" in row


def test_a_signed_plan_whose_move_mark_was_removed_is_refused() -> None:
    # Without its mark the old host's delete would go out at once: the user
    # without a phone until the new host has it.
    doc = json.loads(signing.signed_text(_moved(), KEY))
    cs1 = next(e for e in doc["elements"] if e["element"] == "cs1")
    del cs1["moves"]
    with pytest.raises(signing.PlanSignatureError):
        signing.verify(json.dumps(doc), KEY)


def _renamed_move() -> Plan:
    """alice (DN 2001) moves from cs1 to cs2 and is renamed alice2 on the way."""
    gone = Operation(
        "delete", "users", "alice", "users", "alice", {"services": {"before": [{"dn": "2001"}]}}
    )
    made = Operation(
        "add", "users", "alice2", "users", "alice2", None, {"services": [{"dn": "2001"}]}
    )
    elements = [
        ElementPlan("cs1", "mivb", "running", 4, (gone,)),
        ElementPlan("cs2", "mivb", "running", 4, (made,)),
    ]
    return gather(elements, (), Settings(network="net"), PlanOptions(), None, None)


def test_a_move_that_renames_is_paired_by_the_person_and_signed_with_its_new_key() -> None:
    plan = _renamed_move()
    want = (Move("users", "alice", ("cs2",), "alice2"),)
    assert plan.element("cs1").moves == want  # type: ignore[union-attr]
    verified = signing.verify(signing.signed_text(plan, KEY), KEY)
    assert verified.element("cs1").moves == want  # type: ignore[union-attr]
    # The new key is signed: a plan pointing the wait at another record is refused.
    doc = json.loads(signing.signed_text(plan, KEY))
    cs1 = next(e for e in doc["elements"] if e["element"] == "cs1")
    cs1["moves"][0]["as"] = "mallory"
    with pytest.raises(signing.PlanSignatureError):
        signing.verify(json.dumps(doc), KEY)


def test_a_plain_move_serializes_without_a_new_key() -> None:
    cs1 = json.loads(_moved().dumps())["elements"][0]
    assert cs1["moves"] == [{"collection": "users", "key": "alice", "to": ["cs2"]}]


def test_a_saved_plan_whose_renaming_move_is_not_held_back_is_refused_on_apply() -> None:
    # Saved (and signed) by a provgit that paired moves by record key only:
    # its old host's delete would go out at once. Apply refuses it; planning
    # again marks it.
    old = _renamed_move()
    old = Plan(
        old.network,
        tuple(dataclasses.replace(e, moves=()) for e in old.elements),
        mode=old.mode,
    )
    again = Plan.loads(signing.verify(signing.signed_text(old, KEY), KEY).dumps())
    problems = unmarked_moves(again.elements)
    assert len(problems) == 1 and "cs1" in problems[0], problems
    assert "users/alice" in problems[0] and "cs2 as users/alice2" in problems[0]
    assert "provgit plan" in problems[0]
    assert unmarked_moves(_renamed_move().elements) == []
    assert unmarked_moves(_moved().elements) == []
    # Cut to the old host (apply --element cs1): still held back.
    assert unmarked_moves(_renamed_move().only(("cs1",)).elements) == []


def _renumbered_move() -> Plan:
    """alice (DN 2001 on cs1) becomes alice2 (DN 2005 on cs2): nothing of the
    call servers' records is common; the MiCollab's records carry the email."""
    email = "alice.martin@example.com"

    def before(fields: dict[str, object]) -> dict[str, object]:
        return {k: {"before": v} for k, v in fields.items()}

    def op(action: str, key: str, fields: dict[str, object]) -> Operation:
        if action == "delete":
            return Operation("delete", "users", key, "users", key, before(fields))  # type: ignore[arg-type]
        return Operation("add", "users", key, "users", key, None, fields)

    elements = [
        ElementPlan(
            "cs1", "mivb", "running", 4, (op("delete", "alice", {"services": [{"dn": "2001"}]}),)
        ),
        ElementPlan(
            "cs2", "mivb", "running", 4, (op("add", "alice2", {"services": [{"dn": "2005"}]}),)
        ),
        ElementPlan(
            "mcl",
            "micollab",
            "running",
            2,
            (op("delete", "alice", {"email": email}), op("add", "alice2", {"email": email})),
        ),
    ]
    return gather(elements, (), Settings(network="net"), PlanOptions(), None, None)


def test_a_saved_plan_whose_move_paired_by_the_micollabs_email_is_not_held_back_is_refused() -> (
    None
):
    # A plan saved by a provgit that paired a person within one element type:
    # renamed and renumbered, the move went unmarked and cs1 would delete
    # alice at once. Planned now it is held; the old saved plan is refused.
    plan = _renumbered_move()
    assert plan.element("cs1").moves == (Move("users", "alice", ("cs2",), "alice2"),)  # type: ignore[union-attr]
    assert plan.element("mcl").moves == ()  # type: ignore[union-attr]
    old = Plan(
        plan.network, tuple(dataclasses.replace(e, moves=()) for e in plan.elements), mode=plan.mode
    )
    again = Plan.loads(signing.verify(signing.signed_text(old, KEY), KEY).dumps())
    problems = unmarked_moves(again.elements)
    assert len(problems) == 1 and problems[0].startswith("cs1: "), problems
    assert "cs2 as users/alice2" in problems[0] and "provgit plan" in problems[0]
    assert unmarked_moves(plan.elements) == []
