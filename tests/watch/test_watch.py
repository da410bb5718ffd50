"""`provgit watch` end to end: real watcher processes, real simulators, 127.0.0.1 only."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from apply.helpers import Sim, cli_process, journal, wait_for, write_config
from provgit.watch.triggers import ConfigFilter, is_editor_noise

from .helpers import TOKEN, WATCH, Watch, commit_all, git, make_repo, start_watch


def _finished(w: Watch, after: int, timeout: float = 30.0) -> dict[str, Any]:
    return w.wait_log("run_finished", after=after, timeout=timeout)


# ---- git mode ------------------------------------------------------------------


@pytest.mark.slow
def test_commit_applied_with_note_bad_commit_refused(
    sims: list[Sim], tmp_path: Path, watches: list[Watch]
) -> None:
    bare, work = make_repo(tmp_path)
    write_config(work, sims, users=2)
    c1 = commit_all(work, "two users")
    w = start_watch(
        [
            "--repo",
            str(bare),
            "--ref",
            "main",
            "--state-dir",
            str(tmp_path / "state"),
            "--fetch-seconds",
            "0.2",
        ]
    )
    watches.append(w)
    _finished(w, 0)
    assert w.wait_log("git_note_written", lambda e: e["commit"] == c1)
    doc = w.status()
    assert doc["watch"]["applied_commit"] == c1
    assert doc["status"] == "Sync Completed"
    note = json.loads(git(bare, "notes", "--ref=provgit", "show", c1))
    assert note["status"] == "Sync Completed"
    assert sims[0].records()["users"]["user0"]["first_name"] == "Ann"

    # A commit that fails validation is refused; c1 stays applied.
    users = (work / "net.yaml").read_text().replace('dn: "3001"', 'dn: "3000"')
    (work / "net.yaml").write_text(users)
    # Marked before the commit: the ref watch may refuse it before the next line.
    mark = w.mark()
    bad = commit_all(work, "duplicate DN")
    refused = w.wait_log("config_refused", after=mark)
    assert refused["first"].startswith("net.yaml:")
    doc = w.status()
    assert doc["watch"]["applied_commit"] == c1
    assert doc["watch"]["refused"]["commit"] == bad
    problem = doc["watch"]["refused"]["problems"][0]
    assert problem["file"] == "net.yaml" and problem["line"] > 0
    events = [e for e in doc["events"] if e["type"] == "config_refused"]
    assert events and bad[:12] in events[-1]["message"] and "net.yaml:" in events[-1]["message"]
    assert c1[:12] in events[-1]["message"]
    assert sims[1].records()["users"]["user1"]["first_name"] == "Ann"
    with pytest.raises(AssertionError):
        git(bare, "notes", "--ref=provgit", "show", bad)

    # The next good commit is applied (the webhook makes it immediate).
    write_config(work, sims, users=2, first_name="Bea")
    mark = w.mark()
    c3 = commit_all(work, "rename")
    assert w.post("/reconcile")[0] in (401, 403)
    assert w.post("/reconcile", TOKEN)[0] == 202
    w.wait_log("git_note_written", lambda e: e["commit"] == c3, after=mark)
    assert w.status()["watch"]["applied_commit"] == c3
    assert w.status()["watch"]["refused"] is None
    assert sims[1].records()["users"]["user1"]["first_name"] == "Bea"
    assert w.stop() == 0

    # A restart does not apply c3 again: it resyncs (nothing to do).
    w2 = start_watch(
        ["--repo", str(bare), "--state-dir", str(tmp_path / "state"), "--fetch-seconds", "0"]
    )
    watches.append(w2)
    first = _finished(w2, 0)
    assert first["outcome"] == "in sync"
    assert not w2.events("git_note_written")


# ---- drift -----------------------------------------------------------------------


def _edit_cos(sim: Sim, comment: str) -> None:
    sim.admin(
        "/admin/edit",
        {"op": "put", "collection": "cos", "key": "1", "fields": {"number": 1, "comment": comment}},
    )


@pytest.mark.slow
def test_drift_reported_then_corrected(
    sims: list[Sim], tmp_path: Path, watches: list[Watch]
) -> None:
    cs1 = sims[0]
    config = write_config(tmp_path / "config", sims, users=2)
    w = start_watch([str(config), "--resync-seconds", "0.3", "--drift", "report"])
    watches.append(w)
    _finished(w, 0)
    mark = w.mark()
    _edit_cos(cs1, "Changed")
    drift = w.wait_log("drift", after=mark)
    assert drift["element"] == "cs1" and drift["corrected"] is False
    doc = w.status()
    assert doc["watch"]["drift"]["elements"]["cs1"][0]["key"] == "1"
    assert any(e["type"] == "drift" and "cos/1" in e["message"] for e in doc["events"])
    # Reported once, not corrected. Runs are one at a time: of two resyncs that
    # end after the report, the second started after it, found the same drift
    # again and said nothing.
    reported = w.mark()
    resyncs = w.wait_logs(
        "run_finished", 2, lambda e: "resync" in e["reason"].split(","), after=reported, timeout=30
    )
    assert all(r["outcome"] != "error" for r in resyncs), resyncs
    assert len(w.events("drift")) == 1
    assert w.status()["watch"]["drift"]["elements"]["cs1"][0]["key"] == "1"
    assert cs1.records()["cos"]["1"]["comment"] == "Changed"
    code, feed, _ = w.get("/feed.atom")
    assert code == 200 and "drift on cs1" in feed
    metrics = {
        s.labels.get("element"): s.value
        for f in text_string_to_metric_families(w.get("/metrics")[1])
        if f.name == "provgit_drift_records"
        for s in f.samples
    }
    assert metrics["cs1"] == 1
    assert w.stop() == 0

    w2 = start_watch([str(config), "--resync-seconds", "0.3", "--drift", "correct"])
    watches.append(w2)
    _finished(w2, 0)  # the start run reconciles the directory (fixes it too)
    assert cs1.records()["cos"]["1"]["comment"] == "Default"
    mark = w2.mark()
    _edit_cos(cs1, "Again")
    drift = w2.wait_log("drift", after=mark)
    assert drift["corrected"] is True
    assert wait_for(lambda: cs1.records()["cos"]["1"]["comment"] == "Default", 60)


# ---- pending updates -------------------------------------------------------------


@pytest.mark.slow
def test_element_down_then_back_pending_update_lands_without_new_change(
    sims: list[Sim], tmp_path: Path, watches: list[Watch]
) -> None:
    cs2 = sims[1]
    config = write_config(tmp_path / "config", sims, users=2)
    w = start_watch([str(config), "--resync-seconds", "0", "--debounce-ms", "50"])
    watches.append(w)
    _finished(w, 0)

    # Locked: the element reads but refuses writes for now -> pending updates.
    cs2.faults(locked=True)
    mark = w.mark()
    write_config(tmp_path / "config", sims, users=2, first_name="Cy")
    w.wait_log("sync_result", lambda e: e["pending_updates"] > 0, after=mark)
    assert w.status()["counts"]["pending_updates"] > 0
    assert cs2.records()["users"]["user1"]["first_name"] == "Ann"
    mark = w.mark()  # before the element is back: its retry may end at once
    cs2.faults(locked=False)
    w.wait_log(
        "sync_result",
        lambda e: e["pending_updates"] == 0 and e["status"] == "Sync Completed",
        after=mark,
        timeout=30,
    )
    assert cs2.records()["users"]["user1"]["first_name"] == "Cy"

    # Offline: not even observed -> "Stopped"; the work lands once it is back.
    cs2.faults(offline=True)
    mark = w.mark()
    write_config(tmp_path / "config", sims, users=2, first_name="Di")
    w.wait_log(
        "element_status", lambda e: e["element"] == "cs2" and e["status"] == "Stopped", after=mark
    )
    assert w.status()["elements"]["cs2"]["status"] == "Stopped"
    # Its writes are pending updates at once, named in the run's log line.
    assert w.wait_log(
        "sync_result",
        lambda e: e["pending_updates"] > 0 and "users/user1 on cs2" in e.get("pending", ""),
        after=mark,
    )
    assert w.status()["counts"]["pending_updates"] > 0
    mark = w.mark()  # before the element is back: its retry may end at once
    cs2.faults(offline=False)
    w.wait_log("sync_result", lambda e: e["status"] == "Sync Completed", after=mark, timeout=30)
    assert cs2.records()["users"]["user1"]["first_name"] == "Di"
    doc = w.status()
    assert doc["counts"]["pending_updates"] == 0 and doc["status"] == "Sync Completed"
    # Down (locked, then stopped) and back: one event each time, not one per run.
    edges = [
        e["type"]
        for e in doc["events"]
        if e["element"] == "cs2" and e["type"] in ("element_down", "element_up")
    ]
    assert edges == ["element_down", "element_up"] * 2, edges


# ---- status endpoints during a run, metrics --------------------------------------


@pytest.mark.slow
def test_endpoints_answer_while_reconciling(
    sims: list[Sim], tmp_path: Path, watches: list[Watch]
) -> None:
    config = write_config(tmp_path / "config", sims, users=2)
    # Every element request takes 1 s (inside the config's 5 s timeout), so the
    # run goes on for a second and more after "element_syncing": at 0.4 s its writes
    # ended about as the line was read, less than this test may lag at load 30+.
    for s in sims:
        s.faults(latency_ms=1000)
    w = start_watch([str(config), "--resync-seconds", "0"])
    watches.append(w)
    assert w.wait_log("element_syncing", timeout=60)
    doc = w.status()
    assert doc["watch"]["running"] is not None
    assert doc["watch"]["running"]["reason"] == "start"
    assert (
        any(e["status"].startswith("Synching") for e in doc["elements"].values())
        or doc["watch"]["running"]["elements"]
    )
    code, page, headers = w.get("/")
    assert code == 200 and headers["Content-Type"].startswith("text/html")
    # Live without reloading (issue 17): it refreshes itself in place.
    assert 'data-live="5"' in page and 'http-equiv="refresh"' not in page
    code, feed, _ = w.get("/feed.atom")
    assert code == 200
    ET.fromstring(feed)
    code, health, _ = w.get("/healthz")
    assert code == 200 and json.loads(health)["running"] is True
    code, text, _ = w.get("/metrics")
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["provgit_watch_reconcile_running"].samples[0].value == 1
    _finished(w, 0, timeout=60)
    families = {f.name: f for f in text_string_to_metric_families(w.get("/metrics")[1])}
    for name in (
        "provgit_watch_runs",
        "provgit_watch_run_duration_seconds",
        "provgit_operations",
        "provgit_pending_updates",
        "provgit_distribution_errors",
        "provgit_alarm_level",
        "provgit_element_last_sync_timestamp_seconds",
    ):
        assert name in families, name
    ok = [s for s in families["provgit_operations"].samples if s.labels.get("result") == "ok"]
    assert ok and ok[0].value > 0
    synced = {
        s.labels["element"] for s in families["provgit_element_last_sync_timestamp_seconds"].samples
    }
    assert {"cs1", "cs2"} <= synced
    doc = w.status()
    assert doc["watch"]["running"] is None and doc["status"] == "Sync Completed"


# ---- signals -----------------------------------------------------------------------


@pytest.mark.slow
def test_sigterm_during_apply_exits_cleanly_then_converges(
    sims: list[Sim], tmp_path: Path, watches: list[Watch]
) -> None:
    config = write_config(tmp_path / "config", sims, users=30)
    for s in sims:
        s.faults(latency_ms=300)
    w = start_watch([str(config), "--resync-seconds", "0"])
    watches.append(w)
    w.wait_log("element_syncing", timeout=30)
    # A write on the wire: its intent is committed, its outcome not yet (each
    # answer takes 0.3 s).
    assert wait_for(lambda: _writes_in_flight(config / ".provgit") > 0, 30), w.logs[-10:]
    assert w.stop(signal.SIGTERM) == 0
    (stopping,) = w.events("stopping")
    assert stopping["running"] is True and w.events("watch_stopped")
    # The writes on the wire finished within --stop-timeout (no forced stop).
    assert not w.events("stop_timeout") and not w.events("stop_forced")
    # The run was cut short and recorded as such; writes already sent were journaled.
    assert w.events("run_interrupted"), w.logs[-10:]
    with journal(config / ".provgit") as j:
        (event,) = [e for e in j.events() if e.type == "interrupted"]
        assert "stopped by a signal" in event.message
        assert j.runs(1)[0]["outcome"] == "interrupted"
    for s in sims:
        s.faults(latency_ms=0)
    w2 = start_watch([str(config), "--resync-seconds", "0"])
    watches.append(w2)
    first = _finished(w2, 0, timeout=60)
    assert first["outcome"] == "Sync Completed", w2.logs[-10:]
    assert w2.stop() == 0
    plan = cli_process("plan", str(config), "--detailed-exitcode")
    assert plan.code == 0, plan.out + plan.err


def _writes_in_flight(state: Path) -> int:
    """Writes whose intent the journal holds without an outcome (read-only)."""
    db = sqlite3.connect(f"file:{state / 'journal.sqlite'}?mode=ro", uri=True, timeout=15)
    try:
        (count,) = db.execute(
            "SELECT count(*) FROM intents i LEFT JOIN outcomes o ON o.intent_id = i.id "
            "WHERE o.intent_id IS NULL"
        ).fetchone()
    finally:
        db.close()
    return int(count)


# ---- small things ------------------------------------------------------------------


def test_editor_noise_is_ignored(tmp_path: Path) -> None:
    for name in (".net.yaml.swp", "net.yaml~", ".#net.yaml", "4913", "#net.yaml#", ".hidden"):
        assert is_editor_noise(name), name
    f = ConfigFilter(tmp_path, ignore=[tmp_path / "status"])
    assert f(None, str(tmp_path / "people" / "a.yaml"))
    assert not f(None, str(tmp_path / ".git" / "index"))
    assert not f(None, str(tmp_path / ".provgit" / "journal.sqlite"))
    assert not f(None, str(tmp_path / "status" / "status.json"))
    assert not f(None, str(tmp_path / "people" / ".a.yaml.swp"))


def test_token_required_off_loopback(tmp_path: Path) -> None:
    (tmp_path / "provgit.yaml").write_text("version: 1\n")
    p = subprocess.run(
        [*WATCH, str(tmp_path), "--host", "0.0.0.0", "--token-env", "PROVGIT_TEST_UNSET_TOKEN"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert p.returncode == 1
    assert "PROVGIT_TEST_UNSET_TOKEN" in p.stderr and "Traceback" not in p.stderr
