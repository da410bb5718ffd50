"""The live `/status.json` of a real `provgit watch` validates against the
published schema, `watch` section included (issue 12)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from apply.helpers import Sim, write_config

from .helpers import Watch, start_watch

SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "status.schema.json"


@pytest.mark.slow
def test_live_status_json_validates_against_the_schema_and_derives_landing(
    sims: list[Sim], tmp_path: Path, watches: list[Watch]
) -> None:
    config = write_config(tmp_path / "config", sims, users=2)
    w = start_watch([str(config), "--resync-seconds", "0"])
    watches.append(w)
    w.wait_log("run_finished", timeout=30)
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))
    doc = w.status()
    assert "watch" in doc
    problems = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]
    assert problems == []
    assert doc["in_sync"] and doc["status"] == "Sync Completed"
    cos = [r for r in doc["resources"] if r["kind"] == "classes_of_service"]
    # A class of service lands on both call servers of the cluster.
    assert cos and all((r["completed"], r["total"], r["shared"]) == (2, 2, True) for r in cos)
    # An element going down shows, and the document still validates.
    sims[1].faults(offline=True)
    mark = w.mark()
    (config / "net.yaml").write_text(
        (config / "net.yaml").read_text().replace("first_name: Ann", "first_name: Bo")
    )
    w.wait_log("run_finished", after=mark, timeout=30)
    doc = w.status()
    assert list(validator.iter_errors(doc)) == []
    assert not doc["in_sync"] and doc["elements"]["cs2"]["sync"] in ("stopped", "offline")
