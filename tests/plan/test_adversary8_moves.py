"""adversary8: two users may share an email (the config does not forbid it,
and pairing folds its case). A new hire on the moving user's old host given
the moving user's email made the old host look like it re-created the person
itself (renamed in place), so the old host's delete ran at once: with the new
host down, the user was on no call server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_plan_cases import run_case

USER = {
    "first_name": "Alice",
    "last_name": "Martin",
    "department": "Sales",
    "location": "Ottawa",
    "role": "Agent",
}
EMAIL = "alice.martin@example.com"


def _case(hire_email: str, offline: list[str]) -> dict[str, Any]:
    alice = dict(USER, login_id="alice", host="mivb1", email=EMAIL, services=[{"dn": "2001"}])
    moved = dict(USER, login_id="alice2", host="mivb4", email=EMAIL, services=[{"dn": "2005"}])
    hire = dict(USER, login_id="bob", first_name="Bob", host="mivb1", email=hire_email)
    hire["services"] = [{"dn": "2009"}]
    return {
        "desired_before": {"users": [alice]},
        "desired": {"users": [moved, hire]},
        "offline": offline,
    }


@pytest.mark.parametrize("hire_email", [EMAIL, "Alice.Martin@Example.COM"], ids=["same", "case"])
@pytest.mark.parametrize("offline", [[], ["mivb4"]], ids=["up", "new-host-down"])
def test_a_hire_on_the_old_host_sharing_the_movers_email_does_not_release_its_delete(
    hire_email: str, offline: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = run_case(_case(hire_email, offline), tmp_path, monkeypatch)
    moves = {e.element: [(m.key, m.to, m.as_key) for m in e.moves] for e in plan.elements}
    # alice's old hosts (mivb1 and its partner) keep her until mivb4 has alice2.
    assert moves["mivb1"] == [("alice", ("mivb4",), "alice2")]
    assert moves["mivb2"] == [("alice", ("mivb4",), "alice2")]
    assert moves["mcl"] == []  # the MiCollab re-creates her itself
