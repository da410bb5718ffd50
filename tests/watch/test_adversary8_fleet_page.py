"""adversary8: a fleet's page while its documents cannot be built. A request
is answered with the last document built (`fresh: false`) when no newer one
is ready within a few seconds (fleet_status.py), for as long as a network's
journal stays locked. The JSON says so; the HTML page said nothing: each
network's last status stayed a green 'Sync Completed' with no time, however
old, while whatever it says may have changed since. (The same with a real
journal locked: tests/watch/test_bounds9_stale_fleet.py.)"""

from __future__ import annotations

from provgit.render.fleet_page import render_fleet_html


def _doc(fresh: bool) -> dict[str, object]:
    net = {"name": "net-00", "holder": "r1", "state": "running", "status": "Sync Completed"}
    return {
        "fresh": fresh,
        "generated": "2026-12-07T03:00:00Z",
        "replica": {"id": "r1", "holds": ["net-00"], "replicas": ["r1"]},
        "networks": [{**net, "error": None, "elements": []}],
    }


def test_a_fleet_page_served_from_memory_says_when_it_was_built_and_shows_no_green_sync() -> None:
    stale = render_fleet_html(_doc(False), 10)
    assert 'class="ok"' not in stale
    assert "Not fresh" in stale and "2026-12-07T03:00:00Z" in stale
    fresh = render_fleet_html(_doc(True), 10)
    assert 'class="ok">Sync Completed<' in fresh and "Not fresh" not in fresh
