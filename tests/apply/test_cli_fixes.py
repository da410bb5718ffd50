"""Command-line answers people rely on: `plan --out`, the `errors` commands'
refusals and `errors delete --all`, forms in the pending-updates tables —
against real simulator processes on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from provgit.cli import applying

from .helpers import Sim, cli, journal, start_sims, write_config

pytestmark = pytest.mark.slow


@pytest.fixture
def cs1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sim]:
    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)
    (sim,) = start_sims(tmp_path, [("cs1", "mivb")])
    try:
        yield sim
    finally:
        sim.stop()


def _refused_cos7(cs1: Sim, config: Path) -> int:
    cs1.faults(refuse=[{"collection": "cos", "key": "7"}])
    r = cli("reconcile", str(config), "--format", "json")
    assert r.code == 4, r.out
    with journal(config / ".provgit") as j:
        (e,) = j.distribution_errors()
        return e.id


def test_plan_out_into_a_missing_directory_is_refused_and_creates_nothing(
    cs1: Sim, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "config", [cs1], users=1)
    target = tmp_path / "nonexistent" / "dir" / "x.plan"
    r = cli("plan", str(config), "--out", str(target))
    assert r.code == 1
    assert "the directory" in r.err and "does not exist" in r.err and "mkdir -p" in r.err
    assert not (tmp_path / "nonexistent").exists()


def test_plan_out_says_where_the_plan_was_saved(cs1: Sim, tmp_path: Path) -> None:
    config = write_config(tmp_path / "config", [cs1], users=1)
    target = tmp_path / "x.plan"
    r = cli("plan", str(config), "--out", str(target))
    assert r.code == 0, r.out + r.err
    assert f"plan saved to {target}" in r.out
    assert json.loads(target.read_text())["signature"]["algorithm"] == "HMAC-SHA256"
    # With the plan itself on stdout the sentence goes to stderr.
    r = cli("plan", str(config), "--out", str(target), "--format", "json")
    assert r.code == 0 and f"plan saved to {target}" in r.err
    assert json.loads(r.out)["network"] == "t"


def test_errors_force_on_a_refusal_is_refused_and_changes_nothing(cs1: Sim, tmp_path: Path) -> None:
    config = write_config(tmp_path / "config", [cs1], users=1)
    error_id = _refused_cos7(cs1, config)
    cs1.faults(refuse=[])
    forced = cli("errors", "force", "-C", str(config), str(error_id))
    assert forced.code == 1
    assert f"{error_id}: cs1 cos/7 is not a conflict (refused" in forced.err
    assert f"provgit errors retry {error_id}" in forced.err
    assert "7" not in cs1.records().get("cos", {})
    with journal(config / ".provgit") as j:
        (e,) = j.distribution_errors()
        assert e.status == "idle"


def test_errors_list_of_an_unknown_element_is_a_usage_error_naming_the_known(
    cs1: Sim, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "config", [cs1], users=1)
    _refused_cos7(cs1, config)
    r = cli("errors", "list", "-C", str(config), "--element", "nosuch")
    assert r.code == 1
    assert "no element nosuch (known: cs1, mcl)" in r.err
    assert cli("errors", "list", "-C", str(config), "--element", "cs1").code == 0


def test_errors_retry_refused_by_a_threshold_says_why_and_leaves_the_error_idle(
    cs1: Sim, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "config", [cs1], users=2)
    error_id = _refused_cos7(cs1, config)
    cs1.faults(refuse=[])
    # Since then the config changed every user: cs1's plan passes max_updates.
    write_config(
        config,
        [cs1],
        users=2,
        first_name="Bob",
        extra_settings="safety:\n  max_updates: {count: 0}\n",
    )
    r = cli("errors", "retry", "-C", str(config), str(error_id))
    assert r.code == 3, r.out + r.err
    assert f"{error_id}: cs1 cos/7 not retried:" in r.err
    assert "1 updates (more than 0); pass --allow-mass-update" in r.err
    with journal(config / ".provgit") as j:
        (e,) = j.distribution_errors()
        assert e.status == "idle"


def test_errors_delete_all_asks_or_needs_yes(
    cs1: Sim, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path / "config", [cs1], users=1)
    _refused_cos7(cs1, config)
    both = cli("errors", "delete", "-C", str(config), "--all", "1")
    assert both.code == 1 and "not both" in both.err
    no_tty = cli("errors", "delete", "-C", str(config), "--all")
    assert no_tty.code == 1 and "pass --yes" in no_tty.err
    monkeypatch.setattr(applying, "stdin_is_tty", lambda: True)
    from click.testing import CliRunner

    from provgit.cli import main

    declined = CliRunner().invoke(
        main, ["errors", "delete", "-C", str(config), "--all"], input="n\n"
    )
    assert declined.exit_code == 0 and "Nothing deleted." in declined.stderr
    with journal(config / ".provgit") as j:
        assert j.distribution_error_count() == 1
    done = cli("errors", "delete", "-C", str(config), "--all", "--yes")
    assert done.code == 0, done.out + done.err
    assert "1 distribution error(s) deleted, 0 left" in done.out
    with journal(config / ".provgit") as j:
        assert j.distribution_error_count() == 0


def test_pending_updates_show_the_form_name_in_errors_list_and_status(
    cs1: Sim, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "config", [cs1], users=1)
    assert cli("reconcile", str(config)).code == 0
    cs1.faults(offline=True)
    net = config / "net.yaml"
    net.write_text(net.read_text().replace("comment: Sales", "comment: Sold"))
    r = cli("reconcile", str(config))
    assert r.code == 4, r.out + r.err
    listed = cli("errors", "list", "-C", str(config))
    assert "Class of Service Options: 7" in listed.out, listed.out
    assert "cos/7" not in listed.out
    status = cli("status", str(config))
    rows = [line for line in status.out.splitlines() if line.strip().startswith("cs1")]
    assert any("Class of Service Options" in line for line in rows), status.out
