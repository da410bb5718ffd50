"""`provgit watch` and an element that stops taking provgit's token: the live
/status.json says "Token refused" for it and not in sync, its writes wait as
pending updates (not distribution errors), and they land once the token is
taken again. Real watcher and simulator processes, 127.0.0.1 only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from apply.helpers import Sim, wait_for, write_config

from .helpers import Watch, start_in_sync

# One write per call, one call at a time, so a run is caught in its middle.
SERIAL = "  batch_size: 1\n  batches_in_flight: 1\n"
SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "status.schema.json"


def _schema_errors(doc: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(doc)]


@pytest.mark.slow
def test_token_refused_shows_in_the_live_status_and_its_writes_wait_until_taken_again(
    sims: list[Sim], tmp_path: Path, watches: list[Watch]
) -> None:
    _, cs2 = sims
    config = write_config(tmp_path / "config", sims, users=6, extra_settings=SERIAL)
    w = start_in_sync(config, watches)

    # A change reaches cs2 slowly; once some of it has landed there, cs2
    # stops taking provgit's token (revoked in the middle of the run). 2 s an
    # answer, not 0.3 s: the revocation must come while writes are still to go,
    # and at 0.3 s the rest of cs2's writes took ~1.5 s, less than this test's
    # poll may lag at load 30+ (then the run ends before the token is refused).
    cs2.faults(latency_ms=2000)
    mark = w.mark()
    write_config(tmp_path / "config", sims, users=6, extra_settings=SERIAL, first_name="Cy")

    def some_landed() -> bool:
        users = cs2.records().get("users", {}).values()
        return any(u["first_name"] == "Cy" for u in users)

    assert wait_for(some_landed, timeout=120)
    cs2.faults(token_revoked=True, latency_ms=0)
    w.wait_log(
        "element_status",
        lambda e: e["element"] == "cs2" and e["status"] == "Token refused",
        after=mark,
        timeout=30,
    )
    w.wait_log("sync_result", lambda e: e["pending_updates"] > 0, after=mark, timeout=30)
    doc = w.status()
    assert _schema_errors(doc) == []
    assert doc["in_sync"] is False and doc["status"] != "Sync Completed"
    cs2_doc = doc["elements"]["cs2"]
    assert cs2_doc["status"] == "Token refused", cs2_doc
    assert doc["elements"]["cs1"]["status"] == "Sync Completed"
    on_cs2 = [r for r in doc["resources"] if "cs2" in r["elements"]]
    assert on_cs2 and all(r["status"] != "Sync Completed" for r in on_cs2), on_cs2
    assert {r["elements"]["cs2"]["state"] for r in on_cs2} <= {"token_refused", "pending"}
    assert doc["distribution_errors"] == []
    assert {p["element"] for p in doc["pending_updates"]} == {"cs2"}
    downs = [e for e in doc["events"] if e["type"] == "element_down" and e["element"] == "cs2"]
    assert len(downs) == 1 and "Token refused" in downs[0]["message"], downs
    assert {u["first_name"] for u in cs2.records()["users"].values()} == {"Ann", "Cy"}

    # The token is taken again: the pending updates go out on their retry.
    mark = w.mark()  # before the token is taken: the retry may end at once
    cs2.faults(token_revoked=False)
    w.wait_log(
        "sync_result",
        lambda e: e["pending_updates"] == 0 and e["status"] == "Sync Completed",
        after=mark,
        timeout=60,
    )
    assert {u["first_name"] for u in cs2.records()["users"].values()} == {"Cy"}
    doc = w.status()
    assert doc["in_sync"] is True and doc["elements"]["cs2"]["status"] == "Sync Completed"
    assert doc["pending_updates"] == [] and doc["distribution_errors"] == []
