"""`status` on a machine without the secret values (the admin's laptop, another
fleet host reading the shared journal): the last plan's memo keeps a digest of
its inputs with each secret's reference in place of its value, so status
checks that one, answers from the stored target (no projection, no full
derivation) and says that a secret changed since the last plan is not seen.
With the config changed as well it derives nothing it cannot compare: the
document is the last plan's config's, not in sync, and says why. With the
secrets set, a changed value is still seen."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from provgit.api import Config, network
from provgit.incremental.disk import PlanMemo
from provgit.incremental.store import TargetStore
from provgit.report.document_views import NOT_DERIVED, worst_line

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "schemas" / "status.schema.json"
PINS = [
    line.partition("=")[0]
    for line in (ROOT / "scripts" / "demo-secrets.env").read_text().splitlines()
    if line and not line.startswith("#")
]


def _reconciled(sample: Path) -> Config:
    config = Config.open(sample, sample.parent / "state")
    assert asyncio.run(config.reconcile()).exit_code == 0
    return config


def _unset_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PINS:
        monkeypatch.delenv(name)


def _status(config: Config, monkeypatch: pytest.MonkeyPatch, projected: bool) -> Any:
    """The status, and whether it projected the config (the full derivation)."""
    projections: list[int] = []
    desired_target = network.desired_target

    def counting(*args: Any, **kwargs: Any) -> Any:
        projections.append(1)
        return desired_target(*args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(network, "desired_target", counting)
        # As `provgit status` runs: the config files as they are now.
        status = Config.at(config.root, config.state_dir).status()
    assert bool(projections) == projected, "projected" if projections else "not projected"
    return status


def _comparable(doc: dict[str, Any]) -> dict[str, Any]:
    doc = {k: v for k, v in doc.items() if k not in ("generated", "secrets_unavailable")}
    return {
        **doc,
        "resources": [{k: v for k, v in r.items() if k != "time"} for r in doc["resources"]],
    }


def _schema_errors(doc: Any) -> list[str]:
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(doc)]


def test_status_without_secrets_answers_from_the_last_plan_and_says_a_changed_secret_is_not_seen(
    sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _reconciled(sample)
    with_secrets = _status(config, monkeypatch, projected=False)
    assert "secrets_unavailable" not in with_secrets.document
    _unset_secrets(monkeypatch)
    status = _status(config, monkeypatch, projected=False)
    doc = status.document
    assert status.in_sync and doc["status"] == "Sync Completed"
    assert doc["secrets_unavailable"]["unresolved"] == len(PINS)
    assert doc["secrets_unavailable"]["config_changed"] is False
    assert "changed since the last plan is not seen" in doc["secrets_unavailable"]["note"]
    # The same document the machine with the secrets derives, plus the note.
    assert _comparable(doc) == _comparable(with_secrets.document)
    assert _schema_errors(doc) == []
    note = doc["secrets_unavailable"]["note"]
    assert f"Note: {note}" in status.text()
    assert "**Note:** secret values are not set here" in status.markdown()
    from provgit.render import status_html

    assert 'id="secrets-note"' in status_html.render(doc)


def test_status_without_secrets_after_a_config_change_is_not_in_sync_and_derives_nothing(
    sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _reconciled(sample)
    # A user's PIN now comes from another variable: with the secrets set the
    # element would be owed a new PIN; without them the projection could
    # not compare it, and a full derivation would call the user Sync Completed.
    sales = sample / "people" / "sales.yaml"
    sales.write_text(sales.read_text().replace("{env: VM_PIN_ECLARKE}", "{env: VM_PIN_NEW}"))
    _unset_secrets(monkeypatch)
    status = _status(config, monkeypatch, projected=False)
    doc = status.document
    assert not status.in_sync and not doc["in_sync"]
    assert doc["status"] != "Sync Completed"
    assert doc["secrets_unavailable"]["config_changed"] is True
    assert worst_line(doc) == NOT_DERIVED
    assert NOT_DERIVED in status.text()
    assert _schema_errors(doc) == []

    # Where the secrets are set, the same change is derived: the user is owed a PIN.
    monkeypatch.setenv("VM_PIN_NEW", "2468")
    for line in (ROOT / "scripts" / "demo-secrets.env").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            monkeypatch.setenv(name, value)
    status = _status(config, monkeypatch, projected=True)
    assert not status.in_sync and "secrets_unavailable" not in status.document
    open_users = {r["resource"] for r in status.document["resources"] if r["state"] != "completed"}
    assert "eclarke" in open_users


def test_a_changed_pin_is_seen_by_status_where_the_secrets_are_set_and_not_claimed_where_not(
    sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _reconciled(sample)
    monkeypatch.setenv("VM_PIN_ECLARKE", "1357")
    status = _status(config, monkeypatch, projected=True)
    assert not status.in_sync
    assert "secrets_unavailable" not in status.document
    monkeypatch.delenv("VM_PIN_ECLARKE")
    status = _status(config, monkeypatch, projected=False)
    # The one unset value cannot be compared: the note says so, nothing else changed.
    assert status.document["secrets_unavailable"] == {
        "unresolved": 1,
        "config_changed": False,
        "note": status.document["secrets_unavailable"]["note"],
    }
    assert status.in_sync


def test_a_memo_from_before_the_reference_digest_gets_one_from_the_next_memo_plan(
    sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _reconciled(sample)
    memo = PlanMemo(config.state_dir)
    meta = memo.load_meta()
    assert meta is not None and meta.references is not None
    import dataclasses

    memo.save_meta(dataclasses.replace(meta, references=None))
    asyncio.run(config.plan())  # from the memo: nothing changed
    again = memo.load_meta()
    assert again is not None and again.references == meta.references
    assert TargetStore(memo.target_path).digest() == meta.digest


def test_without_secrets_a_memo_from_before_the_reference_digest_derives_nothing(
    sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It cannot tell a config change from none: not in sync, not derived,
    until a plan where the secrets are set gives the memo its reference digest."""
    import dataclasses

    config = _reconciled(sample)
    memo = PlanMemo(config.state_dir)
    meta = memo.load_meta()
    assert meta is not None
    memo.save_meta(dataclasses.replace(meta, references=None))
    _unset_secrets(monkeypatch)
    status = _status(config, monkeypatch, projected=False)
    assert not status.in_sync
    assert status.document["secrets_unavailable"]["config_changed"] is True
