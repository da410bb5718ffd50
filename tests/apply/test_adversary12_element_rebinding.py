"""DNS rebinding against the element simulator (`provgit element serve`).

On 127.0.0.1 without a token it answers anyone who reaches it, and a web page
the admin visits, whose name the attacker then re-points at 127.0.0.1, is
same-origin with it: it read every user (`/v1/collections/users/records`) and,
with --admin, reset the element (`/admin/reset`). The browser sends the
attacker's name as Host: such a request is now refused (421) before any
handler, as the watch and fleet status servers do; the simulator's own names
(its address, localhost, a loopback address) and those allowed with
--allowed-host are served, and provgit's own runs go on. A real simulator
process, real HTTP on 127.0.0.1 with a forged Host header.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

from support.host_header import ask

from .helpers import Sim, cli, start_sims, users_on, write_config

USERS = "/v1/collections/users/records"


def test_a_rebound_name_reads_and_resets_nothing_on_the_simulator(
    sims: list[Sim], tmp_path: Path
) -> None:
    config = write_config(tmp_path / "config", sims[:1], users=2)
    assert cli("reconcile", str(config)).code == 0
    sim = sims[0]
    port = urlsplit(sim.url).port
    held = users_on(sim)
    assert held == {"user0", "user1"}

    for forged in (f"rebind.attacker.example:{port}", "rebind.attacker.example", "evil."):
        for method, path in (("GET", USERS), ("GET", "/v1/element"), ("POST", "/admin/reset")):
            code, body = ask(sim.url, path, forged, method)
            assert code == 421, (forged, path, code, body[:300])
            assert "not this element's name" in json.loads(body)["message"]
            assert "user0" not in body
    assert users_on(sim) == held  # not reset

    # Its own names: the address (any port), localhost, a loopback literal.
    for own in (f"127.0.0.1:{port}", "LOCALHOST.", f"localhost:{port}", "[::1]"):
        code, body = ask(sim.url, USERS, own)
        assert code == 200, (own, code, body[:300])
        assert "user0" in body
    # provgit's own runs (the http driver sends the URL's host) go on.
    again = cli("reconcile", str(config))
    assert again.code == 0, again.out + again.err
    assert "Sync Completed" in again.out


def test_an_allowed_name_is_served_by_the_simulator(tmp_path: Path) -> None:
    sim = start_sims(tmp_path, [("cs9", "mivb")], "--allowed-host", "CS9.Example.NET")[0]
    try:
        port = urlsplit(sim.url).port
        for name in ("cs9.example.net", f"cs9.example.net.:{port}"):
            code, body = ask(sim.url, "/v1/element", name)
            assert code == 200, (name, code, body[:300])
        code, _ = ask(sim.url, "/v1/element", "other.example.net")
        assert code == 421
    finally:
        sim.stop()
