"""Splitting secrets off a write: what is stored keeps the fingerprint, never the plaintext."""

from __future__ import annotations

from provgit.wire.sensitive import SENSITIVE, any_sensitive, split_secrets


def test_split_secrets_keeps_fingerprint_and_ref_and_returns_plaintexts_by_path() -> None:
    fields = {
        "login_id": "jdoe",
        "pin": {SENSITIVE: "fp1", "ref": "env:PIN", "value": "1234"},
        "services": [{"dn": "2001", "voicemail": {SENSITIVE: "fp2", "value": "9876"}}],
    }
    stored, secrets = split_secrets(fields)
    assert stored == {
        "login_id": "jdoe",
        "pin": {SENSITIVE: "fp1", "ref": "env:PIN"},
        "services": [{"dn": "2001", "voicemail": {SENSITIVE: "fp2"}}],
    }
    assert secrets == {"pin": "1234", "services[0].voicemail": "9876"}
    # The caller's record is left as it was.
    assert fields["pin"] == {SENSITIVE: "fp1", "ref": "env:PIN", "value": "1234"}


def test_record_without_secrets_comes_back_as_a_copy() -> None:
    fields = {"number": 7, "options": {"a": [1, {"b": None}]}}
    stored, secrets = split_secrets(fields)
    assert stored == fields and stored is not fields
    assert secrets == {}
    assert not any_sensitive(fields)
    assert any_sensitive([{"x": [{SENSITIVE: "fp"}]}])


def test_fingerprint_without_a_value_is_stored_as_is() -> None:
    stored, secrets = split_secrets({"pin": {SENSITIVE: "fp"}})
    assert stored == {"pin": {SENSITIVE: "fp"}}
    assert secrets == {}
