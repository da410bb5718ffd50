"""A watcher whose config has never validated has compared nothing with the
elements: its /status.json must not say "Sync Completed" (a monitor polling
`in_sync` would see a network that is not provisioned at all as fine). Once a
config validates and lands, it does. Real watcher and simulator processes."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from apply.helpers import Sim, write_config
from provgit.schema import status_schema_text

from .helpers import Watch, start_watch


@pytest.mark.slow
def test_a_watcher_whose_config_never_validated_is_not_in_sync(
    sims: list[Sim], tmp_path: Path, watches: list[Watch]
) -> None:
    config = write_config(tmp_path / "config", sims, users=2)
    good = (config / "net.yaml").read_text()
    (config / "net.yaml").write_text(good.replace("role: Agent", "role: Agnet"))
    w = start_watch([str(config), "--resync-seconds", "0", "--debounce-ms", "50"])
    watches.append(w)
    assert w.wait_log("run_finished", timeout=60)["outcome"] == "no valid config"

    doc = w.status()
    jsonschema.validate(doc, json.loads(status_schema_text()))
    assert doc["watch"]["refused"]["problems"][0]["file"] == "net.yaml"
    assert (doc["status"], doc["in_sync"]) == ("Sync Incomplete", False)
    assert sims[0].records().get("users", {}) == {}

    mark = w.mark()
    (config / "net.yaml").write_text(good)
    w.wait_log("run_finished", lambda e: e["outcome"] == "Sync Completed", after=mark, timeout=60)
    doc = w.status()
    assert (doc["status"], doc["in_sync"]) == ("Sync Completed", True)
