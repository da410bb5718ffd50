"""The login-rename warning: only for a delete and an add of the same person."""

from __future__ import annotations

from typing import Any

from provgit.plan.model import ElementPlan, Operation
from provgit.plan.renames import rename_warnings


def _delete(key: str, **fields: Any) -> Operation:
    changes = {k: {"before": v} for k, v in fields.items()}
    return Operation("delete", "users", key, "users", key, changes=changes)


def _add(key: str, **fields: Any) -> Operation:
    return Operation("add", "users", key, "users", key, fields=fields)


def _element(*ops: Operation) -> ElementPlan:
    return ElementPlan("mcl", "micollab", "running", 3, operations=ops)


def test_same_email_is_a_rename() -> None:
    (w,) = rename_warnings(
        [_element(_delete("jdoe", email="J.Doe@x.org"), _add("john.doe", email="j.doe@x.org"))]
    )
    assert "users/jdoe -> users/john.doe" in w and "same email j.doe@x.org" in w
    assert "renaming a login_id deletes and re-creates the user on every element (mcl)" in w


def test_a_user_replaced_by_someone_else_is_not_a_rename() -> None:
    ops = [
        _delete("jdoe", email="jdoe@x.org", services=[{"dn": "2001"}]),
        _add("asmith", email="asmith@x.org", services=[{"dn": "2002"}]),
    ]
    assert rename_warnings([_element(*ops)]) == ()
