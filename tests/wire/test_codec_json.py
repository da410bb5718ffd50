"""The element API's JSON (orjson) reads and writes what the json module would."""

from __future__ import annotations

import json

import pytest

from provgit.wire import codec

RECORDS = [
    {"login_id": "jdoe", "first_name": "Zoë", "services": [{"dn": "2001", "cos_day": "1"}]},
    {"number": 7, "comment": "Sales", "options": {"call_forward_external": True}},
    {"pin": {"$sensitive": "ab12", "value": "1234"}, "ratio": 0.5, "none": None},
    {"deep": [[[]], {}], "text": 'quote " and \\ and \n newline'},
]


@pytest.mark.parametrize("record", RECORDS)
def test_dumps_writes_what_the_json_module_writes(record: dict[str, object]) -> None:
    expected = json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode()
    assert codec.dumps(record) == expected
    assert codec.loads(codec.dumps(record)) == record


def test_what_orjson_refuses_still_goes_out() -> None:
    big = {"n": 2**70, 1: "int key"}
    assert codec.loads(codec.dumps(big)) == {"n": 2**70, "1": "int key"}


@pytest.mark.parametrize("bad", [b"", b"{", b"\xff\xfe", b"{'a': 1}", b"[1,]"])
def test_loads_of_invalid_json_is_a_value_error(bad: bytes) -> None:
    with pytest.raises(ValueError):
        codec.loads(bad)
