"""`status` reads from the stored target only what something is known about
(`derive_fast`): its document must be the one the full derivation (every
stored record read) gives, in sync, after an out-of-band edit and with a
pending update, and the totals it looks up must be those of the target."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from provgit.api import Config
from provgit.incremental.store import TargetStore
from provgit.report import derive
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
