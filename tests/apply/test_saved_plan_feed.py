"""A saved plan made with a full read carries what that read found (signed
with it): its apply says what the feed missed once, however often the file
is applied, records the full read where the state directory holds the content
it verified, and a plan whose feed facts were edited is refused.

Real simulator processes; the lie is an edit straight into cs1's database
file (neither its feed nor its content digest knows).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from provgit.observe import ObservationCache

from .helpers import Sim, cli, journal, write_config

pytestmark = pytest.mark.slow

MISMATCH = "plan signature does not match"


def _edit_cos7(sim: Sim, comment: str) -> None:
    with sqlite3.connect(sim.db) as db:
        (text,) = db.execute(
            "SELECT fields FROM records WHERE collection='cos' AND key='7'"
        ).fetchone()
        db.execute(
            "UPDATE records SET fields = ? WHERE collection = 'cos' AND key = '7'",
            (json.dumps(dict(json.loads(text), comment=comment)),),
        )


def _ok(*args: str, codes: tuple[int, ...] = (0,)) -> str:
    ran = cli(*args)
    assert ran.code in codes, ran.out + ran.err
    return ran.err


def _in_sync(tmp_path: Path, sims: list[Sim], extra: str = "") -> Path:
    root = write_config(tmp_path / "config", sims, users=4, extra_settings=extra)
    for _ in range(2):  # the second run takes the memo path
        _ok("reconcile", str(root))
    return root


def _feed_missed(state: Path) -> list[str | None]:
    with journal(state) as j:
        return [e.element for e in j.events() if e.type == "feed_missed"]


def _check(plan: Path, element: str) -> dict[str, Any] | None:
    doc = json.loads(plan.read_text())
    found = next(e for e in doc["elements"] if e["element"] == element)
    check: dict[str, Any] | None = found.get("feed_check")
    return check


def test_apply_of_a_saved_plan_says_what_its_full_read_found_once(
    sims: list[Sim], tmp_path: Path
) -> None:
    root = _in_sync(tmp_path, sims, "drift:\n  mode: report\n")
    state = root / ".provgit"
    cs1 = sims[0]
    _edit_cos7(cs1, "Restored")
    plan = tmp_path / "plan.json"
    _ok("plan", str(root), "--full-read", "--out", str(plan))
    check = _check(plan, "cs1")
    assert check is not None and check["missed"] == [["cos", "7"]], check
    # cs1's own digest disagrees with what it holds: not kept (not trusted).
    assert check["digest"] is None and isinstance(check["at"], float)
    other = _check(plan, "cs2")
    assert other is not None and other["missed"] == [] and other["digest"], other
    assert _feed_missed(state) == []  # a plan says nothing yet
    # Report mode: the drift is held (exit 4), so nothing moves cs1's
    # revision and the same file applies again.
    for _ in range(2):
        _ok("apply", str(plan), "--config", str(root), "--yes", codes=(4,))
        assert cs1.records()["cos"]["7"]["comment"] == "Restored"
        assert _feed_missed(state) == ["cs1"]
    with journal(state) as j:
        assert [(d.element, d.key) for d in j.drift_items()] == [("cs1", "7")]
    assert ObservationCache(state).missed("cs1") == frozenset()  # reviewed


def test_a_saved_plan_whose_feed_facts_were_edited_is_refused(
    sims: list[Sim], tmp_path: Path
) -> None:
    root = _in_sync(tmp_path, sims)
    cs1 = sims[0]
    _edit_cos7(cs1, "Restored")
    plan = tmp_path / "plan.json"
    _ok("plan", str(root), "--full-read", "--out", str(plan))
    doc = json.loads(plan.read_text())
    for e in doc["elements"]:
        e.pop("feed_check", None)  # hide that cs1's feed lied
    plan.write_text(json.dumps(doc))
    ran = cli("apply", str(plan), "--config", str(root), "--yes")
    assert ran.code == 3 and MISMATCH in ran.err, ran.out + ran.err
    assert cs1.records()["cos"]["7"]["comment"] == "Restored"
    assert _feed_missed(root / ".provgit") == []


def test_a_saved_plans_full_read_is_recorded_where_the_state_holds_what_it_verified(
    sims: list[Sim], tmp_path: Path
) -> None:
    root = _in_sync(tmp_path, sims)
    state = root / ".provgit"
    other = tmp_path / "apply-job"
    shutil.copytree(state, other)  # the same key, the same copies of the elements
    # A copied cache is not vouched for (its stamps name the files' identity)
    # until a run there reads the elements at its revision.
    _ok("plan", str(root), "--state-dir", str(other))
    before = ObservationCache(other).full_read_at("cs1")
    plan = tmp_path / "plan.json"
    _ok("plan", str(root), "--full-read", "--out", str(plan))
    check = _check(plan, "cs1")
    assert check is not None and check["missed"] == [] and check["digest"]
    _ok("apply", str(plan), "--config", str(root), "--yes", "--state-dir", str(other))
    assert before is not None and before < check["at"]
    assert ObservationCache(other).full_read_at("cs1") == check["at"]


def test_a_saved_plans_full_read_is_not_recorded_over_a_copy_it_did_not_verify(
    sims: list[Sim], tmp_path: Path
) -> None:
    root = _in_sync(tmp_path, sims, "drift:\n  mode: report\n")
    other = tmp_path / "apply-job"
    shutil.copytree(root / ".provgit", other)
    _ok("plan", str(root), "--state-dir", str(other))
    before = ObservationCache(other).full_read_at("cs1")
    _edit_cos7(sims[0], "Restored")
    plan = tmp_path / "plan.json"
    _ok("plan", str(root), "--full-read", "--out", str(plan))
    err = _ok(
        "apply", str(plan), "--config", str(root), "--yes", "--state-dir", str(other), codes=(4,)
    )
    # That state directory's copy of cs1 still says cos/7 is "Sales".
    assert ObservationCache(other).full_read_at("cs1") == before
    assert "cs1: the plan's full read is not recorded here" in err, err
    assert _feed_missed(other) == ["cs1"]
