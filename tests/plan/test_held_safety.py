"""The stricter of the last applied safety and the config's (plan/held.py),
limit by limit: per kind and per element too, `protected` and `prune`."""

from __future__ import annotations

from provgit.model.settings import ElementSafety, Safety, Threshold
from provgit.plan.held import AppliedSafety, hold, loosenings
from provgit.plan.model import ElementPlan, Operation, Plan

DEFAULT = Safety()
OPEN = Safety(max_deletes=Threshold(count=100_000), max_updates=Threshold(count=100_000))


def _plan(*ops: Operation, prune: bool = False) -> Plan:
    ep = ElementPlan("mcl", "micollab", "running", 3, ops, observed_records=5)
    return Plan("t", (ep,), commit="c0ffee" * 7, prune=prune)


def _deletes(kind: str, n: int, managed: bool = True) -> list[Operation]:
    return [Operation("delete", kind, f"k{i}", kind, f"k{i}", managed=managed) for i in range(n)]


def _refusal(plan: Plan, old: Safety, new: Safety) -> str | None:
    held = hold(plan, {"mcl": AppliedSafety.of(old, "c0ffee" * 7, 9)}, new)
    return held.elements[0].refusal


def test_a_per_kind_limit_dropped_by_the_config_still_holds() -> None:
    old = OPEN.model_copy(
        update={"kinds": {"users": ElementSafety(max_deletes=Threshold(count=1))}}
    )
    why = _refusal(_plan(*_deletes("users", 2)), old, OPEN)
    assert why is not None and "2 users deletes (more than 1)" in why, why
    assert "(commit c0ffeec0ffee, run 9)" in why
    assert _refusal(_plan(*_deletes("departments", 2)), old, OPEN) is None


def test_a_per_element_limit_dropped_by_the_config_still_holds() -> None:
    old = OPEN.model_copy(
        update={"elements": {"mcl": ElementSafety(max_deletes=Threshold(count=0))}}
    )
    assert _refusal(_plan(*_deletes("users", 1)), old, OPEN) is not None
    # The config's own element limit is lower: its own refusal, planned already.
    assert loosenings(old, OPEN) == ["elements.mcl.max_deletes.count 0 -> unset"]


def test_a_kind_the_config_newly_prunes_is_not_pruned_yet_unless_asked() -> None:
    pruning = DEFAULT.model_copy(update={"prune": ["departments"]})
    plan = _plan(*_deletes("departments", 1, managed=False))
    why = _refusal(plan, DEFAULT, pruning)
    assert why is not None and "safety.prune names departments in this config" in why, why
    assert (
        _refusal(_plan(*_deletes("departments", 1, managed=False), prune=True), DEFAULT, pruning)
        is None
    )


def test_a_pattern_dropped_from_protected_still_protects_and_same_safety_changes_nothing() -> None:
    old = DEFAULT.model_copy(update={"protected": ["users/Rec*"]})
    why = _refusal(
        _plan(
            *_deletes("users", 1),
            Operation("delete", "users", "reception", "users", "reception", managed=True),
        ),
        old,
        DEFAULT,
    )
    assert why is not None and "users/reception is protected by" in why, why
    plan = _plan(*_deletes("users", 1))
    assert hold(plan, {"mcl": AppliedSafety.of(DEFAULT, None, None)}, DEFAULT) is plan
    # A tightening is the config's own rule: nothing held over it, no note.
    assert hold(plan, {"mcl": AppliedSafety.of(OPEN, None, None)}, DEFAULT).warnings == ()
