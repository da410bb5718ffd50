"""Which resources a run took off the network: only those whose every
operation was a delete that landed (a user moved to another host is not)."""

from __future__ import annotations

from provgit.apply.result import ElementResult, OpResult, removed_resources


def _op(action: str, resource: str, status: str = "ok") -> OpResult:
    return OpResult(action, "users", resource, "users", resource, status)  # type: ignore[arg-type]


def _element(name: str, *ops: OpResult) -> ElementResult:
    return ElementResult(name, "mivb", "Sync Completed", "applied", operations=list(ops))


def test_a_resource_deleted_everywhere_is_removed_with_its_elements() -> None:
    found = removed_resources(
        [_element("cs2", _op("delete", "bob")), _element("cs1", _op("delete", "bob"))]
    )
    assert found == {("users", "bob"): ["cs1", "cs2"]}


def test_a_moved_resource_is_not_removed() -> None:
    moved = [_element("cs1", _op("delete", "ann")), _element("cs2", _op("add", "ann"))]
    assert removed_resources(moved) == {}


def test_a_delete_that_did_not_land_is_not_a_removal() -> None:
    stuck = [
        _element("cs1", _op("delete", "bob")),
        _element("cs2", _op("delete", "bob", "pending")),
    ]
    assert removed_resources(stuck) == {}
