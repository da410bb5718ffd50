"""Drift between runs: records changed outside provgit since provgit wrote them.

Out-of-band edits go straight into the element's store (embedded elements) or
through a simulator's admin endpoint, as the element's own admin tool would.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from provgit.drivers.base import WriteOp
from provgit.simulator.store import ElementStore

from .helpers import Sim, cli, journal, write_config

PIN = "86420975"
OOB_PIN = "13572468"
NET = """\
elements:
  - {name: mcl, type: micollab, ceid: 1}
  - {name: mivb1, type: mivb, ceid: 2, cluster: east}
classes_of_service:
  - {number: 1, comment: Default}
  - {number: 7, comment: Sales}
templates:
  - name: Basic
    phones: [{label: Desk, device_type: "6920", primary: true}]
    cos: {day: 1}
roles:
  - {name: Agent, template: Basic}
users:
  - login_id: jdoe
    first_name: John
    last_name: Doe
    role: Agent
    host: mivb1
    voicemail_pin: {env: DRIFT_TEST_PIN}
    services:
      - dn: "2001"
"""
HELD = "held: drift on mivb1 (run apply --overwrite-drift or import it)"


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DRIFT_TEST_PIN", PIN)
    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)
    root = tmp_path / "config"
    root.mkdir()
    _settings(root, None)
    (root / "net.yaml").write_text(NET)
    first = cli("reconcile", str(root))
    assert first.code == 0, first.out + first.err
    return root


def _settings(root: Path, mode: str | None) -> None:
    drift = f"drift:\n  mode: {mode}\n" if mode else ""
    (root / "provgit.yaml").write_text(f"version: 1\nnetwork: drift\n{drift}")


def _store(root: Path) -> ElementStore:
    return ElementStore(root / ".provgit" / "elements" / "mivb1.sqlite")


def _oob(root: Path, collection: str, key: str, **changes: Any) -> None:
    """An element admin changes a record with the element's own tool."""
    store = _store(root)
    try:
        fields = dict(store.get_record(collection, key).fields, **changes)
        assert store.write(WriteOp("put", collection, key, fields), force=True).ok
    finally:
        store.close()


def _element(root: Path, collection: str, key: str) -> dict[str, Any]:
    store = _store(root)
    try:
        return dict(store.get_record(collection, key).fields)
    finally:
        store.close()


def _edit_config(root: Path, old: str, new: str) -> None:
    text = (root / "net.yaml").read_text()
    assert old in text
    (root / "net.yaml").write_text(text.replace(old, new))


def _drift_events(root: Path) -> list[str]:
    with journal(root / ".provgit") as j:
        return [e.message for e in j.events() if e.type == "drift"]


def _items(root: Path) -> list[tuple[str, str, str, tuple[str, ...]]]:
    with journal(root / ".provgit") as j:
        return [(d.element, d.collection, d.key, d.fields) for d in j.drift_items()]


@pytest.mark.parametrize("mode", ["report", "correct"])
def test_out_of_band_edit_before_an_unrelated_change_is_reported_as_drift(
    config: Path, mode: str
) -> None:
    _settings(config, mode)
    _oob(config, "cos", "1", comment="Edited by hand")
    _edit_config(config, "last_name: Doe", "last_name: Dough")  # unrelated to COS 1
    r = cli("reconcile", str(config), "--format", "json")
    doc = json.loads(r.out)
    (found,) = doc["drift"]
    assert (found["element"], found["collection"], found["key"]) == ("mivb1", "cos", "1")
    assert found["fields"] == ["comment"] and found["new"] is True
    events = _drift_events(config)
    assert any("drift on mivb1" in m and "cos/1 changed (comment)" in m for m in events), events
    assert _element(config, "users", "jdoe")["last_name"] == "Dough"
    if mode == "report":
        assert r.code == 4
        assert found["outcome"] == "held"
        assert _element(config, "cos", "1")["comment"] == "Edited by hand"
        assert _items(config) == [("mivb1", "cos", "1", ("comment",))]
    else:
        assert r.code == 0, r.out
        assert found["outcome"] == "corrected"
        assert _element(config, "cos", "1")["comment"] == "Default"
        assert any("corrected" in m and "cos/1" in m for m in events), events
        assert _items(config) == []  # recorded, then closed as corrected


