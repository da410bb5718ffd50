"""Directory mode and slow saves: a real `provgit watch`, real simulators, 127.0.0.1 only.

A file truncated and written back, or written in chunks, must delete nothing
on the elements: the watcher reads only settled files, refuses what does not
validate, and holds removals until a read after the grace period confirms
them. Every wait is on the watcher's own log lines (it says what it saw), never
a fixed sleep; the "delay" of a slow save is the time the watcher takes to
observe each step.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from apply.helpers import Sim, cli_process, read_store, write_config
from provgit.watch.removals import RemovalGuard

from .helpers import Watch, start_in_sync, start_watch

GRACE_LONG = "watch:\n  settle_seconds: 0.2\n  delete_grace_seconds: 60\n"


def _split_users(config: Path) -> str:
    """Move the users into their own file (people.yaml); its text."""
    net = (config / "net.yaml").read_text()
    head, _, users = net.partition("users:\n")
    (config / "net.yaml").write_text(head)
    text = "users:\n" + users
    (config / "people.yaml").write_text(text)
    return text


def _deletes(sim: Sim | Path) -> list[tuple[str, str]]:
    """Every delete in the element's change feed (its own store, read beside it)."""
    path = sim if isinstance(sim, Path) else sim.db
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT collection, key FROM changes WHERE op = 'delete'").fetchall()
    finally:
        db.close()
    return [(c, k) for c, k in rows]


def _mcl(config: Path) -> Path:
    """The embedded MiCollab of `write_config`'s network."""
    return config / ".provgit" / "elements" / "mcl.sqlite"


def _users(sim: Sim) -> dict[str, dict[str, Any]]:
    return sim.records().get("users", {})


@pytest.mark.slow
def test_truncated_then_rewritten_users_file_deletes_nothing(
    sims: list[Sim], tmp_path: Path, watches: list[Watch]
) -> None:
    config = write_config(tmp_path / "config", sims, users=4, extra_settings=GRACE_LONG)
    text = _split_users(config)
    w = start_in_sync(config, watches)
    assert sorted(_users(sims[0])) == ["user0", "user2"]

    mark = w.mark()
    (config / "people.yaml").write_text("")  # what an editor's save does first
    held = w.wait_log("removal_held", after=mark, timeout=30)
    assert held["count"] == 4 and "users/user0" in held["resources"]
    assert w.status()["watch"]["held_removals"]["count"] == 4
    assert all(not _deletes(s) for s in sims)

    # ... and the content comes back (after the watcher saw the file empty).
    mark = w.mark()
    (config / "people.yaml").write_text(text.replace("first_name: Ann", "first_name: Bo"))
    back = w.wait_log("removal_withdrawn", after=mark, timeout=30)
    assert back["count"] == 4
    done = w.wait_log("run_finished", lambda e: e["outcome"] != "removal held", after=mark)
    assert done["outcome"] == "Sync Completed", w.logs[-10:]
    for s in sims:
        assert _deletes(s) == [], s.name
    assert _deletes(_mcl(config)) == []
    assert {u["first_name"] for u in _users(sims[0]).values()} == {"Bo"}
    assert sorted(_users(sims[1])) == ["user1", "user3"]
    doc = w.status()
    assert doc["watch"]["held_removals"] is None
    kinds = [e["type"] for e in doc["events"]]
    assert "removal_held" in kinds and "removal_withdrawn" in kinds
    assert w.stop() == 0


