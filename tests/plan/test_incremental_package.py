"""`provgit.incremental`: what the last plan knew of an element survives the
disk the way status reads it, and the modules it came from still answer."""

from __future__ import annotations

from pathlib import Path

from provgit.incremental.disk import PlanMemo
from provgit.incremental.known import known_of
from provgit.plan.model import ElementPlan, Operation
from provgit.report.element_facts import _load_memo


def _plan() -> ElementPlan:
    op = Operation(
        "modify",
        "users",
        "u1",
        "user",
        "u1",
        changes={"first_name": {"before": "Ann", "after": "Bob"}},
        fields={"first_name": "Bob"},
        if_revision=7,
    )
    return ElementPlan(
        "mivb1",
        "mivb",
        "running",
        12,
        (op,),
        warnings=("users/admin is protected: not deleted",),
        observed_records=2,
    )


def test_known_round_trips_through_the_memo_and_status_reads_it(tmp_path: Path) -> None:
    known = known_of(_plan(), "digest-1", {"users": ["u1", "admin"]})
    assert known.warnings == {"users/admin": "users/admin is protected: not deleted"}
    memo = PlanMemo(tmp_path)
    memo.save_element("mivb1", known)

    assert memo.load_element("mivb1") == known
    assert memo.load_element("mivb3") is None
    found = _load_memo(tmp_path, "mivb1", "digest-1")
    assert found is not None
    revision, ops, _ = found
    assert (revision, ops) == (12, {("users", "u1"): ("modify", 7)})
    # A memo planned against another target is not status's to read.
    assert _load_memo(tmp_path, "mivb1", "digest-2") is None


def test_a_claim_stays_a_claim_through_the_memo(tmp_path: Path) -> None:
    # `plan --claim` twice: the second plan is re-planned from the memo, and a
    # claim that came back as a plain modify would be refused by the directory.
    claim = Operation(
        "modify",
        "users",
        "jdoe",
        "user",
        "jdoe",
        changes={"_managed_by": {"before": None, "after": "provgit"}},
        fields={"login_id": "jdoe", "_managed_by": "provgit"},
        if_revision=9,
        claim=True,
    )
    plan = ElementPlan("dir1", "directory", "running", 12, (claim,), observed_records=1)
    memo = PlanMemo(tmp_path)
    memo.save_element("dir1", known_of(plan, "digest-1", {"users": ["jdoe"]}))

    loaded = memo.load_element("dir1")

    assert loaded is not None
    assert [op.claim for op in loaded.operations] == [True]


def test_re_planning_a_read_only_element_equals_planning_it_in_full() -> None:
    # A read-only element is a source: even a record provgit marked, changed
    # since the last plan and absent from the config, is not deleted there.
    from provgit.drivers.base import StoredRecord
    from provgit.incremental.replan import replan_element
    from provgit.model.settings import Settings
    from provgit.observe import Observation
    from provgit.plan import PlanOptions
    from provgit.plan.compute import plan_element
    from provgit.projection import Target
    from provgit.records import MANAGED_BY, MANAGED_BY_VALUE

    target = Target({"dir1": {}}, {}, {}, read_only=frozenset({"dir1"}))
    settings, options = Settings(), PlanOptions(prune=True)
    before = Observation("dir1", "running", 3, {})
    previous = plan_element("dir1", "directory", target, before, settings, options)
    entry = StoredRecord("users", "ann", {"cn": "Ann", MANAGED_BY: MANAGED_BY_VALUE}, 4)
    after = Observation("dir1", "running", 4, {"users": {"ann": entry}}, base_revision=3)
    full = plan_element("dir1", "directory", target, after, settings, options)
    again = replan_element(
        "dir1", "directory", target, after, settings, options, previous, {("users", "ann")}
    )
    assert full.operations == ()
    assert again.to_json() == full.to_json()
