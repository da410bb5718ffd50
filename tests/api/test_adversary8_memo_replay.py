"""adversary8: an element memo sealed by provgit, replayed. The seal says
provgit wrote it, not that it is the latest: one who can write memo/ but not
read the key copies back an element memo of the same target (same config),
saved while the element was in sync, over the one that holds a pending write.
Before, the copied file was newer than the observation cache, so `status`
took its empty operation list without comparing revisions and said Sync
Completed while the element held a record drifted from the config."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from provgit.api import Config

from .conftest import edit_element, element_record


def _fresh(sample: Path) -> Config:
    return Config.open(sample, sample.parent / "state")


def test_an_older_sealed_element_memo_copied_back_does_not_make_status_in_sync(
    sample: Path, tmp_path: Path
) -> None:
    assert asyncio.run(_fresh(sample).reconcile()).exit_code == 0
    state = sample.parent / "state"
    assert _fresh(sample).status().in_sync
    memo = state / "memo" / "elements" / "mivb3.marshal"
    saved = tmp_path / "mivb3.marshal"
    shutil.copy(memo, saved)  # sealed by provgit, in sync, the same target as later
    drifted = {**element_record(state, "mivb3", "users", "jpatel"), "last_name": "Hacked"}
    edit_element(state, "mivb3", "users", "jpatel", drifted)
    asyncio.run(_fresh(sample).plan())
    assert not _fresh(sample).status().in_sync
    assert memo.read_bytes() != saved.read_bytes()
    shutil.copy(saved, memo)  # the replay: a fresh mtime, newer than the observation
    status = _fresh(sample).status()
    assert not status.in_sync
    assert status.document["counts"]["resources_not_completed"] >= 1
    # Nor does the next reconcile take the replayed memo's word: it puts jpatel back.
    assert asyncio.run(_fresh(sample).reconcile()).exit_code == 0
    assert element_record(state, "mivb3", "users", "jpatel")["last_name"] != "Hacked"
    assert _fresh(sample).status().in_sync
