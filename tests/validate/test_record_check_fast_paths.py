"""The per-record checks' fast paths (#16, rollout9) decide and say exactly
what the checks as first written did: a DN's characters, a name's accents, a
user's phone labels, the shared `model_fields_set` of nested models, and the
user records the projection writes out (same fields, same order: the plan's
and the target store's bytes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.validate.base import NETWORK, summary, validate

from provgit.model.common import _no_accents
from provgit.model.telephony import _dn
from provgit.projection import project
from provgit.projection.context import rec
from provgit.secrets import Fingerprinter

_DN_CHARS = "0123456789*#a é\n\t-+٣"


def _dn_as_first_written(v: str) -> str:
    if not (1 <= len(v) <= 7) or any(c not in "0123456789*#" for c in v):
        raise ValueError(f"directory number {v!r} must be 1-7 characters of 0-9, * and #")
    return v


def _no_accents_as_first_written(v: str) -> str:
    bad = sorted({c for c in v if ord(c) > 127})
    if bad:
        raise ValueError(
            f"contains accented or non-ASCII characters ({''.join(bad)}); "
            "call servers only accept plain ASCII here"
        )
    return v


def _outcome(check: Any, v: str) -> tuple[str, str]:
    try:
        return "ok", check(v)
    except ValueError as e:
        return "refused", str(e)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=_DN_CHARS, max_size=9))
def test_a_dn_is_refused_exactly_as_before(v: str) -> None:
    assert _outcome(_dn, v) == _outcome(_dn_as_first_written, v)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="Ab z.-éÉ\u00ff\u0100\u4e2d\U0001f600\x7f\x80", max_size=12))
def test_a_name_with_accents_is_refused_exactly_as_before(v: str) -> None:
    assert _outcome(_no_accents, v) == _outcome(_no_accents_as_first_written, v)


USERS = """\
classes_of_service:
  - number: 1
cor_groups:
  - number: 1
departments:
  - name: Sales
  - name: Ventes Montréal
templates:
  - name: Basic
    phones:
      - label: desk
        device_type: "6920"
        primary: true
users:
  - login_id: alice
    first_name: Alice
    last_name: Smith
    department: Sales
    host: cs1
    voicemail_pin: {env: ALICE_PIN}
    services:
      - dn: "1000"
        label: desk
        hot_desk_pin: {env: ALICE_HOT}
        cos: {day: 1}
      - dn: "1001"
        label: desk
        cor: {day: 1}
  - login_id: bob
    first_name: Bob
    last_name: Jones
    host: cs1
    services:
      - dn: "10a1"
  - login_id: carol
    first_name: Carol
    last_name: White
    template: Basic
    host: cs1
    voicemail_pin: {env: CAROL_PIN}
    services:
      - dn: "1002"
        hot_desk_pin: {env: CAROL_HOT}
"""


def test_bad_users_get_the_same_errors(tmp_path: Path) -> None:
    got = summary(validate(tmp_path, {"telephony.yaml": USERS}).diagnostics)
    assert any("phone labels must be unique per user: desk" in line for line in got), got
    assert any("directory number '10a1' must be 1-7 characters" in line for line in got), got
    assert any("accented or non-ASCII characters (é)" in line for line in got), got


def _valid_users() -> str:
    users = USERS.replace("label: desk\n        cor", "label: home\n        cor").replace(
        "  - name: Ventes Montréal\n", ""
    )
    return users.replace('dn: "10a1"', 'dn: "1003"')


# A third call server in cs1's cluster: it gets remote directory entries.
CS4 = "  - name: cs4\n    type: mivb\n    ceid: 6\n    cluster: east\n"


def test_nested_models_share_their_fields_sets(tmp_path: Path) -> None:
    valid = validate(tmp_path, {"telephony.yaml": _valid_users()})
    assert valid.ok, summary(valid.diagnostics)
    alice, carol = valid.state.of("users")["alice"], valid.state.of("users")["carol"]
    pins = [
        alice.voicemail_pin,
        carol.voicemail_pin,
        alice.services[0].hot_desk_pin,
        carol.services[0].hot_desk_pin,
    ]
    assert all(p is not None for p in pins)
    assert len({id(p.model_fields_set) for p in pins if p is not None}) == 1
    assert alice.services[0].model_fields_set == {"dn", "label", "hot_desk_pin", "cos"}
    assert alice.services[1].model_fields_set == {"dn", "label", "cor"}
    assert carol.services[0].model_fields_set == {"dn", "hot_desk_pin"}
    assert alice.services[0].cos is not None and alice.services[0].cos.model_fields_set == {"day"}


def test_user_records_are_the_fields_rec_makes_in_its_order(tmp_path: Path) -> None:
    users = _valid_users()
    valid = validate(tmp_path, {"telephony.yaml": users, "network.yaml": NETWORK + CS4})
    assert valid.ok, summary(valid.diagnostics)
    target = project(valid.state, Fingerprinter(b"k" * 32))
    alice = target.records["mc"]["users"]["alice"]
    want = rec(
        login_id="alice",
        first_name="Alice",
        last_name="Smith",
        directory_name="Smith, Alice",
        department="Sales",
        location=None,
        email=None,
        role=None,
        template=None,
        host="cs1",
        services=alice["services"],
    )
    want["voicemail_pin"] = alice["voicemail_pin"]
    assert list(alice.items()) == list(want.items())
    phone = target.records["cs1"]["users"]["alice"]
    want = rec(
        login_id="alice",
        first_name="Alice",
        last_name="Smith",
        directory_name="Smith, Alice",
        department="Sales",
        location=None,
        services=phone["services"],
    )
    assert list(phone.items()) == list(want.items())
    assert target.records["cs2"]["users"]["alice"] is phone  # the partner's: one dict
    remote = target.records["cs4"]["remote_directory"]["1000"]
    want = rec(dn="1000", directory_name="Smith, Alice", host="cs1", login_id="alice")
    assert list(remote.items()) == list(want.items())
