"""What a run's result says, as values: each resource named once per element
(under its worst status there), and "refused, nothing applied" (exit 3) only
when nothing landed."""

from __future__ import annotations

from provgit import exitcodes
from provgit.apply.result import ApplyResult, ElementResult, OpResult
from provgit.render import apply_summary


def _op(status: str, key: str, collection: str = "users") -> OpResult:
    return OpResult("modify", collection, key, "users", key, status)  # type: ignore[arg-type]


def test_a_resource_is_named_once_per_element_under_its_worst_status() -> None:
    result = ApplyResult(1, "t")
    mcl = ElementResult("mcl", "micollab", "Move pending: ...", "held")
    mcl.operations = [_op("ok", "jdoe"), _op("ok", "amy"), _op("pending", "jdoe")]
    cs1 = ElementResult("cs1", "mivb", "Failed cs1", "failed")
    cs1.operations = [_op("ok", "jdoe"), _op("failed", "amy", "remote_directory")]
    result.elements = [mcl, cs1]
    assert apply_summary.lines(result) == [
        "applied: users/amy on mcl; users/jdoe on cs1",
        "failed: users/amy on cs1",
        "pending: users/jdoe on mcl",
    ]


def test_held_elements_that_landed_writes_are_not_refused_with_nothing_applied() -> None:
    held = ElementResult("mcl", "micollab", "Move pending: ...", "held")
    held.operations = [_op("ok", "jdoe"), _op("pending", "jdoe")]
    assert ApplyResult(1, "t", [held]).exit_code() == exitcodes.APPLIED_WITH_ERRORS
    waiting = ElementResult("mcl", "micollab", "Suspended: ...", "held")
    waiting.operations = [_op("pending", "jdoe")]
    assert ApplyResult(1, "t", [waiting]).exit_code() == exitcodes.REFUSED
