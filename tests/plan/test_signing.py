"""Plan signatures: any change to a signed plan is caught, and only the right key verifies."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provgit.model.common import SecretRef
from provgit.plan import ElementPlan, Operation, Plan, PlanFormatError, signing
from provgit.plan.signing import PlanSignatureError
from provgit.secrets import FROM_SECRET_KEY, FROM_STATE_DIR, NetworkKey, local_key, network_key

KEY = NetworkKey(b"k" * 32, FROM_SECRET_KEY, "env:PROVGIT_SECRET_KEY")


def _plan() -> Plan:
    pin = {"$sensitive": "ab12", "ref": "env:PIN_JDOE"}
    ops = (
        Operation(
            "add",
            "users",
            "jdoe",
            "users",
            "jdoe",
            changes={"first_name": {"after": "John"}},
            fields={"first_name": "John", "voicemail_pin": pin, "services": [{"dn": "2001"}]},
        ),
        Operation("delete", "users", "old", "users", "old", if_revision=4, managed=True),
    )
    return Plan(
        "net",
        (ElementPlan("mivb1", "mivb", "running", 7, ops, observed_records=12),),
        source="config",
        allow_updates=True,
    )


def _leaves(doc: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _leaves(v, (*path, i))
    else:
        yield path


def _changed(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if value is None:
        return 0
    return str(value) + "x"


def test_signed_plan_verifies_to_the_same_plan() -> None:
    plan = _plan()
    again = signing.verify(signing.signed_text(plan, KEY), KEY)
    assert again == plan
    assert again.checksum() == plan.checksum()


def test_changing_any_value_of_a_signed_plan_is_refused() -> None:
    doc = signing.signed_document(_plan(), KEY)
    paths = [p for p in _leaves(doc) if p != ("signature", "value")]
    assert len(paths) > 40
    for path in paths:
        edited = json.loads(json.dumps(doc))
        where = edited
        for step in path[:-1]:
            where = where[step]
        where[path[-1]] = _changed(where[path[-1]])
        # The format and the algorithm are checked first, with their own messages.
        with pytest.raises(PlanFormatError) as e:
            signing.verify(json.dumps(edited), KEY)
        if path not in (("format",), ("signature", "algorithm")):
            assert isinstance(e.value, PlanSignatureError)
            assert "plan signature does not match" in str(e.value), path


def test_added_key_anywhere_is_refused() -> None:
    doc = signing.signed_document(_plan(), KEY)
    doc["elements"][0]["operations"][1]["managed"] = False
    doc["elements"][0]["operations"][0]["extra"] = 1
    with pytest.raises(PlanSignatureError, match="plan signature does not match"):
        signing.verify(json.dumps(doc), KEY)


def test_layout_does_not_matter_content_does() -> None:
    doc = signing.signed_document(_plan(), KEY)
    assert signing.verify(json.dumps(doc, indent=4, sort_keys=True), KEY) == _plan()


def test_another_key_is_refused_and_named() -> None:
    other = NetworkKey(b"o" * 32, FROM_STATE_DIR, "/s/secret.key")
    with pytest.raises(PlanSignatureError) as e:
        signing.verify(signing.signed_text(_plan(), KEY), other)
    assert f"it names secret_key {signing.key_id(KEY)}" in str(e.value)
    assert f"the key here is state-dir key {signing.key_id(other)}" in str(e.value)


def test_plan_never_holds_the_key() -> None:
    text = signing.signed_text(_plan(), KEY)
    assert KEY.secret.decode() not in text and KEY.secret.hex() not in text
    assert KEY.secret.decode() not in signing.key_id(KEY)


def test_untrusted_key_names_are_not_echoed() -> None:
    doc = signing.signed_document(_plan(), KEY)
    doc["signature"]["key_id"] = "\x1b[31mred"
    with pytest.raises(PlanSignatureError) as e:
        signing.verify(json.dumps(doc), KEY)
    assert "\x1b" not in str(e.value) and "it names an unknown key" in str(e.value)


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ("not json", PlanFormatError, "not JSON"),
        ("[]", PlanFormatError, "not a provgit plan"),
        ('{"format": "provgit.plan/1"}', PlanSignatureError, "old, unsigned format"),
        ('{"format": "provgit.plan/2"}', PlanSignatureError, "the plan is not signed"),
        (
            '{"format": "provgit.plan/2", "signature": {"value": "00"}}',
            PlanSignatureError,
            "signature is not HMAC-SHA256",
        ),
    ],
)
def test_unsigned_or_foreign_files_are_clear_errors(
    text: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        signing.verify(text, KEY)


def test_no_key_here_says_what_to_set(tmp_path: Path) -> None:
    missing = signing.plan_key(SecretRef(env="PROVGIT_TEST_UNSET_KEY"), tmp_path, create=False)
    assert isinstance(missing, str)
    with pytest.raises(PlanSignatureError) as e:
        signing.verify(signing.signed_text(_plan(), KEY), missing)
    assert "the network's secret_key (env:PROVGIT_TEST_UNSET_KEY) is not set here" in str(e.value)
    assert not (tmp_path / "secret.key").exists()  # checking makes no key


def test_state_dir_key_is_private_and_stable(tmp_path: Path) -> None:
    key = local_key(tmp_path / "state")
    path = tmp_path / "state" / "secret.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert local_key(tmp_path / "state") == key
    path.write_text("damaged")
    replaced = local_key(tmp_path / "state")
    assert replaced != key and len(replaced) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["secret.key"]  # no temporary left


def test_secret_key_wins_over_the_state_dir_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROVGIT_TEST_KEY", "shared-network-key")
    found = network_key(SecretRef(env="PROVGIT_TEST_KEY"), tmp_path)
    assert found is not None and found.source == FROM_SECRET_KEY
    assert found.secret == b"shared-network-key"
    monkeypatch.delenv("PROVGIT_TEST_KEY")
    fallback = network_key(SecretRef(env="PROVGIT_TEST_KEY"), tmp_path)
    assert fallback is not None and fallback.source == FROM_STATE_DIR
    assert fallback.fallback is not None and "env:PROVGIT_TEST_KEY" in fallback.fallback


@pytest.mark.parametrize("value", ["", "   ", "short-key"])
def test_empty_or_short_secret_key_is_not_a_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """An unset CI secret arrives as an empty variable: nobody may sign with it."""
    monkeypatch.setenv("PROVGIT_TEST_KEY", value)
    found = network_key(SecretRef(env="PROVGIT_TEST_KEY"), tmp_path)
    assert found is not None and found.source == FROM_STATE_DIR
    why = "is empty" if not value.strip() else "shorter than 16 characters"
    assert found.fallback is not None and why in found.fallback


def test_canonical_of_non_string_keys_is_that_of_its_parsed_copy() -> None:
    from provgit.plan.model import canonical

    doc = {"b": {2: "x", 10: "y"}, "a": [1, {"k": None}]}
    assert canonical(doc) == canonical(json.loads(json.dumps(doc)))


def test_a_large_plan_is_signed_in_pieces_no_bigger_than_a_batch_and_verifies() -> None:
    from provgit.plan.model import BATCH, canonical

    ops = tuple(
        Operation("add", "users", f"u{i}", "users", f"u{i}", fields={"first_name": f"N{i}"})
        for i in range(4 * BATCH + 1)
    )
    plan = Plan("net", (ElementPlan("mivb1", "mivb", "running", 7, ops),))
    pieces = list(signing.signed_bytes(plan, KEY))
    data = b"".join(pieces)
    # Serialized a batch of operations at a time: no piece holds the whole plan.
    assert max(len(p) for p in pieces) < len(data) / 3
    # The bytes streamed are the one canonical form, and their signature holds.
    assert data == canonical(signing.signed_document(plan, KEY)) + b"\n"
    again = signing.verify(data.decode(), KEY)
    assert again == plan
    assert again.elements[0].operations[0].changes == {"first_name": {"after": "N0"}}


def test_a_saved_plan_is_checked_on_its_bytes_not_serialized_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A 100k plan's canonical form is as big as the file: the bytes as read
    # are what is checked (and then parsed), no second copy is made.
    data = b"".join(signing.signed_bytes(_plan(), KEY))

    def no_copy(doc: Any) -> bytes:
        raise AssertionError("the saved plan was serialized again to check it")

    monkeypatch.setattr(signing, "canonical", no_copy)
    monkeypatch.setattr(signing, "legacy_canonical", no_copy)
    assert signing.verify(data, KEY) == _plan()


def test_any_byte_changed_in_a_saved_plan_is_refused() -> None:
    data = b"".join(signing.signed_bytes(_plan(), KEY))
    for at in range(len(data) - 1):  # the last byte is the newline
        for other in {b"0", b"x", b'"', b"}"} - {data[at : at + 1]}:
            edited = data[:at] + other + data[at + 1 :]
            with pytest.raises(PlanFormatError):
                signing.verify(edited, KEY)


def test_the_signature_value_moved_out_of_the_signature_is_refused() -> None:
    data = b"".join(signing.signed_bytes(_plan(), KEY))
    at = data.rindex(b',"value":"')
    segment = data[at : at + 75]
    assert segment.endswith(b'"')
    rest = data[:at] + data[at + 75 :]
    # Into an operation (the signature is left without one): refused.
    op = rest.index(b'"managed":')
    op = rest.index(b"}", op)
    moved = rest[:op] + segment + rest[op:]
    with pytest.raises(PlanSignatureError, match="not signed"):
        signing.verify(moved, KEY)
    # Or dropped: refused.
    with pytest.raises(PlanSignatureError, match="not signed"):
        signing.verify(rest, KEY)
    # First in the signature instead of last: the same document, still holds.
    sig = rest.index(b'"signature":{') + len(b'"signature":{')
    first = rest[:sig] + segment[1:] + b"," + rest[sig:]
    assert signing.verify(first, KEY) == _plan()
