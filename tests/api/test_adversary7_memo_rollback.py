"""Adversary 7: the plan memo rolled back or edited by one who can write
memo/ but not read the state directory's key. The meta is sealed
(`memo_summary`); an element memo's operations decide what `status` reports
pending and what the next plan re-plans, so they are sealed as well."""

from __future__ import annotations

import asyncio
import marshal
import shutil
from pathlib import Path

import pytest

from provgit.api import Config
from provgit.incremental.memo_summary import MAC_BYTES

from .conftest import element_record


def _fresh(sample: Path) -> Config:
    """The config read again (a Config reads its files once)."""
    return Config.open(sample, sample.parent / "state")


def test_status_after_an_old_memo_is_copied_back_and_the_config_reverted_is_not_in_sync(
    sample: Path, tmp_path: Path
) -> None:
    config = _fresh(sample)
    assert asyncio.run(config.reconcile()).exit_code == 0
    memo = config.state_dir / "memo"
    saved = tmp_path / "memo-old"
    shutil.copytree(memo, saved)
    sales = sample / "people" / "sales.yaml"
    before = sales.read_text()
    sales.write_text(before.replace("last_name: Patel", "last_name: Patelx"))
    assert asyncio.run(_fresh(sample).reconcile()).exit_code == 0
    assert element_record(config.state_dir, "mivb3", "users", "jpatel")["last_name"] == "Patelx"
    # The rollback: the memo (sealed by us) of the old config copied back, newer
    # than every observation, and the config reverted to what it was planned from.
    shutil.rmtree(memo)
    shutil.copytree(saved, memo, copy_function=shutil.copy)
    sales.write_text(before)
    assert not _fresh(sample).status().in_sync
    assert asyncio.run(_fresh(sample).reconcile()).exit_code == 0
    assert element_record(config.state_dir, "mivb3", "users", "jpatel")["last_name"] == "Patel"
    assert _fresh(sample).status().in_sync


def _emptied(data: bytes) -> tuple[bytes, bool]:
    """An element memo's document (sealed or not) with no operations, and
    whether it had any."""
    try:
        doc = marshal.loads(data)
    except (ValueError, EOFError, TypeError):
        doc = None
    if not isinstance(doc, dict):
        doc = marshal.loads(data[MAC_BYTES:])  # past the seal, as provgit writes it now
    had = bool(doc["operations"])
    doc["operations"], doc["payload"], doc["stored_without"] = [], marshal.dumps([]), []
    return marshal.dumps(doc), had


@pytest.mark.parametrize("keep_seal", [False, True], ids=["bare", "old-seal-kept"])
def test_element_memos_emptied_without_the_key_neither_make_status_in_sync_nor_skip_the_update(
    sample: Path, keep_seal: bool
) -> None:
    assert asyncio.run(_fresh(sample).reconcile()).exit_code == 0
    sales = sample / "people" / "sales.yaml"
    sales.write_text(sales.read_text().replace("last_name: Patel", "last_name: Patelx"))
    asyncio.run(_fresh(sample).plan())
    state = sample.parent / "state"
    assert not _fresh(sample).status().in_sync
    emptied = 0
    for path in (state / "memo" / "elements").glob("*.marshal"):
        data = path.read_bytes()
        doc, had = _emptied(data)
        emptied += had
        # What one without the key can write: the document, bare or after the seal it had.
        path.write_bytes(data[:MAC_BYTES] + doc if keep_seal else doc)
    assert emptied == 2, "jpatel's update was pending on micollab1 and mivb3"
    status = _fresh(sample).status()
    assert not status.in_sync
    assert status.document["counts"]["resources_not_completed"] >= 1
    assert asyncio.run(_fresh(sample).reconcile()).exit_code == 0
    assert element_record(state, "mivb3", "users", "jpatel")["last_name"] == "Patelx"
    assert _fresh(sample).status().in_sync
