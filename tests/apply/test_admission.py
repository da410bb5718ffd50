"""A resource is written whole or not at all: secrets resolve before the first write.

Real simulator processes (the call servers) and an embedded MiCollab; the
reconcile runs as a real `provgit` process with a chosen environment.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from provgit.apply.admission import review
from provgit.plan.model import Operation

from .helpers import Sim, cli_process, journal, read_store, write_config

# Names no developer machine sets: the test decides which ones exist.
SET_PIN = "PROVGIT_TEST_ADMISSION_PIN_SET"
HOT_DESK = "PROVGIT_TEST_ADMISSION_HOTDESK_SET"
UNSET = "PROVGIT_TEST_ADMISSION_PIN_UNSET"
VALUES = {SET_PIN: "47118093", HOT_DESK: "80802651"}


def _config(tmp_path: Path, sims: list[Sim]) -> Path:
    """Three users: user0 with a PIN that is set, user1 whose voicemail PIN is not
    set (its hot-desk PIN, on the call server record, is), user2 with none."""
    config = write_config(tmp_path / "config", sims, users=3)
    text = (config / "net.yaml").read_text()
    text = text.replace(
        "  - login_id: user0\n", f"  - login_id: user0\n    voicemail_pin: {{env: {SET_PIN}}}\n"
    )
    text = text.replace(
        "  - login_id: user1\n", f"  - login_id: user1\n    voicemail_pin: {{env: {UNSET}}}\n"
    )
    text = text.replace('{dn: "3001"}', f'{{dn: "3001", hot_desk_pin: {{env: {HOT_DESK}}}}}')
    (config / "net.yaml").write_text(text)
    return config


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != UNSET}
    return {**env, **VALUES, **extra}


def _holds(records: dict[str, dict[str, dict[str, object]]], login: str) -> list[str]:
    """Which records of `login` an element holds."""
    found = []
    for collection, recs in records.items():
        for key, fields in recs.items():
            if key == login or fields.get("login_id") == login:
                found.append(f"{collection}/{key}")
    return sorted(found)


def test_missing_pin_leaves_the_new_user_on_no_element_and_others_land(
    sims: list[Sim], tmp_path: Path
) -> None:
    config = _config(tmp_path, sims)
    mcl = config / ".provgit" / "elements" / "mcl.sqlite"
    cs1, cs2 = sims
    env = _env()
    ran = cli_process("reconcile", str(config), "--format", "json", env=env)
    assert ran.code == 4, ran.out + ran.err
    result = json.loads(ran.out)

    stores = {"mcl": read_store(mcl), "cs1": cs1.records(), "cs2": cs2.records()}
    # user1 is on no element at all; the others are where they belong.
    for name, records in stores.items():
        assert _holds(records, "user1") == [], name
    assert _holds(stores["mcl"], "user0") == ["users/user0"]
    assert _holds(stores["mcl"], "user2") == ["users/user2"]
    assert _holds(stores["cs1"], "user0") == ["users/user0"]
    assert _holds(stores["cs1"], "user2") == ["users/user2"]
    assert _holds(stores["cs2"], "user0") == ["remote_directory/3000"]

    # One distribution error, on the record that needs the reference, naming it.
    with journal(config / ".provgit") as j:
        errors = j.distribution_errors()
    assert [(e.element, e.collection, e.key, e.error_type) for e in errors] == [
        ("mcl", "users", "user1", "secret")
    ]
    assert f"secret {{env: {UNSET}}} is not set" in errors[0].reason
    # The rest of user1, on every element, was skipped because of it.
    ops = [
        (e["element"], op)
        for e in result["elements"]
        for op in e.get("operations", e.get("problems", []))
        if op["resource"] == "user1"
    ]
    skipped = {(el, op["collection"], op["key"]) for el, op in ops if op["status"] == "skipped"}
    assert skipped == {("cs2", "users", "user1"), ("cs1", "remote_directory", "3001")}
    for _, op in ops:
        if op["status"] == "skipped":
            assert op["message"].startswith("skipped: depends on users/user1 on mcl"), op
    # No value reached the output, the journal or the error.
    everything = ran.out + ran.err + json.dumps([e.detail for e in errors]) + errors[0].reason
    for value in VALUES.values():
        assert value not in everything

    # With the PIN set, the next reconcile writes user1 on all its elements.
    ran = cli_process("reconcile", str(config), env=_env(**{UNSET: "1234"}))
    assert ran.code == 0, ran.out + ran.err
    assert _holds(read_store(mcl), "user1") == ["users/user1"]
    assert _holds(cs2.records(), "user1") == ["users/user1"]
    assert _holds(cs1.records(), "user1") == ["remote_directory/3001"]


def test_plan_reports_the_unresolvable_secret_as_an_error_of_the_resource(
    sims: list[Sim], tmp_path: Path
) -> None:
    config = _config(tmp_path, sims)
    env = _env()
    ran = cli_process("plan", str(config), "--format", "json", env=env)
    assert ran.code == 0, ran.err
    plan = json.loads(ran.out)
    (error,) = plan["errors"]
    assert error["kind"] == "users" and error["resource"] == "user1"
    assert error["references"] == [f"env:{UNSET}"]
    assert error["message"] == f"secret {{env: {UNSET}}} is not set"
    assert sorted(error["elements"]) == ["cs1", "cs2", "mcl"]
    assert not any(UNSET in w for w in plan["warnings"])

    text = cli_process("plan", str(config), env=env)
    assert re.search(rf"error: users/user1: secret \{{env: {UNSET}\}} is not set", text.out)
    markdown = cli_process("plan", str(config), "--format", "markdown", env=env)
    shown = markdown.out.replace("\\_", "_")  # markdown escapes `_`; a reader sees it plain
    assert "users/user1" in shown and f"{{env: {UNSET}}} is not set" in shown
    assert "1 resource(s) in error" in markdown.out

    # Set: no error (the reference resolves where the plan runs).
    ran = cli_process("plan", str(config), "--format", "json", env=_env(**{UNSET: "1"}))
    assert json.loads(ran.out)["errors"] == []


def test_validate_secrets_locates_every_unresolvable_reference(tmp_path: Path) -> None:
    config = write_config(tmp_path / "config", [], users=0, embedded_mcl=True)
    (config / "net.yaml").write_text(
        "elements:\n"
        "  - {name: mcl, type: micollab, ceid: 1}\n"
        "  - {name: cs1, type: mivb, ceid: 2, cluster: east}\n"
        "users:\n"
        "  - login_id: jdoe\n"
        "    first_name: J\n"
        "    last_name: Doe\n"
        "    host: cs1\n"
        f"    voicemail_pin: {{env: {UNSET}}}\n"
        "    services:\n"
        f"      - {{dn: '3000', hot_desk_pin: {{env: {HOT_DESK}}}}}\n"
        "      - dn: '3001'\n"
        "        hot_desk_pin: {file: /nonexistent/provgit-test/pin}\n"
    )
    plain = cli_process("validate", str(config), env=_env())
    assert plain.code == 0, plain.out + plain.err  # references are not checked unless asked
    ran = cli_process("validate", str(config), "--secrets", env=_env())
    assert ran.code == 1, ran.out + ran.err
    # Each at the field that holds the reference (the key's line and column).
    assert f"net.yaml:9:5: error: [users/jdoe] secret {{env: {UNSET}}} is not set" in ran.out
    assert (
        "net.yaml:13:9: error: [users/jdoe] secret {file: /nonexistent/provgit-test/pin} "
        "cannot be read (FileNotFoundError)" in ran.out
    )
    assert HOT_DESK not in ran.out
    ok = cli_process("validate", str(config), "--secrets", env=_env(**{UNSET: "1"}))
    assert ok.code == 1 and UNSET not in ok.out and "/nonexistent/provgit-test/pin" in ok.out


def _op(key: str, collection: str = "users", fields: dict[str, object] | None = None) -> Operation:
    return Operation("add", collection, key, "users", "u1", fields=fields or {"login_id": "u1"})


def test_review_refuses_a_resource_everywhere_and_its_dependents(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(UNSET, raising=False)
    pin = {"$sensitive": "unresolved", "ref": f"env:{UNSET}"}
    needs = _op("u1", fields={"login_id": "u1", "voicemail_pin": pin})
    dependent = Operation(
        "add", "roles", "r", "roles", "r", fields={"name": "r"}, depends_on=(("users", "u1"),)
    )
    role_elsewhere = Operation("add", "roles", "r", "roles", "r", fields={"name": "r"})
    other = Operation("add", "users", "u2", "users", "u2", fields={"login_id": "u2"})
    admission = review(
        [("cs", [_op("u1"), role_elsewhere]), ("mcl", [needs, dependent, other])],
        reachable=["cs", "mcl"],
    )
    failed = admission.verdict("mcl", needs)
    assert failed is not None and failed.status == "failed" and failed.error_type == "secret"
    assert failed.message.startswith(f"secret {{env: {UNSET}}} is not set")
    skipped = admission.verdict("cs", _op("u1"))
    assert skipped is not None and skipped.message.startswith("skipped: depends on users/u1 on mcl")
    # The role depends on the refused record on mcl: refused there and on cs too.
    for element, op in (("mcl", dependent), ("cs", role_elsewhere)):
        v = admission.verdict(element, op)
        assert v is not None and v.status == "skipped"
    assert admission.verdict("mcl", other) is None


def test_a_refused_user_queued_for_a_down_element_stays_off_it_when_it_returns(
    sims: list[Sim], tmp_path: Path
) -> None:
    # The element down queues its writes at once, the refused user's too; when
    # it returns, the user is still refused whole: nothing of it lands there.
    config = _config(tmp_path, sims)
    cs1 = sims[0]
    env = _env()
    assert cli_process("reconcile", str(config), env=env).code == 4  # user1 refused
    cs1.faults(offline=True)
    ran = cli_process("reconcile", str(config), env=env)
    assert ran.code == 4, ran.out + ran.err
    with journal(config / ".provgit") as j:
        # user1 is hosted on cs2; cs1 owes it a remote directory entry.
        assert ("cs1", "remote_directory", "3001") in {
            (p.element, p.collection, p.key) for p in j.pending()
        }
    cs1.faults(offline=False)
    again = cli_process("reconcile", str(config), env=env)
    assert again.code == 4, again.out + again.err
    assert _holds(cs1.records(), "user1") == []
    assert _holds(cs1.records(), "user0") == ["users/user0"]
    status = cli_process("status", str(config), "--format", "json", env=env)
    assert status.code == 4 and not json.loads(status.out)["in_sync"]
    # With the secret set, the user lands on every element it belongs on.
    done = cli_process("reconcile", str(config), env=_env(**{UNSET: "9157"}))
    assert done.code == 0, done.out + done.err
    assert _holds(cs1.records(), "user1") == ["remote_directory/3001"]
    assert cli_process("status", str(config), env=_env(**{UNSET: "9157"})).code == 0


def test_an_empty_secret_is_refused_like_a_missing_one(tmp_path: Path) -> None:
    # A CI job maps a secret nobody configured to "": that must not blank a PIN.
    keys = tmp_path / "keys"
    keys.write_text("PIN_A=\nPIN_B=42429157\n")
    blank = tmp_path / "blank-pin"
    blank.write_text("\n")
    for private in (keys, blank):
        private.chmod(0o600)
    config = write_config(tmp_path / "config", [], users=0, embedded_mcl=True)
    (config / "net.yaml").write_text(
        "elements:\n"
        "  - {name: mcl, type: micollab, ceid: 1}\n"
        "  - {name: cs1, type: mivb, ceid: 2, cluster: east}\n"
        "users:\n"
        + "".join(
            f"  - {{login_id: {login}, first_name: J, last_name: D, host: cs1, "
            f"voicemail_pin: {ref}, services: [{{dn: '{3000 + i}'}}]}}\n"
            for i, (login, ref) in enumerate(
                [
                    ("envuser", f"{{env: {UNSET}}}"),
                    ("keyuser", f"{{file: {keys}, key: PIN_A}}"),
                    ("fileuser", f"{{file: {blank}}}"),
                    ("fine", f"{{file: {keys}, key: PIN_B}}"),
                ]
            )
        )
    )
    env = _env(**{UNSET: ""})
    checked = cli_process("validate", str(config), "--secrets", env=env)
    assert checked.code == 1, checked.out + checked.err
    assert f"[users/envuser] secret {{env: {UNSET}}} is empty" in checked.out
    assert f"[users/keyuser] secret {{file: {keys}, key: PIN_A}} cannot be read" in checked.out
    assert f"[users/fileuser] secret {{file: {blank}}} cannot be read" in checked.out
    assert "users/fine" not in checked.out

    ran = cli_process("reconcile", str(config), "--format", "json", env=env)
    assert ran.code == 4, ran.out + ran.err
    mcl = read_store(config / ".provgit" / "elements" / "mcl.sqlite")
    assert sorted(mcl.get("users", {})) == ["fine"]
    with journal(config / ".provgit") as j:
        errors = {e.key: e.reason for e in j.distribution_errors() if e.element == "mcl"}
    assert sorted(errors) == ["envuser", "fileuser", "keyuser"]
    assert errors["envuser"].startswith(f"secret {{env: {UNSET}}} is empty")
    assert "42429157" not in ran.out + ran.err


def test_validate_secrets_warns_of_a_secret_file_every_user_may_read(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("PIN_A=47113592\n")
    config = write_config(tmp_path / "config", [], users=0, embedded_mcl=True)
    (config / "net.yaml").write_text(
        "elements:\n"
        "  - {name: mcl, type: micollab, ceid: 1}\n"
        "  - {name: cs1, type: mivb, ceid: 2, cluster: east}\n"
        "users:\n"
        "  - login_id: jdoe\n"
        "    first_name: J\n"
        "    last_name: Doe\n"
        "    host: cs1\n"
        f"    voicemail_pin: {{file: {keys}, key: PIN_A}}\n"
        "    services: [{dn: '3000'}]\n"
    )
    keys.chmod(0o644)
    shared = cli_process("validate", str(config), "--secrets")
    # A warning: the config still validates, and the value is never shown.
    assert shared.code == 0, shared.out + shared.err
    assert (
        f"net.yaml:9:5: warning: [users/jdoe] secret file {keys} is readable by every user "
        "of this machine (mode 0644)" in shared.out
    ), shared.out
    assert "47113592" not in shared.out + shared.err
    keys.chmod(0o600)
    private = cli_process("validate", str(config), "--secrets")
    assert private.code == 0 and "warning" not in private.out, private.out