def test_report_mode_holds_a_change_to_the_drifted_record_until_overwrite(config: Path) -> None:
    _settings(config, "report")
    _oob(config, "cos", "1", comment="Edited by hand")
    _edit_config(config, "comment: Default", "comment: Standard")  # touches the drifted record
    held = cli("reconcile", str(config))
    assert held.code == 4, held.out
    assert f"held     modify cos/1: {HELD}" in held.out
    assert "--overwrite-drift" in held.out
    assert _element(config, "cos", "1")["comment"] == "Edited by hand"
    # Still held by the next run: a person has not decided yet.
    again = cli("reconcile", str(config))
    assert again.code == 4 and HELD in again.out
    assert _element(config, "cos", "1")["comment"] == "Edited by hand"
    assert len([m for m in _drift_events(config) if "cos/1" in m]) == 1  # reported once

    overwrite = cli("reconcile", str(config), "--overwrite-drift")
    assert overwrite.code == 0, overwrite.out
    assert _element(config, "cos", "1")["comment"] == "Standard"
    assert _items(config) == []
    assert any("corrected" in m for m in _drift_events(config))
    assert cli("reconcile", str(config)).code == 0


def test_apply_overwrite_drift_writes_the_held_record(config: Path) -> None:
    _settings(config, "report")
    _oob(config, "cos", "7", comment="Edited by hand")
    held = cli("apply", str(config), "--yes")
    assert held.code == 4 and HELD in held.out
    assert _element(config, "cos", "7")["comment"] == "Edited by hand"
    done = cli("apply", str(config), "--yes", "--overwrite-drift")
    assert done.code == 0, done.out
    assert _element(config, "cos", "7")["comment"] == "Sales"
    assert _items(config) == []


def test_drift_item_clears_when_the_element_equals_the_config_again(config: Path) -> None:
    _settings(config, "report")
    _oob(config, "cos", "1", comment="Edited by hand")
    assert cli("reconcile", str(config)).code == 4
    assert _items(config) == [("mivb1", "cos", "1", ("comment",))]
    _oob(config, "cos", "1", comment="Default")  # the admin puts it back
    r = cli("reconcile", str(config))
    assert r.code == 0, r.out
    assert _items(config) == []
    assert any("gone" in m and "cos/1" in m for m in _drift_events(config))


def test_config_change_matching_the_out_of_band_edit_clears_the_drift(config: Path) -> None:
    _settings(config, "report")
    _oob(config, "cos", "1", comment="Edited by hand")
    assert cli("reconcile", str(config)).code == 4
    _edit_config(config, "comment: Default", "comment: Edited by hand")  # the config adopts it
    r = cli("reconcile", str(config))
    assert r.code == 0, r.out
    assert _items(config) == []


def test_a_change_provgit_made_itself_is_not_drift(config: Path) -> None:
    _settings(config, "report")
    _edit_config(config, "comment: Default", "comment: Standard")
    first = cli("reconcile", str(config), "--format", "json")
    assert first.code == 0 and json.loads(first.out)["drift"] == []
    _edit_config(config, "comment: Standard", "comment: Other")
    second = cli("reconcile", str(config), "--format", "json")
    assert second.code == 0 and json.loads(second.out)["drift"] == []
    assert _drift_events(config) == [] and _items(config) == []


def test_record_deleted_outside_provgit_is_drift_and_held(config: Path) -> None:
    _settings(config, "report")
    store = _store(config)
    try:
        assert store.write(WriteOp("delete", "cos", "7"), force=True).ok
    finally:
        store.close()
    r = cli("reconcile", str(config), "--format", "json")
    assert r.code == 4
    (found,) = json.loads(r.out)["drift"]
    assert (found["key"], found["change"], found["outcome"]) == ("7", "missing", "held")
    assert any("cos/7 missing" in m for m in _drift_events(config))


def test_drift_on_a_secret_field_names_it_and_never_its_value(config: Path) -> None:
    _settings(config, "report")
    _oob(config, "users", "jdoe", voicemail_pin=OOB_PIN)
    r = cli("reconcile", str(config), "--format", "json")
    (found,) = json.loads(r.out)["drift"]
    assert found["fields"] == ["voicemail_pin"]
    text = cli("reconcile", str(config))
    events = _drift_events(config)
    assert any("voicemail_pin" in m for m in events)
    with journal(config / ".provgit") as j:
        dump = "\n".join(j._db.iterdump())
    status = (config / ".provgit" / "status" / "status.json").read_text()
    for where in (r.out, text.out, text.err, "\n".join(events), dump, status):
        assert PIN not in where and OOB_PIN not in where


