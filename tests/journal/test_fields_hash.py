"""`fields_hash` digests what a write puts; journals hold these digests, so
its fast encoder must give the very bytes of the standard one it replaced."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from provgit.journal.rows import fields_hash


def _journaled(action: str, fields: Any) -> str:
    body = json.dumps([action, fields], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(body.encode()).hexdigest()[:32]


_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


# No deadline: hypothesis fails an example slower than 200 ms of wall clock,
# which a descheduled worker on a loaded 2-core CI machine is, by chance.
@settings(deadline=None)
@given(st.sampled_from(["add", "modify"]), st.dictionaries(st.text(), _values, max_size=6))
def test_fields_hash_is_the_digest_journals_hold_for_any_json_value(
    action: str, fields: dict[str, Any]
) -> None:
    assert fields_hash(action, fields) == _journaled(action, fields)


@dataclass
class _Odd:
    n: int


def test_fields_hash_is_the_journaled_digest_for_values_json_cannot_spell() -> None:
    user = {
        "login_id": "jdoe",
        "first_name": "José",  # non-ASCII: escaped by the standard encoder
        "note": "del\x7fchar",
        "services": [{"dn": "2001", "label": "Desk", "cos_day": 10}],
        "voicemail_pin": {"$sensitive": "9f2e1c", "ref": "env:PIN"},
    }
    for fields in (
        user,
        {**user, "first_name": "Jose", "note": "plain"},
        {"ratio": 1.5, "big": 1e16, "tiny": 1e-7, "neg": -2.0},
        {"nan": float("nan"), "inf": [float("inf"), -float("inf")], "none": None},
        {1: "int key", 2: "v"},
        {"set": {1, 2}, "bytes": b"x", "odd": _Odd(1), "tuple": (1, "a")},
        {"huge": 2**80},
    ):
        assert fields_hash("add", fields) == _journaled("add", fields)
