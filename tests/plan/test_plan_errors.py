"""A plan names the resources apply would refuse to write at all (unresolvable secrets)."""

from __future__ import annotations

import json

from provgit.plan.errors import resource_errors, secret_warnings
from provgit.plan.model import ElementPlan, Operation, Plan
from provgit.render import plan_markdown


def _user(login: str, pin: str | None, action: str = "add") -> Operation:
    fields: dict[str, object] = {"login_id": login}
    if pin is not None:
        fields["voicemail_pin"] = {"$sensitive": pin, "ref": f"env:PIN_{login.upper()}"}
    return Operation(action, "users", login, "users", login, fields=fields)  # type: ignore[arg-type]


def _plan(*elements: ElementPlan) -> Plan:
    return Plan(network="n", elements=elements)


def test_a_new_or_changed_resource_with_an_unresolved_secret_is_an_error() -> None:
    mcl = ElementPlan(
        "mcl",
        "micollab",
        "running",
        1,
        (
            _user("jdoe", "unresolved"),
            _user("ok", "a1b2c3"),
            _user("mod", "unresolved", "modify"),
        ),
    )
    cs = ElementPlan("cs1", "mivb", "running", 1, (_user("jdoe", None),))
    plan = _plan(mcl, cs)
    errors = {(e.kind, e.resource): e for e in plan.errors}
    assert set(errors) == {("users", "jdoe"), ("users", "mod")}
    assert errors[("users", "jdoe")].elements == ("mcl", "cs1")
    assert errors[("users", "jdoe")].message == "secret {env: PIN_JDOE} is not set"
    # Saved and read back: the same errors, and the checksum still holds.
    again = Plan.loads(plan.dumps())
    assert again.errors == plan.errors
    assert json.loads(plan.dumps())["errors"][0]["references"] == ["env:PIN_JDOE"]
    # A reference already an error is not also a warning.
    assert secret_warnings(["env:PIN_JDOE", "env:OTHER"], resource_errors([mcl])) == (
        "secret env:OTHER cannot be resolved here: records using it are compared without it",
    )


def test_markdown_errors_are_bounded_and_user_text_is_not_markup() -> None:
    many = [_user(f"u{i}", "unresolved") for i in range(24)]
    ops = (*many, _user("x`<b>y", "unresolved"))
    text = plan_markdown.render(_plan(ElementPlan("mcl", "micollab", "running", 1, ops)))
    assert "25 resource(s) in error" in text
    assert text.count("**error**") == plan_markdown.MAX_ERRORS
    assert "… and 5 more resource(s) in error" in text
    ops = (_user("x`<b>y", "unresolved"),)
    text = plan_markdown.render(_plan(ElementPlan("mcl", "micollab", "running", 1, ops)))
    line = next(x for x in text.splitlines() if "**error**" in x)
    assert "<b>" not in line and "\\`" in line