def test_journal_drift_items_read_only_query(config: Path) -> None:
    _settings(config, "report")
    _oob(config, "cos", "1", comment="X")
    assert cli("reconcile", str(config)).code == 4
    with journal(config / ".provgit") as j:
        (item,) = j.drift_items()
        doc = item.to_json()
    assert {k: doc[k] for k in ("element", "collection", "key", "fields", "state")} == {
        "element": "mivb1",
        "collection": "cos",
        "key": "1",
        "fields": ["comment"],
        "state": "open",
    }
    assert doc["first_seen"].endswith("Z")
    # A second run keeps when it was first seen.
    assert cli("reconcile", str(config)).code == 4
    with journal(config / ".provgit") as j:
        assert j.drift_items()[0].first_seen == item.first_seen


# ---- real simulator processes --------------------------------------------------


@pytest.mark.slow
def test_admin_edit_on_a_simulator_then_unrelated_commit_is_held_in_report_mode(
    sims: list[Sim], tmp_path: Path
) -> None:
    cs1, cs2 = sims
    report = "drift:\n  mode: report\n"
    config = write_config(tmp_path / "config", sims, users=2, extra_settings=report)
    assert cli("reconcile", str(config)).code == 0
    cs1.admin(
        "/admin/edit",
        {"op": "put", "collection": "cos", "key": "7", "fields": {"number": 7, "comment": "X"}},
    )
    # An unrelated change: users get a new first name.
    write_config(tmp_path / "config", sims, users=2, extra_settings=report, first_name="Bea")
    r = cli("reconcile", str(config), "--format", "json")
    assert r.code == 4, r.out
    doc = json.loads(r.out)
    assert [(d["element"], d["key"], d["outcome"]) for d in doc["drift"]] == [("cs1", "7", "held")]
    assert cs1.records()["cos"]["7"]["comment"] == "X"
    assert cs2.records()["users"]["user1"]["first_name"] == "Bea"
    with journal(config / ".provgit") as j:
        assert [(d.element, d.key, d.fields) for d in j.drift_items()] == [
            # The admin's edit also dropped the empty `options`: no options and
            # empty options are one value (target/canonical.py), so not drift.
            ("cs1", "7", ("comment",))
        ]
    done = cli("reconcile", str(config), "--overwrite-drift")
    assert done.code == 0, done.out
    assert cs1.records()["cos"]["7"]["comment"] == "Sales"


def test_import_drift_captures_the_item_and_merging_it_clears_it(config: Path) -> None:
    import git

    _settings(config, "report")
    (config / ".gitignore").write_text(".provgit/\n")
    repo = git.Repo.init(config)
    with repo.config_writer() as cw:
        cw.set_value("user", "name", "Test Admin")
        cw.set_value("user", "email", "admin@example.net")
    repo.git.add(".")
    repo.index.commit("config")
    _oob(config, "cos", "1", comment="Edited by hand")
    assert cli("reconcile", str(config)).code == 4

    imported = cli("import", "--drift", "--into", str(config), "--branch", "drift/cos")
    assert imported.code == 0, imported.out + imported.err
    with journal(config / ".provgit") as j:
        assert [(d.key, d.state, d.note) for d in j.drift_items()] == [
            ("1", "captured", "drift/cos")
        ]
    assert any("captured on branch drift/cos" in m for m in _drift_events(config))
    # Until the branch is merged the record stays as the admin left it.
    held = cli("reconcile", str(config))
    assert held.code == 4 and "captured on branch drift/cos" in held.out
    assert _element(config, "cos", "1")["comment"] == "Edited by hand"

    repo.git.merge("drift/cos")
    merged = cli("reconcile", str(config))
    assert merged.code == 0, merged.out
    assert _items(config) == []
    assert _element(config, "cos", "1")["comment"] == "Edited by hand"


def test_plan_shows_the_drifted_record_would_be_held_and_records_nothing(config: Path) -> None:
    _settings(config, "report")
    _oob(config, "cos", "1", comment="Edited by hand")
    r = cli("plan", str(config))
    assert r.code == 0, r.out + r.err
    assert f"drift: cos/1 on mivb1 changed outside provgit (comment): {HELD}" in r.out
    assert _items(config) == [] and _drift_events(config) == []
    _settings(config, None)
    r = cli("plan", str(config))
    assert "overwritten by apply (drift mode correct)" in r.out


def test_a_schema_1_journal_gains_the_drift_table_when_opened(tmp_path: Path) -> None:
    from provgit.journal import SCHEMA_VERSION, Journal

    with Journal.open(tmp_path) as j:
        j._db.execute("DROP TABLE drift")
        j.set_meta("schema_version", "1")
    with Journal.open(tmp_path) as j:
        assert j.meta("schema_version") == str(SCHEMA_VERSION) and SCHEMA_VERSION >= 2
        assert j.drift_items() == []
