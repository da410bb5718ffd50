"""A plan's adds are serialized straight from their fields (`plan.add_bytes`):
the bytes are exactly those of the general writer (`canonical(op.to_json())`),
so signatures and checksums hold. Since plan format 3 an add planned here is
written once: its `fields`, no `changes` beside them (read back, they are
derived from the fields, and shown with no secret's value or reference digest).
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from provgit.api import Config
from provgit.plan import ElementPlan, Operation, Plan, signing
from provgit.plan.add_bytes import AddWriter
from provgit.plan.model import canonical, operation_pieces
from provgit.secrets import FROM_SECRET_KEY, NetworkKey

KEY = NetworkKey(b"k" * 32, FROM_SECRET_KEY, "env:PROVGIT_SECRET_KEY")
GENERATE = Path(__file__).resolve().parents[2] / "benchmarks" / "generate.py"
PIN = {"$sensitive": "9f3c", "ref": "env:PIN_X"}


def _general(ops: tuple[Operation, ...]) -> bytes:
    """What the writer gave before adds were serialized from their fields."""
    return b"[" + b",".join(canonical(op.to_json()) for op in ops) + b"]"


def _add(fields: dict[str, Any], **kw: Any) -> Operation:
    return Operation("add", "users", "jdoe", "users", "jdoe", fields=fields, **kw)


HOSTILE = {
    "plain": _add({"first_name": "Zoë", "n": 3, "x": 1.5, "ok": True, "none": None}),
    "underscore": _add({"_managed_by": "provgit", "_hidden": [1, 2], "name": "a"}),
    "top-level secret": _add({"voicemail_pin": PIN, "login_id": "jdoe"}),
    "secret in a list": _add({"services": [{"dn": "1", "hot_desk_pin": PIN}, {"dn": "2"}]}),
    "secret in a dict": _add({"options": {"b": {"pin": PIN}, "a": 1}}),
    "marker in a string": _add({"note": '"$sensitive": not a secret', "l": ['"$sensitive":']}),
    "unsorted nested keys": _add({"cos": {"night1": 2, "day": 1}, "a": [{"z": 1, "b": 2}]}),
    "non-string nested keys": _add({"map": {2: "x", 10: "y"}, "name": "n"}),
    "escapes": _add({'we"ird\\key': "line\nbreak\u2028", "tab": "\t<>&"}),
    "empty": _add({}),
    "only hidden": _add({"_managed_by": "provgit"}),
    "depends, managed, revision, claim": _add(
        {"name": "n"},
        depends_on=(("departments", "Sales"), ("roles", "Clerk")),
        managed=True,
        if_revision=12,
        claim=True,
    ),
    "managed false": _add({"name": "n"}, managed=False),
    "tuple value": _add({"members": ("a", "b")}),
    "big int": _add({"n": 2**70}),
}


@pytest.mark.parametrize("op", HOSTILE.values(), ids=HOSTILE.keys())
def test_an_add_is_written_as_the_general_writer_writes_it(op: Operation) -> None:
    try:
        general = canonical(op.to_json())
    except TypeError:  # not JSON at all: the fast way must not make it so
        assert AddWriter().add(op) is None
        return
    assert (AddWriter().add(op) or general) == general
    assert b"".join(operation_pieces((op, op))) == _general((op, op))


def test_an_add_is_its_fields_once_and_read_back_shows_no_secret() -> None:
    for name in ("plain", "top-level secret", "secret in a list", "secret in a dict"):
        op = HOSTILE[name]
        made = AddWriter().add(op)
        assert made is not None
        doc = orjson.loads(made)
        # The record once: no `changes` holding it a second time.
        assert "changes" not in doc and doc["fields"] == op.fields
        read = Operation.from_json(doc)
        assert read.changes == op.changes and read.shown_changes() == op.shown_changes()
        if name != "plain":
            shown = orjson.dumps(read.shown_changes())
            assert b"9f3c" not in shown and b"PIN_X" not in shown and b"(sensitive)" in shown


def test_operations_that_are_not_plain_adds_go_the_general_way() -> None:
    modify = Operation(
        "modify", "users", "u", "users", "u", changes={"a": {"before": 1, "after": 2}}
    )
    delete = Operation("delete", "users", "u", "users", "u", if_revision=3, managed=True)
    given = Operation("add", "users", "u", "users", "u", changes={}, fields={"a": 1})
    for op in (modify, delete, given):
        assert AddWriter().add(op) is None
    ops = (modify, HOSTILE["plain"], delete, given, HOSTILE["secret in a list"])
    assert b"".join(operation_pieces(ops)) == _general(ops)


def _generated(users: int, out: Path) -> None:
    spec = importlib.util.spec_from_file_location("provgit_bench_generate", GENERATE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
        module.generate(users, out)
    finally:
        del sys.modules[spec.name]


def test_a_first_rollout_plan_of_a_generated_network_is_written_as_before_and_verifies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "net"
    _generated(1200, root)
    config = Config.open(root, tmp_path / "state")
    pins = {}
    for user in config.state().of("users").values():
        for ref in (user.voicemail_pin, *(s.hot_desk_pin for s in user.services)):
            if ref is not None and ref.env:
                pins[ref.env] = f"98{len(pins):06d}7"
                monkeypatch.setenv(ref.env, pins[ref.env])
    assert len(pins) > 10
    plan = asyncio.run(config.plan()).plan
    ops = [op for e in plan.elements for op in e.operations]
    assert len(ops) > 3000 and all(op.action == "add" for op in ops)
    monkeypatch.setattr("provgit.plan.model.BATCH", 97)  # many batches, some ragged
    assert sum(AddWriter().add(op) is not None for op in ops) == len(ops)
    for e in plan.elements:
        assert b"".join(operation_pieces(e.operations)) == _general(e.operations)
    # The signed file: the bytes the general writer signs, and they verify.
    data = b"".join(signing.signed_bytes(plan, KEY))
    assert data == canonical(signing.signed_document(plan, KEY)) + b"\n"
    read = signing.verify(data.decode(), KEY)
    assert read.to_json() == plan.to_json()
    assert [op.changes for e in read.elements for op in e.operations] == [op.changes for op in ops]
    # Each add's record is written once (format 3): no add carries `changes`.
    doc = orjson.loads(data)
    assert doc["format"] == "provgit.plan/3"
    assert not [o for e in doc["elements"] for o in e["operations"] if "changes" in o]
    assert not [pin for pin in pins.values() if pin.encode() in data]
    tampered = data.replace(b'"first_name":"', b'"first_name":"X', 1)
    with pytest.raises(signing.PlanSignatureError):
        signing.verify(tampered.decode(), KEY)


def test_a_plan_of_hostile_adds_signs_and_verifies() -> None:
    ops = tuple(
        op
        for name, op in HOSTILE.items()
        if name not in ("non-string nested keys", "tuple value", "big int")
    )
    plan = Plan("net", (ElementPlan("mivb1", "mivb", "running", 7, ops),))
    data = b"".join(signing.signed_bytes(plan, KEY))
    assert data == canonical(signing.signed_document(plan, KEY)) + b"\n"
    assert signing.verify(data.decode(), KEY).to_json() == plan.to_json()
