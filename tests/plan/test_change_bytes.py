"""A plan's modifies and deletes are serialized from their changes as given
(`plan.change_bytes`): the bytes are exactly those of the general writer
(`canonical(op.to_json())`), so signatures and checksums are unchanged, and
no secret's reference digest is shown in their changes (a PIN changed: the
changes holding one are redacted each on its own)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from provgit.plan import ElementPlan, Operation, Plan, signing
from provgit.plan.change_bytes import ChangeWriter
from provgit.plan.model import canonical, operation_pieces
from provgit.secrets import FROM_SECRET_KEY, NetworkKey

KEY = NetworkKey(b"k" * 32, FROM_SECRET_KEY, "env:PROVGIT_SECRET_KEY")
PIN = {"$sensitive": "9f3c", "ref": "env:PIN_X"}
NEW_PIN = {"$sensitive": "77ab", "ref": "env:PIN_X"}


def _modify(changes: dict[str, Any], fields: dict[str, Any] | None = None, **kw: Any) -> Operation:
    if fields is None:
        fields = {k: c.get("after") if isinstance(c, dict) else c for k, c in changes.items()}
    return Operation("modify", "users", "jdoe", "user", "jdoe", changes, fields, **kw)


PLAIN = {
    "scalars": _modify({"first_name": {"before": "Zoë", "after": "Zoe"}, "n": {"after": 3}}),
    "a services list": _modify(
        {"services": {"before": [{"type": "6920", "dn": "1"}], "after": [{"dn": "1"}]}},
        {"services": [{"dn": "1", "type": "6930"}], "name": "n"},
        if_revision=41,
    ),
    "a secret in the fields only": _modify(
        {"first_name": {"before": "a", "after": "b"}}, {"first_name": "b", "pin": PIN}
    ),
    "marker in a string": _modify({"note": {"after": '"$sensitive": not a secret'}}),
    "unsorted nested keys": _modify({"cos": {"after": {"night1": 2, "day": 1}, "before": None}}),
    "escapes": _modify({'we"ird\\key': {"after": "line\nbreak\u2028", "before": "\t<>&"}}),
    "empty changes": _modify({}, {}),
    "depends, managed, claim": _modify(
        {"name": {"after": "n"}},
        depends_on=(("departments", "Sales"), ("roles", "Clerk")),
        managed=True,
        if_revision=12,
        claim=True,
    ),
    "tuple value": _modify({"members": {"after": ("a", "b")}}),
    "a delete": Operation(
        "delete", "users", "u", "user", "u", {"name": {"before": "n"}}, if_revision=3, managed=True
    ),
    "a delete not managed": Operation(
        "delete", "users", "u", "user", "u", {}, if_revision=3, managed=False
    ),
}
SECRET = {
    "a secret changed": _modify({"pin": {"before": PIN, "after": NEW_PIN}}),
    "a secret set": _modify({"pin": {"before": None, "after": PIN}, "name": {"after": "n"}}),
    "a secret in a list": _modify({"services": {"after": [{"dn": "1", "hot_desk_pin": PIN}]}}),
    "a secret as the change": _modify({"pin": PIN}),
    "a secret beside the marker as a key": _modify({"pin": {"$sensitive": "x", "after": PIN}}),
}
PLAIN.update(SECRET)
GENERAL = {
    "non-string nested keys": _modify({"map": {"after": {2: "x", 10: "y"}}}),
    "big int": _modify({"n": {"after": 2**70}}),
    "an add planned here": Operation("add", "users", "u", "user", "u", fields={"a": 1}),
}


@pytest.mark.parametrize("op", PLAIN.values(), ids=PLAIN.keys())
def test_a_modify_or_delete_is_written_from_its_changes_as_the_general_writer_writes_it(
    op: Operation,
) -> None:
    made = ChangeWriter().change(op)
    assert made is not None
    assert made == canonical(op.to_json())
    assert b"".join(operation_pieces((op, op))) == b"[" + b",".join([made, made]) + b"]"


@pytest.mark.parametrize("op", GENERAL.values(), ids=GENERAL.keys())
def test_an_operation_orjson_cannot_sort_goes_the_general_way(op: Operation) -> None:
    assert ChangeWriter().change(op) is None
    try:
        general = canonical(op.to_json())
    except TypeError:  # not JSON at all: the fast way must not make it so
        return
    assert b"".join(operation_pieces((op,))) == b"[" + general + b"]"


def test_a_modify_of_a_secret_shows_neither_reference_digest() -> None:
    data = b"".join(operation_pieces(tuple(SECRET.values())))
    changes = orjson.dumps([op["changes"] for op in orjson.loads(data)])
    assert b"9f3c" not in changes and b"77ab" not in changes and b"PIN_X" not in changes
    assert b"(sensitive)" in changes


def test_a_plan_of_modifies_and_deletes_signs_verifies_and_refuses_a_tampered_copy() -> None:
    # (Values JSON reads back as other values left out: the plan compares as JSON.)
    odd = ("big int", "tuple value", "non-string nested keys")
    ops = tuple(v for k, v in {**PLAIN, **GENERAL}.items() if k not in odd)
    plan = Plan("net", (ElementPlan("mivb1", "mivb", "running", 7, ops),))
    data = b"".join(signing.signed_bytes(plan, KEY))
    assert data == canonical(signing.signed_document(plan, KEY)) + b"\n"
    assert signing.verify(data.decode(), KEY).to_json() == plan.to_json()
    tampered = data.replace(b'"after":"Zoe"', b'"after":"Eve"', 1)
    assert tampered != data
    with pytest.raises(signing.PlanSignatureError):
        signing.verify(tampered.decode(), KEY)