@pytest.mark.slow
def test_users_file_written_in_chunks_deletes_nothing(
    sims: list[Sim], tmp_path: Path, watches: list[Watch]
) -> None:
    config = write_config(tmp_path / "config", sims, users=3, extra_settings=GRACE_LONG)
    text = _split_users(config)
    w = start_in_sync(config, watches)
    final = text + (
        "  - login_id: user9\n"
        "    first_name: Cy\n"
        "    last_name: Late\n"
        "    role: Agent\n"
        "    host: cs2\n"
        "    services:\n"
        '      - {dn: "3009"}\n'
    )
    # Chunk 1 ends inside user1's flow mapping: the file does not parse.
    cut1 = final.index('{dn: "3001"}') + len('{dn: "30')
    # Chunk 2 ends after user1: a valid file with user2 missing.
    cut2 = final.index("  - login_id: user2")
    with (config / "people.yaml").open("w") as f:
        mark = w.mark()
        f.write(final[:cut1])
        f.flush()
        refused = w.wait_log("config_refused", after=mark, timeout=30)
        assert refused["first"].startswith("people.yaml:")
        w.wait_log("run_finished", lambda e: e["outcome"] == "config refused", after=mark)

        mark = w.mark()
        f.write(final[cut1:cut2])
        f.flush()
        held = w.wait_log("removal_held", after=mark, timeout=30)
        assert held["resources"] == ["users/user2"]

        mark = w.mark()
        f.write(final[cut2:])
    w.wait_log("removal_withdrawn", after=mark, timeout=30)
    done = w.wait_log("run_finished", lambda e: e["outcome"] != "removal held", after=mark)
    assert done["outcome"] == "Sync Completed", w.logs[-10:]
    for s in sims:
        assert _deletes(s) == [], s.name
    assert _deletes(_mcl(config)) == []
    assert sorted(_users(sims[0])) == ["user0", "user2"]
    assert sorted(_users(sims[1])) == ["user1", "user9"]
    assert w.stop() == 0


@pytest.mark.slow
def test_a_removal_still_missing_after_the_grace_is_deleted(
    sims: list[Sim], tmp_path: Path, watches: list[Watch]
) -> None:
    short = "watch:\n  settle_seconds: 0.1\n  delete_grace_seconds: 0.5\n"
    config = write_config(tmp_path / "config", sims, users=2, extra_settings=short)
    text = _split_users(config)
    w = start_in_sync(config, watches)
    mark = w.mark()
    (config / "people.yaml").write_text(text.partition("  - login_id: user1")[0])
    w.wait_log("removal_held", after=mark, timeout=30)
    confirmed = w.wait_log("removal_confirmed", after=mark, timeout=30)
    assert confirmed["resources"] == ["users/user1"]
    done = w.wait_log("run_finished", lambda e: e["outcome"] != "removal held", after=mark)
    assert done["outcome"] == "Sync Completed", w.logs[-10:]
    assert ("users", "user1") in _deletes(sims[1])
    assert "user1" not in _users(sims[1])
    assert sorted(_users(sims[0])) == ["user0"]
    assert w.stop() == 0


def test_removal_guard_confirms_only_with_a_read_after_the_grace() -> None:
    guard = RemovalGuard()
    u = ("users", "jdoe")
    # Seen at t=10 in a plan from a read at t=9.9: held, look again in 5 s.
    held, confirmed, withdrawn = guard.review([u], read_at=9.9, now=10.0, grace=5.0)
    assert held is not None and held.resources == (u,) and held.recheck_in == 5.0
    # A run without a newer read (a retry at t=20) is still held.
    held, _, _ = guard.review([u], read_at=9.9, now=20.0, grace=5.0)
    assert held is not None
    # A read that started at t=15 still lacks it: confirmed, reported once.
    held, confirmed, withdrawn = guard.review([u], read_at=15.0, now=15.5, grace=5.0)
    assert held is None and confirmed == [u] and withdrawn == []
    assert guard.review([u], read_at=15.0, now=16.0, grace=5.0) == (None, [], [])
    # Deleted as planned: gone from the plan, not "withdrawn".
    assert guard.review([], read_at=15.0, now=17.0, grace=5.0) == (None, [], [])
    # Seen, then back before any confirming read: withdrawn.
    guard.review([u], read_at=20.0, now=20.1, grace=5.0)
    assert guard.review([], read_at=21.0, now=21.1, grace=5.0) == (None, [], [u])
    # No grace: nothing is held.
    assert guard.review([u], read_at=30.0, now=30.1, grace=0.0)[0] is None


