"""DNS rebinding against the status server: on 127.0.0.1 its reads are open,
so a web page the admin visits, whose name the attacker then re-points at
127.0.0.1, was same-origin with the watcher and read /status.json, /metrics
and /feed.atom (every user's name and number). The browser sends the
attacker's name as Host: such a request is now refused (421) before any
handler; the watcher's own names (its address, localhost, [::1]) and the
names the admin allows (--allowed-host) are served, and POST /reconcile keeps
its own proof whatever name a git host's delivery was sent to. A real watcher
and a real fleet replica, real HTTP on 127.0.0.1 with a forged Host header."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from apply.helpers import Sim, write_config
from journal import pg
from support.host_header import ask as _ask

from .fleet_helpers import fleet_status, make_fleet, settled
from .helpers import TOKEN, Watch, start_watch
from .replica_helpers import wait_for

READS = ("/", "/status.json", "/feed.atom", "/metrics", "/healthz")


def _start(config: Path, watches: list[Watch], *args: str) -> Watch:
    w = start_watch([str(config), "--resync-seconds", "0", "--debounce-ms", "50", *args])
    watches.append(w)
    first = w.wait_log("run_finished", timeout=60)
    assert first["outcome"] == "Sync Completed", w.logs[-10:]
    return w


def test_a_rebound_name_reads_nothing_and_the_watchers_own_names_read_everything(
    sims: list[Sim], tmp_path: Path, watches: list[Watch]
) -> None:
    config = write_config(tmp_path / "config", sims, users=2)
    w = _start(config, watches, "--allowed-host", "Status.Example.NET")
    port = urlsplit(w.url).port
    user = "user1"
    assert user in json.dumps(w.status())

    for forged in (f"rebind.attacker.example:{port}", "rebind.attacker.example", "evil."):
        for path in READS:
            code, body = _ask(w.url, path, forged)
            assert code == 421, (forged, path, code, body[:300])
            assert "not this status server's name" in json.loads(body)["error"]
            assert user not in body
        # POSTs too, token or not (a rebinding page has none; refused before it is looked at).
        code, body = _ask(w.url, "/suspend", forged, "POST", TOKEN)
        assert code == 421, body

    # The watcher's own names, and the one allowed (any case, any port, a final dot).
    for own in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost.", f"[::1]:{port}"):
        code, body = _ask(w.url, "/status.json", own)
        assert code == 200 and user in body, (own, code, body[:300])
    code, body = _ask(w.url, "/metrics", f"status.example.net:{port}")
    assert code == 200, body[:300]
    code, body = _ask(w.url, "/status.json", "status.example.net.")
    assert code == 200 and user in body, body[:300]

    # A delivery through a tunnel names the tunnel: /reconcile keeps its own proof.
    code, body = _ask(w.url, "/reconcile", "hooks.tunnel.example", "POST")
    assert code == 401, body
    code, body = _ask(w.url, "/reconcile", "hooks.tunnel.example", "POST", TOKEN)
    assert code in (200, 202), body


def test_an_allowed_host_that_is_not_a_name_is_refused_at_the_command_line(
    tmp_path: Path, watches: list[Watch]
) -> None:
    config = write_config(tmp_path / "config", [], users=0, embedded_mcl=True)
    for bad in ("*", "https://status.example.net/", ""):
        p = subprocess.run(
            [sys.executable, "-m", "provgit", "watch", str(config), "--allowed-host", bad],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert p.returncode == 1, p.stderr
        assert "is not a host name" in p.stderr


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_fleet_replica_answers_a_rebound_name_nothing(
    tmp_path: Path, pg_server: pg.Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)
    rig = make_fleet(tmp_path, 1, pg_server.new_database(), pg.PASSWORD, 20.0)
    w = rig.start()
    try:
        wait_for("the network in sync", lambda: settled([fleet_status(w)], rig.names()), 180.0)
        port = urlsplit(w.url).port
        for path in READS:
            code, body = _ask(w.url, path, f"rebind.attacker.example:{port}")
            assert code == 421, (path, code, body[:300])
            assert "net-00" not in body
        code, body = _ask(w.url, "/status.json", f"localhost:{port}")
        assert code == 200 and "net-00" in body, body[:300]
    finally:
        assert w.stop() == 0
