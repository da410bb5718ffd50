"""`provgit.incremental`: what the last plan knew of an element survives the
disk the way status reads it, and the modules it came from still answer."""

from __future__ import annotations

from pathlib import Path

import pytest

from provgit.incremental.disk import PlanMemo
from provgit.incremental.known import known_of
from provgit.incremental.memo_summary import seal
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


def _ops(n: int) -> tuple[Operation, ...]:
    return tuple(
        Operation(
            "modify",
            "users",
            f"u{i}",
            "user",
            f"u{i}",
            changes={"first_name": {"before": f"Ann{i}", "after": f"Bob{i}"}},
            fields={"first_name": f"Bob{i}", "services": [{"type": "6920"}]},
            if_revision=i,
        )
        for i in range(n)
    )


def test_a_memo_read_without_the_records_to_plan_again_re_plans_to_the_same_plan(
    tmp_path: Path,
) -> None:
    # The shared path leaves the operations of the records it plans again
    # undecoded (`StoredKnown.known(skip=...)`): `replan` replaces them anyway.
    from provgit.drivers.base import StoredRecord
    from provgit.incremental.known import Known
    from provgit.incremental.replan import replan
    from provgit.model.settings import Settings
    from provgit.observe import Observation
    from provgit.plan import PlanOptions
    from provgit.projection import Target

    keys = {"users": [f"u{i}" for i in range(6)]}
    known = Known("digest-1", 12, _ops(6), {"users/u4": "users/u4 is protected"}, keys)
    memo = PlanMemo(tmp_path)
    memo.save_element("mivb1", known)
    stored = memo.load_stored("mivb1")
    assert stored is not None
    # u1 now as desired, u3 changed again, u4 deleted, u9 new.
    desired = {
        "u1": {"first_name": "Bob1", "services": [{"type": "6920"}]},
        "u3": {"first_name": "Cy3", "services": [{"type": "6930"}]},
        "u9": {"first_name": "Dee", "services": []},
    }
    changes = {
        ("users", "u1"): StoredRecord("users", "u1", dict(desired["u1"]), 13),
        ("users", "u3"): StoredRecord("users", "u3", {"first_name": "Ann3"}, 13),
        ("users", "u4"): None,
    }
    target = Target({"mivb1": {"users": desired}}, {"mivb1": {}}, {"mivb1": {}})
    obs = Observation("mivb1", "running", 13, {}, base_revision=12)
    settings, options = Settings(), PlanOptions()

    whole = replan(stored.known(), changes, target, obs, "mivb", settings, options)
    cut = stored.known(skip=changes.keys())
    assert len(cut.operations) == 3
    part = replan(cut, changes, target, obs, "mivb", settings, options)

    assert part[0].to_json() == whole[0].to_json()
    assert part[1] == whole[1]
    assert sorted(op.key for op in part[0].operations) == ["u0", "u2", "u3", "u5"]
    assert part[1].warnings == {}


def test_a_memo_saved_from_the_one_it_was_read_from_writes_each_operation_as_it_is_now(
    tmp_path: Path,
) -> None:
    # Operations kept from the memo are written as the bytes they were read
    # from; one planned again (a new object for the same record) as it is now.
    from provgit.incremental.known import Known

    keys = {"users": [f"u{i}" for i in range(4)]}
    memo = PlanMemo(tmp_path)
    memo.save_element("mivb1", Known("digest-1", 12, _ops(4), {}, keys))
    stored = memo.load_stored("mivb1")
    assert stored is not None
    read = stored.known()
    again = Operation(
        "modify",
        "users",
        "u2",
        "user",
        "u2",
        changes={"first_name": {"before": "Ann2", "after": "Cy"}},
        fields={"first_name": "Cy", "services": []},
        if_revision=13,
    )
    now = (read.operations[0], read.operations[1], again, read.operations[3])
    memo.save_element("mivb1", Known("digest-2", 13, now, {}, keys), kept=stored)

    loaded = memo.load_element("mivb1")
    assert loaded is not None
    assert loaded.operations == now
    assert loaded.operations[2].fields == {"first_name": "Cy", "services": []}
    assert loaded.version == "digest-2"


