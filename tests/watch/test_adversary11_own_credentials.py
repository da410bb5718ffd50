"""Adversary 11: a PIN naming the watcher's own credential. The config's
`secret_key` and element tokens are refused as PINs at validation, but the
watcher's bearer token (`--token-env`, default PROVGIT_WATCH_TOKEN) is named
outside the config: a merged `voicemail_pin: {env: PROVGIT_WATCH_TOKEN}` sent
it to the call server and the MiCollab as user0's PIN, where their admins
could read it and POST /suspend, /resume and /reconcile to the watcher (and,
off loopback, read everything). Now no value provgit authenticates with in
the process (that token, the webhook secret, the journal's password, the
secret_key) is sent to an element: user0 is not written, its status says why,
and the other users land. A real watcher and simulators on 127.0.0.1."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from apply.helpers import Sim, write_config

from .helpers import TOKEN, Watch, start_watch


def _holding(db: Path, value: str) -> list[str]:
    """Every row of every table of the SQLite file `db` that holds `value`."""
    found = []
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                if value in repr(row):
                    found.append(f"{db.name}:{table}: {row!r}"[:300])
    return found


def test_the_watchers_own_token_is_never_sent_as_a_pin(
    sims: list[Sim], tmp_path: Path, watches: list[Watch]
) -> None:
    config = write_config(tmp_path / "config", sims, users=2)
    net = config / "net.yaml"
    net.write_text(
        net.read_text().replace(
            "  - login_id: user0\n",
            "  - login_id: user0\n    voicemail_pin: {env: PROVGIT_WATCH_TOKEN}\n",
        )
    )
    w = start_watch([str(config), "--resync-seconds", "0", "--debounce-ms", "50"])
    watches.append(w)
    w.wait_log("run_finished", timeout=120)

    elements = [s.db for s in sims] + sorted((config / ".provgit" / "elements").glob("*.sqlite"))
    assert len(elements) == 3
    for db in elements:
        assert _holding(db, TOKEN) == []
    doc = w.status()
    assert TOKEN not in json.dumps(doc)
    user0 = next(r for r in doc["resources"] if r["kind"] == "users" and r["resource"] == "user0")
    assert user0["status"] != "Sync Completed", user0
    said = json.dumps(user0) + json.dumps(doc["distribution_errors"])
    assert "holds one of provgit's own credentials" in said
    user1 = next(r for r in doc["resources"] if r["kind"] == "users" and r["resource"] == "user1")
    assert user1["status"] == "Sync Completed", user1
    assert "user1" in sims[1].records()["users"]
