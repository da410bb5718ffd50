"""Apply says what is true: elements down, tokens refused, runs that died or were
stopped, incomplete plans and refused runs, against real simulator processes."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import jsonschema
import pytest

from provgit import exitcodes
from provgit.journal import Journal

from .helpers import (
    PROVGIT,
    Sim,
    cli,
    cli_killed_at,
    journal,
    start_sims,
    wait_for,
    write_config,
)

pytestmark = pytest.mark.slow
SCHEMA = "schemas/status.schema.json"


def _state(config: Path) -> Path:
    return config / ".provgit"


def _schema_errors(config: Path) -> list[str]:
    """What the written status.json breaks of the published schema."""
    schema = json.loads((Path(__file__).resolve().parents[2] / SCHEMA).read_text())
    doc = json.loads((_state(config) / "status" / "status.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(doc)]


def _events(j: Journal, type_: str, element: str | None = None) -> list[str]:
    return [
        e.message
        for e in j.events()
        if e.type == type_ and (element is None or e.element == element)
    ]


def test_element_down_gets_its_writes_as_pending_updates_at_once_then_they_land(
    sims: list[Sim], tmp_path: Path
) -> None:
    _, cs2 = sims
    config = write_config(tmp_path / "config", sims, users=4)
    assert cli("reconcile", str(config)).code == 0
    cs2.faults(offline=True)
    write_config(tmp_path / "config", sims, users=4, first_name="Bea")

    r = cli("reconcile", str(config), "--format", "json")
    assert r.code == exitcodes.APPLIED_WITH_ERRORS, r.out
    doc = json.loads(r.out)
    by = {e["element"]: e for e in doc["elements"]}
    assert by["cs2"]["status"] == "Stopped" and by["cs2"]["outcome"] == "unreachable"
    # user1 and user3 are hosted on cs2; the others are in its remote directory.
    queued = {(o["collection"], o["key"]) for o in by["cs2"]["problems"]}
    assert {("users", "user1"), ("users", "user3")} <= queued
    assert all(o["status"] == "pending" for o in by["cs2"]["problems"])
    assert doc["pending_updates"] == len(queued) == by["cs2"]["counts"]["pending"]
    with journal(_state(config)) as j:
        pending = {(p.collection, p.key): p for p in j.pending("cs2")}
        assert set(pending) == queued
        assert all(p.attempts == 1 and "stopped/offline" in p.last_error for p in pending.values())
        assert len(_events(j, "element_down", "cs2")) == 1
        assert j.element_statuses()["cs2"]["status"] == "Stopped"
    assert _schema_errors(config) == []

    status = cli("status", str(config))
    assert f"Pending updates ({len(queued)})" in status.out, status.out
    assert "user1" in status.out
    errors = cli("errors", "list", "-C", str(config))
    assert f"Pending updates ({len(queued)})" in errors.out, errors.out
    assert "users/user1" in errors.out
    listed = json.loads(cli("errors", "list", "-C", str(config), "--format", "json").out)
    assert {(p["collection"], p["key"]) for p in listed["pending"]} == queued

    # Still down: retried (attempts count up), no second "down" event.
    assert cli("reconcile", str(config)).code == exitcodes.APPLIED_WITH_ERRORS
    with journal(_state(config)) as j:
        assert {p.attempts for p in j.pending("cs2")} == {2}
        assert len(_events(j, "element_down", "cs2")) == 1
        assert _events(j, "element_up") == []

    cs2.faults(offline=False)
    back = cli("reconcile", str(config))
    assert back.code == 0, back.out
    with journal(_state(config)) as j:
        assert j.pending_count() == 0
        assert j.element_statuses()["cs2"]["status"] == "Sync Completed"
        assert len(_events(j, "element_down", "cs2")) == 1
        assert len(_events(j, "element_up", "cs2")) == 1
    assert {u["first_name"] for u in cs2.records()["users"].values()} == {"Bea"}
    assert cli("reconcile", str(config)).code == 0
    with journal(_state(config)) as j:
        assert len(_events(j, "element_up", "cs2")) == 1

    feed = (_state(config) / "status" / "feed.atom").read_text()
    assert "Element down" in feed and "Element back" in feed


def test_wrong_or_missing_token_is_token_refused_not_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)
    monkeypatch.setenv("SIM_TOKEN", "the-right-token-not-a-secret")
    (cs1,) = start_sims(tmp_path, [("cs1", "mivb")], "--token-env", "SIM_TOKEN")
    try:
        config = write_config(tmp_path / "config", [cs1], users=2)
        net = config / "net.yaml"
        net.write_text(
            net.read_text().replace(
                f"url: '{cs1.url}', timeout: 5",
                f"url: '{cs1.url}', timeout: 5, token: {{env: CS1_TOKEN}}",
            )
        )
        for token in ("a-wrong-token", None):
            if token is None:
                monkeypatch.delenv("CS1_TOKEN", raising=False)
            else:
                monkeypatch.setenv("CS1_TOKEN", token)
            r = cli("reconcile", str(config), "--format", "json")
            assert r.code == exitcodes.APPLIED_WITH_ERRORS, r.out
            by = {e["element"]: e for e in json.loads(r.out)["elements"]}
            assert by["cs1"]["status"] == "Token refused", (token, by["cs1"])
            assert by["cs1"]["state"] == "unauthorized"
            with journal(_state(config)) as j:
                assert j.element_statuses()["cs1"]["status"] == "Token refused"
            assert "Token refused" in cli("status", str(config)).out
            assert _schema_errors(config) == []
        with journal(_state(config)) as j:
            assert len(_events(j, "element_down", "cs1")) == 1
    finally:
        cs1.stop()


def test_plan_with_an_element_down_is_incomplete_unless_allowed(
    sims: list[Sim], tmp_path: Path
) -> None:
    _, cs2 = sims
    config = write_config(tmp_path / "config", sims, users=4)
    assert cli("reconcile", str(config)).code == 0
    cs2.faults(offline=True)
    r = cli("plan", str(config), "--detailed-exitcode")
    assert r.code == exitcodes.INCOMPLETE == 5, r.out + r.err
    assert "incomplete: not observed: cs2" in r.err
    allowed = cli("plan", str(config), "--detailed-exitcode", "--allow-unreachable")
    assert allowed.code == exitcodes.OK, allowed.out + allowed.err
    assert "warning: not observed" in allowed.err
    write_config(tmp_path / "config", sims, users=4, first_name="Bea")
    changed = cli("plan", str(config), "--detailed-exitcode", "--allow-unreachable")
    assert changed.code == exitcodes.CHANGES, changed.out + changed.err
    # The element down is shown with what it is owed, kept for when it is back.
    assert "kept as pending updates until it is back" in changed.out
    assert cli("plan", str(config), "--detailed-exitcode").code == exitcodes.INCOMPLETE


def test_queue_cap_refusal_never_says_sync_completed(sims: list[Sim], tmp_path: Path) -> None:
    config = write_config(tmp_path / "config", sims, users=4, extra_settings="  queue_cap: 2\n")
    r = cli("reconcile", str(config))
    assert r.code == exitcodes.REFUSED, r.out
    assert "queue cap" in r.out
    assert "Sync Completed" not in r.out, r.out
    assert "Refused: queue cap" in r.out
    status = cli("status", str(config))
    assert "Sync Completed" not in status.out, status.out
    assert "none yet" not in status.out, status.out
    assert _schema_errors(config) == []
    assert all(s.records() == {} for s in sims)


def test_run_killed_is_marked_interrupted_by_the_next_run(sims: list[Sim], tmp_path: Path) -> None:
    config = write_config(tmp_path / "config", sims, users=4)
    killed = cli_killed_at("2", "reconcile", str(config))
    assert killed.code == -signal.SIGKILL, killed.err
    with journal(_state(config)) as j:
        (dead,) = j.runs(1)
        assert dead["finished"] is None
    again = cli("reconcile", str(config))
    assert again.code == 0, again.out
    with journal(_state(config)) as j:
        runs = {r["id"]: r for r in j.runs(5)}
        assert runs[dead["id"]]["outcome"] == "interrupted"
        assert runs[dead["id"]]["finished"] is not None
        (event,) = [e for e in j.events() if e.type == "interrupted"]
        assert event.run_id == dead["id"] and "without finishing" in event.message
        assert j.unfinished_runs() == []
    # Marked once: the run after that finds nothing more to mark.
    assert cli("reconcile", str(config)).code == 0
    with journal(_state(config)) as j:
        assert len([e for e in j.events() if e.type == "interrupted"]) == 1


def test_sigterm_during_reconcile_is_an_interruption_not_an_error(
    sims: list[Sim], tmp_path: Path
) -> None:
    cs1, _ = sims
    config = write_config(tmp_path / "config", sims, users=6)
    cs1.faults(latency_ms=300)  # keeps the run on cs1 long enough to be stopped
    proc = subprocess.Popen(
        [*PROVGIT, "reconcile", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def writing() -> bool:
            if not (_state(config) / "journal.sqlite").exists():
                return False
            with journal(_state(config)) as j:
                return bool(j.open_intents("cs1"))

        assert wait_for(writing, 30)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
    assert proc.returncode == exitcodes.INTERRUPTED, (proc.returncode, out, err)
    assert "Interrupted" in err and "Traceback" not in err, err
    with journal(_state(config)) as j:
        (run,) = j.runs(1)
        assert run["outcome"] == "interrupted"
        (event,) = [e for e in j.events() if e.type == "interrupted"]
        assert event.run_id == run["id"]
    cs1.faults(latency_ms=0)
    assert cli("reconcile", str(config)).code == 0


def test_reconcile_names_the_resources_it_changed_and_could_not(
    sims: list[Sim], tmp_path: Path
) -> None:
    cs1, _ = sims
    config = write_config(tmp_path / "config", sims, users=4)
    cs1.faults(refuse=[{"collection": "cos", "key": "7"}])
    r = cli("reconcile", str(config))
    assert r.code == exitcodes.APPLIED_WITH_ERRORS, r.out
    lines = {line.split(": ", 1)[0]: line for line in r.out.splitlines() if ": " in line}
    assert "users/user1 on " in lines["applied"], r.out
    assert "cs2" in lines["applied"]
    assert lines["failed"] == "failed: classes_of_service/7 on cs1", r.out
    assert lines["skipped"] == "skipped: users/user0 on cs1", r.out


def test_ivr_server_down_is_said_in_the_ivr_words_and_its_content_pending(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)
    sims = start_sims(tmp_path, [("cs1", "mivb"), ("ivr1", "ivr")])
    try:
        cs1, ivr1 = sims
        config = write_config(tmp_path / "config", sims, users=2)
        assert cli("reconcile", str(config)).code == 0
        ivr1.faults(offline=True)
        net = config / "net.yaml"
        net.write_text(net.read_text().replace("host: 10.0.0.5", "host: 10.0.0.6"))
        r = cli("reconcile", str(config), "--format", "json")
        assert r.code == exitcodes.APPLIED_WITH_ERRORS, r.out
        by = {e["element"]: e for e in json.loads(r.out)["elements"]}
        assert by["ivr1"]["status"] == "IVR services are stopped or the server is offline"
        assert [(o["kind"], o["resource"], o["status"]) for o in by["ivr1"]["problems"]] == [
            ("ivr_media_servers", "ms1", "pending")
        ]
        with journal(_state(config)) as j:
            assert [(p.kind, p.resource) for p in j.pending()] == [("ivr_media_servers", "ms1")]
        assert cli("status", str(config), "--kind", "ivr_media_servers").code != 0
        assert _schema_errors(config) == []
        ivr1.faults(offline=False)
        assert cli("reconcile", str(config)).code == 0
        assert ivr1.records()["media_servers"]["ms1"]["host"] == "10.0.0.6"
        assert cs1.records()["users"]
    finally:
        for s in sims:
            s.stop()