def test_a_memo_decodes_only_the_chunks_of_the_operations_it_keeps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A template edit plans MiCollab's 28,403 pending updates again and keeps
    # 2 of its operations: only their chunks are decoded. Here the chunk of
    # the operations planned again is damaged: a read that decodes it fails.
    import marshal

    from provgit.incremental import disk
    from provgit.incremental.known import Known

    monkeypatch.setattr(disk, "CHUNK", 2)
    keys = {"users": [f"u{i}" for i in range(6)]}
    memo = PlanMemo(tmp_path)
    memo.save_element("mivb1", Known("digest-1", 12, _ops(6), {}, keys))
    path = tmp_path / "memo" / "elements" / "mivb1.marshal"
    doc = memo.element_doc("mivb1")
    assert doc is not None
    chunks = marshal.loads(doc["payload"])
    assert len(chunks) == 3
    chunks[1] = b"\xff not marshal"
    doc["payload"] = marshal.dumps(chunks)
    # Sealed again with the memo's key: only the chunk is damaged.
    key = memo._key()
    assert key is not None
    path.write_bytes(seal(key, marshal.dumps(doc)))

    stored = memo.load_stored("mivb1")
    assert stored is not None
    kept = stored.known(skip={("users", "u2"), ("users", "u3")})
    assert kept.operations == tuple(op for op in _ops(6) if op.key not in ("u2", "u3"))
    with pytest.raises(ValueError):
        stored.known()


def test_a_memo_saved_again_with_one_chunk_planned_again_reads_back_as_saved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import marshal

    from provgit.incremental import disk
    from provgit.incremental.known import Known

    monkeypatch.setattr(disk, "CHUNK", 2)
    keys = {"users": [f"u{i}" for i in range(5)]}
    memo = PlanMemo(tmp_path)
    memo.save_element("mivb1", Known("digest-1", 12, _ops(5), {}, keys))

    def chunks() -> list[bytes]:
        doc = memo.element_doc("mivb1")
        assert doc is not None
        found: list[bytes] = marshal.loads(doc["payload"])
        return found

    before = chunks()
    stored = memo.load_stored("mivb1")
    assert stored is not None
    read = stored.known().operations
    again = _ops(5)[2]  # an equal operation, planned again: a new object
    now = (*read[:2], again, *read[3:])
    memo.save_element("mivb1", Known("digest-2", 13, now, {}, keys), kept=stored)

    after = chunks()
    assert len(after) == 3 and after[0] == before[0] and after[2] == before[2]
    loaded = memo.load_element("mivb1")
    assert loaded is not None and loaded.operations == now


def test_the_report_reads_an_element_memo_without_its_keys_and_a_plan_with_them(
    tmp_path: Path,
) -> None:
    # The keys (every record the element holds: 304,616 at W100k) are their
    # own bytes in the memo: the report's reading of an element's revision and
    # operations does not decode them; a plan does, and a damaged blob of them
    # sends it to the full path.
    import marshal

    from provgit.incremental.known import Known

    keys = {"users": [f"u{i}" for i in range(6)]}
    memo = PlanMemo(tmp_path)
    memo.save_element("mivb1", Known("digest-1", 12, _ops(3), {}, keys))
    stored = memo.load_stored("mivb1")
    assert stored is not None and stored.keys == keys

    doc = memo.element_doc("mivb1")
    assert doc is not None
    doc["keys"] = b"\xff not marshal"
    key = memo._key()
    assert key is not None
    (tmp_path / "memo" / "elements" / "mivb1.marshal").write_bytes(seal(key, marshal.dumps(doc)))
    read = _load_memo(tmp_path, "mivb1", "digest-1")
    assert read is not None and read[0] == 12
    assert set(read[1]) == {("users", f"u{i}") for i in range(3)}
    assert memo.load_stored("mivb1") is None