@pytest.mark.slow
def test_a_file_still_changing_is_read_only_once_it_settles(
    sims: list[Sim], tmp_path: Path, watches: list[Watch]
) -> None:
    # A settle interval long enough that the second chunk lands inside it.
    slow = "watch:\n  settle_seconds: 5\n  delete_grace_seconds: 60\n"
    config = write_config(tmp_path / "config", sims, users=2, extra_settings=slow)
    text = _split_users(config)
    w = start_watch([str(config), "--resync-seconds", "0", "--debounce-ms", "50", "--debug"])
    watches.append(w)
    assert w.wait_log("run_finished", timeout=60)["outcome"] == "Sync Completed"
    final = text.replace("first_name: Ann", "first_name: Dee")
    cut = final.index('{dn: "3001"}') + len('{dn: "30')
    with (config / "people.yaml").open("w") as f:
        mark = w.mark()
        f.write(final[:cut])  # does not parse
        f.flush()
        # The watcher has read the half file (not just seen the event: on a
        # loaded machine its read could otherwise start after the rest landed).
        w.wait_log("config_read", after=mark)
        f.write(final[cut:])
    settling = w.wait_log("config_settling", after=mark)
    assert settling["files"] == ["people.yaml"]
    done = w.wait_log("run_finished", lambda e: e["reason"] == "change", after=mark, timeout=60)
    assert done["outcome"] == "Sync Completed", w.logs[-10:]
    # The half-written file was never parsed, so never refused.
    assert not [e for e in w.logs[mark:] if e.get("event") == "config_refused"]
    assert {u["first_name"] for u in _users(sims[1]).values()} == {"Dee"}
    assert all(_deletes(s) == [] for s in sims)
    assert w.stop() == 0


def test_watch_settings_are_checked_where_they_are_written(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "config",
        [],
        users=0,
        extra_settings="watch:\n  settle_seconds: -1\n  delete_grace_seconds: 7200\n",
    )
    (config / "net.yaml").write_text("elements:\n  - {name: mcl, type: micollab, ceid: 1}\n")
    ran = cli_process("validate", str(config))
    assert ran.code == 1
    assert "provgit.yaml:8:3:" in ran.out and "settle_seconds" in ran.out, ran.out
    assert "provgit.yaml:9:3:" in ran.out and "delete_grace_seconds" in ran.out, ran.out


@pytest.mark.slow
def test_half_saved_settings_let_no_excluded_record_through(
    sims: list[Sim], tmp_path: Path, watches: list[Watch]
) -> None:
    # provgit.yaml saved in two chunks, the first ending before `sharing:`: read
    # alone it drops the exclusion, and the excluded template would reach the
    # elements (and stay there: nothing provgit did not plan is taken back).
    sharing = "sharing:\n  templates:\n    exclude: [Lab Phone]\n"
    config = write_config(tmp_path / "config", sims, users=2, extra_settings=GRACE_LONG + sharing)
    net = (config / "net.yaml").read_text()
    (config / "net.yaml").write_text(
        net.replace(
            "templates:\n",
            "templates:\n  - name: Lab Phone\n"
            '    phones: [{label: Desk, device_type: "6920", primary: true}]\n'
            "    cos: {day: 1}\n",
            1,
        )
    )
    assert cli_process("validate", str(config)).code == 0
    settings = (config / "provgit.yaml").read_text()
    w = start_in_sync(config, watches)
    assert "Lab Phone" not in read_store(_mcl(config)).get("templates", {})

    mark = w.mark()
    (config / "provgit.yaml").write_text(settings[: settings.index("sharing:")])
    held = w.wait_log("removal_held", after=mark, timeout=30)
    assert "settings/provgit.yaml" in held["resources"]
    mark = w.mark()
    (config / "provgit.yaml").write_text(settings)  # the rest of the save lands
    w.wait_log("removal_withdrawn", after=mark, timeout=30)
    done = w.wait_log("run_finished", lambda e: e["outcome"] != "removal held", after=mark)
    assert done["outcome"] == "Sync Completed", w.logs[-10:]
    assert "Lab Phone" not in read_store(_mcl(config)).get("templates", {})
    assert all("Lab Phone" not in s.records().get("templates", {}) for s in sims)
    assert w.stop() == 0
