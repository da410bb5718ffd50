"""`status` reads from the stored target only what something is known about
(`derive_fast`): its document must be the one the full derivation (every
stored record read) gives, in sync, after an out-of-band edit and with a
pending update, and the totals it looks up must be those of the target."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from provgit.api import Config
from provgit.incremental.disk import PlanMemo
from provgit.incremental.memo_summary import memo_key, read_summary, summary_of
from provgit.incremental.store import TargetStore
from provgit.model.common import Model
from provgit.report import derive, derived_part
from provgit.secrets import local_key
from provgit.simulator.store import ElementStore

from .conftest import edit_element, element_record

NEW_USER = """\
  - login_id: zwu
    first_name: Zoe
    last_name: Wu
    email: zoe.wu@northwind.example
    department: Sales
    location: Toronto
    role: Sales Representative
    template: Desk and Softphone
    host: mivb3
    services:
      - dn: "3999"
        label: Desk
"""


def _documents(config: Config, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    """The status document from the fast path, and from the full derivation."""
    looked_up: list[int] = []
    totals_of = TargetStore.totals_of

    def counting(store: TargetStore, resources: Any) -> dict[tuple[str, str], int]:
        found = totals_of(store, list(resources))
        looked_up.append(len(found))
        return found

    with monkeypatch.context() as m:
        m.setattr(TargetStore, "totals_of", counting)
        # Derived each time, not the last report's part read back (`report.derived_part`).
        m.setattr(derived_part, "load_part", lambda state_dir, key: None)
        fast = dict(config.status().document)
        assert looked_up, "the fast path was not taken"
        looked_up.clear()
        # Nothing is cheap enough to look at: every stored record is read.
        m.setattr(derive, "FAST_LIMIT", -1)
        full = dict(config.status().document)
        assert not looked_up, "the full derivation was not taken"
    for doc in (fast, full):
        # A completed resource with nothing newer in the journal is as of now.
        now = doc.pop("generated")
        doc["resources"] = [
            {**r, "time": "now"} if r.get("time") == now else r for r in doc["resources"]
        ]
    return fast, full


def test_fast_status_says_what_the_full_derivation_says_through_drift_and_a_pending_update(
    sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = Config.open(sample, sample.parent / "state")
    assert asyncio.run(config.reconcile()).exit_code == 0
    fast, full = _documents(config, monkeypatch)
    assert fast == full and fast["in_sync"]
    total = fast["counts"]["resources"]

    # Another user's change on an element, seen by the next (memo) plan.
    record = element_record(config.state_dir, "mivb3", "users", "jpatel")
    edit_element(config.state_dir, "mivb3", "users", "jpatel", {**record, "last_name": "Oob"})
    asyncio.run(config.plan())
    fast, full = _documents(config, monkeypatch)
    assert fast == full and not fast["in_sync"]
    assert fast["counts"]["resources"] == total
    assert fast["counts"]["resources_not_completed"] >= 1

    # A busy element keeps the new user's records as pending updates.
    store = ElementStore(config.state_dir / "elements" / "mivb3.sqlite")
    try:
        store.set_state("locked")
    finally:
        store.close()
    sales = sample / "people" / "sales.yaml"
    sales.write_text(sales.read_text() + NEW_USER)
    assert asyncio.run(config.reconcile()).exit_code == 4
    fast, full = _documents(config, monkeypatch)
    assert fast == full and not fast["in_sync"]
    assert fast["counts"]["pending_updates"] >= 1
    assert {p["element"] for p in fast["pending_updates"]} == {"mivb3"}


def _comparable(doc: Any) -> Any:
    doc = dict(doc)
    now = doc.pop("generated")
    doc["resources"] = [
        {**r, "time": "now"} if r.get("time") == now else r for r in doc["resources"]
    ]
    return doc


def test_status_in_sync_says_from_the_memo_summary_what_it_says_from_the_pickle(
    sample: Path,
) -> None:
    config = Config.open(sample, sample.parent / "state")
    assert asyncio.run(config.reconcile()).exit_code == 0
    summary = config.state_dir / "memo" / "meta.json"
    pickled = config.state_dir / "memo" / "meta.pickle"
    assert summary.is_file(), "the plan wrote no summary beside the pickle"
    meta = PlanMemo(config.state_dir).load_meta()
    assert meta is not None
    assert PlanMemo(config.state_dir).load_summary() == summary_of(meta)
    from_summary = config.status()
    assert from_summary.network == "northwind-voice" and from_summary.in_sync
    good = summary.read_bytes()
    doc = json.loads(good)
    other = {**doc, "pickle_hmac": hashlib.sha256(pickled.read_bytes() + b"x").hexdigest()}
    key = memo_key(local_key(config.state_dir))
    # Torn, of another pickle, of another shape, gone: the pickle is read instead.
    for bad in (
        good[: len(good) // 2],
        json.dumps(other).encode(),
        json.dumps({**doc, "network": 7}).encode(),
        json.dumps({**doc, "elements": {"mivb1": ["mivb", None]}}).encode(),
        None,
    ):
        if bad is None:
            summary.unlink()
        else:
            summary.write_bytes(bad)
        assert read_summary(summary, pickled, key) is None
        from_pickle = config.status()
        assert _comparable(from_pickle.document) == _comparable(from_summary.document)
        assert from_pickle.network == from_summary.network


def test_status_after_a_settings_edit_names_the_network_the_config_names_now(
    sample: Path,
) -> None:
    config = Config.open(sample, sample.parent / "state")
    assert asyncio.run(config.reconcile()).exit_code == 0
    settings = sample / "provgit.yaml"
    settings.write_text(settings.read_text().replace("network: northwind-voice", "network: nw2"))
    status = config.status()
    # Not the name the memo of the last plan holds: provgit.yaml changed since.
    assert status.network == "nw2" and status.document["network"] == "nw2"
    # Read afresh (as the CLI does): the new name, validated.
    fresh = Config.open(sample, sample.parent / "state").status()
    assert fresh.network == "nw2" and fresh.document["network"] == "nw2"
    settings.write_text(settings.read_text().replace("network: nw2", "network: [nw2"))
    broken = Config.open(sample, sample.parent / "state").status()
    assert broken.problems and not broken.in_sync
    assert broken.network is None


PROBE = """
import sys
from provgit.cli import main
try:
    main(["status", sys.argv[1], "--state-dir", sys.argv[2], "--format", "json"])
