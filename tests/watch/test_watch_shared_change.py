"""`provgit watch` and a change to a shared record (a template): the run
re-projects only what the template reaches (its roles' users), and exactly
those records change on the simulated call servers."""

from __future__ import annotations

from pathlib import Path

import pytest

from apply.helpers import Sim, write_config
from provgit.simulator.store import ElementStore

from .helpers import Watch, start_in_sync

pytestmark = pytest.mark.slow

PAIR = """  - name: Pair
    phones: [{label: Desk, device_type: "DEVICE", primary: true}]
    cos: {day: 1}
"""


def _config(root: Path, sims: list[Sim], device: str) -> Path:
    """Four users: user0 and user1 with role Agent (template Basic), user2 and
    user3 with role Lead (template Pair)."""
    write_config(root, sims, users=4)
    net = root / "net.yaml"
    text = net.read_text().replace("roles:\n", PAIR.replace("DEVICE", device) + "roles:\n")
    text = text.replace("  - {name: Agent, template: Basic}\n", "")
    text = text.replace(
        "roles:\n", "roles:\n  - {name: Agent, template: Basic}\n  - {name: Lead, template: Pair}\n"
    )
    lines = text.split("\n")
    for n in (2, 3):
        at = lines.index(f"  - login_id: user{n}")
        lines[at + 3] = "    role: Lead"
    net.write_text("\n".join(lines))
    return root


def _revisions(sim: Sim) -> dict[tuple[str, str], int]:
    store = ElementStore(sim.db)
    try:
        rows = store._db.execute("SELECT collection, key, revision FROM records").fetchall()
        return {(c, k): int(r) for c, k, r in rows}
    finally:
        store.close()


def test_template_change_rewrites_only_the_records_it_reaches(
    sims: list[Sim], tmp_path: Path, watches: list[Watch]
) -> None:
    config = _config(tmp_path / "config", sims, "6920")
    w = start_in_sync(config, watches)
    before = {s.name: _revisions(s) for s in sims}
    assert all(("users", "user2") in r or ("users", "user3") in r for r in before.values())

    mark = w.mark()
    _config(config, sims, "6940")
    run = w.wait_log("run_finished", after=mark, timeout=60)
    assert run["outcome"] == "Sync Completed", w.logs[-10:]

    for sim in sims:
        after = _revisions(sim)
        moved = {ref for ref, rev in after.items() if before[sim.name].get(ref) != rev}
        hosted = {("users", k) for k in ("user2", "user3") if ("users", k) in after}
        # The template's own record and its users' phones; nothing of Basic's users.
        assert moved == {("templates", "Pair"), *hosted}, sim.name
        records = sim.records()
        for _, key in hosted:
            assert records["users"][key]["services"][0]["device_type"] == "6940"
        for key in ("user0", "user1"):
            if key in records["users"]:
                assert records["users"][key]["services"][0]["device_type"] == "6920"
    status = w.status()
    assert status["in_sync"] is True and status["status"] == "Sync Completed", status["status"]
