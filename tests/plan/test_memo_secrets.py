"""The plan memo's digest covers every secret's value through one keyed
digest: a changed PIN (in the environment, a single-value file or a key
file) must make the next plan take the full path, and the digest, the memo
and the stored target never hold a value. Fingerprints taken from the
reference as the memo stores it ("env:NAME") must be those of the projection."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from plan.test_memo import _config, _plan, _user
from provgit import secrets
from provgit.api.planning import plan_from_memo
from provgit.plan import PlanOptions
from provgit.secrets import SENSITIVE, UNRESOLVED, Fingerprinter, parse_ref
from provgit.source import read_directory

KEY = b"k" * 32


def _write(path: Path, text: str) -> None:
    """Replaced, as an editor or a secrets agent replaces a file."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_text(text)
    os.replace(tmp, path)


def _memo_used(root: Path, state: Path) -> bool:
    found = asyncio.run(plan_from_memo(read_directory(root), root, state, PlanOptions()))
    return found is not None


def _everything_stored(state: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted((state / "memo").rglob("*")) if p.is_file())


@pytest.mark.parametrize("where", ["env", "file", "key"])
def test_a_changed_pin_misses_the_memo_and_no_value_is_stored(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A key file is read once per run: each plan here stands for a new run.
    monkeypatch.setattr(secrets, "_RECHECK_AFTER", 0.0)
    keys = tmp_path / "secrets"
    keys.mkdir()
    pin = keys / "pin"
    refs = {
        "env": {"env": "MEMO_PIN"},
        "file": {"file": str(pin)},
        "key": {"file": str(keys / "pins"), "key": "U000"},
    }

    def set_pin(value: str) -> None:
        monkeypatch.setenv("MEMO_PIN", value)
        _write(pin, value + "\n")
        _write(keys / "pins", f"U000={value}\nU001=5555\n")

    set_pin("48213906")
    root, state = tmp_path / "config", tmp_path / "state"
    users = [{**_user(i), "voicemail_pin": refs[where]} for i in range(3)]
    _config(root, users)
    _plan(root, state)
    assert _memo_used(root, state)
    set_pin("48213906")  # the same value again (a new file): still the memo
    assert _memo_used(root, state)
    set_pin("97531864")
    assert not _memo_used(root, state), f"a changed PIN ({where}) reused the memo"
    _plan(root, state)
    assert _memo_used(root, state)
    stored = _everything_stored(state)
    assert b"97531864" not in stored and b"48213906" not in stored


def test_fingerprint_of_a_stored_reference_is_the_projections(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FP_SET", "2468-set")
    monkeypatch.delenv("FP_UNSET", raising=False)
    (tmp_path / "pin").write_text("1357-file\n")
    (tmp_path / "pins").write_text("A=1111-key\n")
    described = [
        "env:FP_SET",
        "env:FP_UNSET",
        f"file:{tmp_path / 'pin'}",
        f"file:{tmp_path / 'absent'}",
        f"key:A@{tmp_path / 'pins'}",
        f"key:B@{tmp_path / 'pins'}",
    ]
    for key in (KEY, None):
        by_field, by_reference = Fingerprinter(key), Fingerprinter(key)
        for d in described:
            expected = by_field.field(parse_ref(d))[SENSITIVE]
            got = by_reference.fingerprint(d)
            assert got == expected, d
            assert by_reference.seen[d] == got
            for value in ("2468-set", "1357-file", "1111-key"):
                assert value not in got
        assert by_reference.unresolved == by_field.unresolved
    keyed = Fingerprinter(KEY)
    assert keyed.fingerprint("env:FP_UNSET") == UNRESOLVED
    assert keyed.unresolved == ["env:FP_UNSET"]
    before = keyed.fingerprint("env:FP_SET")
    monkeypatch.setenv("FP_SET", "2469-set")
    assert Fingerprinter(KEY).fingerprint("env:FP_SET") != before


def test_one_digest_of_all_values_changes_with_any_value_and_holds_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    refs = ["env:VD_A", "env:VD_B", "env:VD_C"]
    monkeypatch.setenv("VD_A", "1357")
    monkeypatch.setenv("VD_B", "2468")
    monkeypatch.delenv("VD_C", raising=False)
    first, unresolved = Fingerprinter(KEY).values_digest(refs)
    assert unresolved == ["env:VD_C"]
    assert "1357" not in first and "2468" not in first
    assert Fingerprinter(KEY).values_digest(refs)[0] == first  # stable across runs
    assert Fingerprinter(b"o" * 32).values_digest(refs)[0] != first  # keyed
    seen = {first}
    for name, value in [("VD_A", "1358"), ("VD_B", ""), ("VD_C", "9999")]:
        monkeypatch.setenv(name, value)
        now, _ = Fingerprinter(KEY).values_digest(refs)
        assert now not in seen, f"{name}={value!r} did not change the digest"
        seen.add(now)
    monkeypatch.delenv("VD_A")
    # A blank value (a CI secret nobody set) is missing, as `resolve` says.
    assert Fingerprinter(KEY).values_digest(refs)[1] == ["env:VD_A", "env:VD_B"]
    # Values that only differ in where one ends and the next begins.
    monkeypatch.setenv("VD_A", "12")
    monkeypatch.setenv("VD_B", "3")
    split_one = Fingerprinter(KEY).values_digest(refs[:2])[0]
    monkeypatch.setenv("VD_A", "1")
    monkeypatch.setenv("VD_B", "23")
    assert Fingerprinter(KEY).values_digest(refs[:2])[0] != split_one


def test_values_digest_from_the_environment_store_equals_the_one_through_os_environ(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    values = {
        "VS_ASCII": "1357",
        "VS_UTF8": "pïn-ünïcode",
        "VS_SPACES": "  \t ",  # blank: missing
        "VS_UNICODE_BLANK": "\xa0\u2003",  # blank for str.strip, not for bytes.strip
        "VS_SEPARATOR": "\x1c\x1f",  # the same
        "VS_PADDED": " 2468 ",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("VS_UNSET", raising=False)
    refs = sorted(f"env:{n}" for n in [*values, "VS_UNSET"])
    assert secrets.environ_view() is not os.environ  # POSIX: the fast read is what runs
    fast = Fingerprinter(KEY).values_digest(refs)
    monkeypatch.setattr(secrets, "environ_view", lambda: os.environ)
    through_environ = Fingerprinter(KEY).values_digest(refs)
    assert fast == through_environ
    assert sorted(fast[1]) == [
        "env:VS_SEPARATOR",
        "env:VS_SPACES",
        "env:VS_UNICODE_BLANK",
        "env:VS_UNSET",
    ]


@pytest.mark.parametrize(
    "value", ["8642", "", "  ", "\t\n", "\x1c", " 12 ", "\x1c5", "\u00a0", "é8642", "\u00a0\u2003"]
)
def test_the_memo_digest_reads_a_variable_as_a_secret_reference_does(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The digest reads variables from the environment's bytes (fast, 20,000
    # PINs and more); what it takes for unset must be what `resolve` refuses,
    # and a set value must count as that value, ASCII or not.
    monkeypatch.setenv("MEMO_PIN", value)
    ref = "env:MEMO_PIN"
    try:
        resolved: str | None = secrets.resolve(parse_ref(ref))
    except secrets.SecretUnavailable:
        resolved = None
    digest, unresolved = Fingerprinter(KEY).values_digest([ref])
    assert unresolved == ([] if resolved is not None else [ref])
    monkeypatch.setenv("MEMO_PIN", resolved if resolved is not None else "")
    assert Fingerprinter(KEY).values_digest([ref])[0] == digest
    monkeypatch.setenv("MEMO_PIN", (resolved or "") + "1")
    assert Fingerprinter(KEY).values_digest([ref])[0] != digest
