"""The plan memo's meta is keyed with the state directory's key: its pickle
is unpickled only when its HMAC holds (an unpickled file runs what it says),
and its JSON summary is believed only when its own HMAC holds. Whoever can
write memo/ but not read the key (0600) cannot make `status` believe a crafted
summary, nor make provgit unpickle a file of theirs: either is refused and the
slow path (the pickle, else a full derivation) says what is true."""

from __future__ import annotations

import asyncio
import hashlib
import json
import pickle
from pathlib import Path

from provgit.api import Config
from provgit.incremental.disk import PlanMemo


def test_an_edited_summary_with_its_pickle_digest_recomputed_is_not_believed(
    sample: Path,
) -> None:
    config = Config.open(sample, sample.parent / "state")
    assert asyncio.run(config.reconcile()).exit_code == 0
    memo = config.state_dir / "memo"
    summary, pickled = memo / "meta.json", memo / "meta.pickle"
    doc = json.loads(summary.read_bytes())
    # What one who can write memo/ makes: other values, every digest made anew.
    crafted = {**doc, "network": "crafted-network"}
    for name in ("pickle_sha256", "pickle_hmac"):
        if name in crafted:
            crafted[name] = hashlib.sha256(pickled.read_bytes()).hexdigest()
    crafted.pop("hmac", None)
    summary.write_bytes(json.dumps(crafted).encode())
    found = PlanMemo(config.state_dir).load_summary()
    assert found is not None and found.network == "northwind-voice"
    assert config.status().network == "northwind-voice"


class _Planted:
    marker = ""

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        # Unpickling this writes the marker file: the proof it ran.
        return (Path.write_text, (Path(self.marker), "ran"))


def test_a_pickle_not_written_with_the_state_key_is_not_unpickled(
    sample: Path, tmp_path: Path
) -> None:
    config = Config.open(sample, sample.parent / "state")
    assert asyncio.run(config.reconcile()).exit_code == 0
    before = config.status()
    planted = _Planted()
    planted.marker = str(tmp_path / "ran")
    pickled = config.state_dir / "memo" / "meta.pickle"
    good = pickled.read_bytes()
    ours = PlanMemo(config.state_dir).load_summary()
    assert ours is not None
    for bad in (pickle.dumps(planted), good[:32] + pickle.dumps(planted)):
        pickled.write_bytes(bad)
        assert PlanMemo(config.state_dir).load_meta() is None
        # The summary sealed by us may still say what it said; never the pickle's word.
        assert PlanMemo(config.state_dir).load_summary() in (None, ours)
        assert not (tmp_path / "ran").exists()
        after = config.status()
        assert after.network == before.network and after.in_sync == before.in_sync
    assert not (tmp_path / "ran").exists()
