"""The safety each element was last applied under (apply/held_safety.py), kept
in the journal's meta table: the same answers on both backends."""

from __future__ import annotations

from pathlib import Path

from provgit.apply.held_safety import applied_safety, remember_safety
from provgit.journal import Journal, JournalReader
from provgit.model.settings import Safety, Threshold
from provgit.plan.held import AppliedSafety

STRICT = Safety(max_deletes=Threshold(count=2), protected=["users/reception"])
LOOSE = Safety(max_deletes=Threshold(count=100_000))


def test_the_applied_safety_is_kept_per_element_on_each_backend(
    tmp_path: Path, backend: str
) -> None:
    with Journal.open(tmp_path) as j:
        assert applied_safety(j) == {}
        # Keys that LIKE would match with its `_` wildcard are not this one's.
        j.set_meta("applied_safetyXcs1", "not a safety")
        j.set_meta("drift_baseline:cs1", "7")
        with j.transaction():
            remember_safety(j, ["cs1", "cs_2"], STRICT, {}, "abc123def4567890", 4)
        assert applied_safety(j) == {
            "cs1": AppliedSafety.of(STRICT, "abc123def4567890", 4),
            "cs_2": AppliedSafety.of(STRICT, "abc123def4567890", 4),
        }
        known = applied_safety(j)
        # The same safety again: the record keeps naming the run that first applied it.
        remember_safety(j, ["cs1"], STRICT, known, "fedcba", 5)
        remember_safety(j, ["cs_2"], LOOSE, known, "fedcba", 5)
        j.set_meta("applied_safety:mcl", "{not json")
    with JournalReader.open_read_only(tmp_path) as reader:
        found = applied_safety(reader)
    # An unreadable value counts as none (the config's safety alone).
    assert found == {
        "cs1": AppliedSafety.of(STRICT, "abc123def4567890", 4),
        "cs_2": AppliedSafety.of(LOOSE, "fedcba", 5),
    }
    assert found["cs1"].safety == STRICT
    assert found["cs1"].where() == "the last applied provgit.yaml (commit abc123def456, run 4)"