except SystemExit as e:
    print("EXIT", e.code)
print("MODELS", sorted(m for m in sys.modules
                       if m in ("pydantic", "importlib.metadata") or m.startswith("ruamel")))
"""


def test_status_in_sync_builds_no_model(sample: Path) -> None:
    config = Config.open(sample, sample.parent / "state")
    assert asyncio.run(config.reconcile()).exit_code == 0
    argv = [sys.executable, "-c", PROBE, str(sample), str(config.state_dir)]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    assert "EXIT 0" in out and "MODELS []" in out, out[-500:]
    # The config changed since the plan: validated (the models built) as before.
    (sample / "people" / "sales.yaml").write_text(
        (sample / "people" / "sales.yaml").read_text() + NEW_USER
    )
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    assert "EXIT 4" in out and "'pydantic'" in out, out[-500:]


RECONCILE_PROBE = """
import sys
from provgit.cli import main
try:
    main(["reconcile", sys.argv[1], "--state-dir", sys.argv[2]])
except SystemExit as e:
    print("EXIT", e.code)
print("LOADED", sorted(m for m in sys.modules
                       if m.startswith("ruamel") or m == "provgit.model.telephony"))
"""


def test_reconcile_with_nothing_to_do_reads_no_yaml_and_builds_no_user_model(
    sample: Path,
) -> None:
    config = Config.open(sample, sample.parent / "state")
    assert asyncio.run(config.reconcile()).exit_code == 0
    argv = [sys.executable, "-c", RECONCILE_PROBE, str(sample), str(config.state_dir)]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    assert "EXIT 0" in out and "LOADED []" in out, out[-500:]
    # A changed file: parsed and validated (file:line:col), as before.
    (sample / "people" / "sales.yaml").write_text(
        (sample / "people" / "sales.yaml").read_text() + NEW_USER
    )
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    assert "EXIT 0" in out and "'ruamel.yaml'" in out, out[-500:]


BUILT_PROBE = """
import sys
from provgit.cli import main
try:
    main(["reconcile", sys.argv[1], "--state-dir", sys.argv[2]])
except SystemExit as e:
    print("EXIT", e.code)
from provgit.model.common import Model
def every(c):
    for s in c.__subclasses__():
        yield s
        yield from every(s)
print("BUILT", sorted({c.__name__ for c in every(Model) if c.__pydantic_complete__}))
"""


def test_reconcile_with_nothing_to_do_builds_no_validator_for_the_memos_settings(
    sample: Path,
) -> None:
    """The memo's settings and elements are unpickled, never validated: their
    models' validators are built only when a config is validated (deferred;
    the defaults made without validating), and then validate as before."""
    config = Config.open(sample, sample.parent / "state")
    assert asyncio.run(config.reconcile()).exit_code == 0
    argv = [sys.executable, "-c", BUILT_PROBE, str(sample), str(config.state_dir)]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    assert "EXIT 0" in out and "BUILT []" in out, out[-500:]
    settings = sample / "provgit.yaml"
    settings.write_text(settings.read_text() + "\nunknown_setting: 1\n")
    out = subprocess.run(argv, capture_output=True, text=True).stdout
    assert "EXIT 1" in out and "'Settings'" in out, out[-500:]


def test_the_defaults_made_without_validating_are_the_validated_ones() -> None:
    from provgit.model.network import Connection, Element
    from provgit.model.settings import Settings

    default = Settings()
    assert default == Settings.model_validate({}) == Settings.model_validate_json("{}")
    for name, info in Settings.model_fields.items():
        if isinstance(info.default, Model):
            assert info.default == type(info.default).model_validate(
                info.default.model_dump(by_alias=True)
            ), name
    element = Element.model_validate({"name": "e1", "type": "mivb", "ceid": 1, "cluster": "c1"})
    assert element.connection == Connection.model_validate({})
