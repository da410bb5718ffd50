"""`provgit status` and `provgit errors` on another machine: only the config
and the shared PostgreSQL journal's URL, an empty state directory."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from api.conftest import edit_element, element_record, sample  # noqa: F401 (fixture)
from api.test_api import NEW_USER
from apply.helpers import cli

from . import pg


def _refused_user(config: Path) -> None:
    """A new user whose DN another admin already gave someone on mivb3."""
    sales = config / "people" / "sales.yaml"
    sales.write_text(sales.read_text() + NEW_USER)
    state = config / ".provgit"
    record = element_record(state, "mivb3", "users", "jpatel")
    record["login_id"] = "intruder"
    record["services"][0]["dn"] = "3999"
    edit_element(state, "mivb3", "users", "intruder", record)


def _elsewhere(config: Path, tmp_path: Path, name: str) -> tuple[Path, Path]:
    """The config as git holds it (no .provgit) and an empty state directory."""
    there = tmp_path / name
    shutil.copytree(config, there, ignore=shutil.ignore_patterns(".provgit"))
    state = tmp_path / f"{name}-state"
    state.mkdir()
    return there, state


def _statuses(doc: dict) -> dict[str, str]:  # type: ignore[type-arg]
    return {name: e["status"] for name, e in doc["elements"].items()}


def test_status_and_errors_read_the_shared_journal_from_an_empty_state_directory(
    sample: Path,  # noqa: F811
    pg_server: pg.Server,
    tmp_path: Path,
) -> None:
    url = pg_server.url(pg_server.new_database())
    assert cli("--journal-url", url, "reconcile", str(sample)).code == 0
    config, state = _elsewhere(sample, tmp_path, "in-sync")
    status = cli(
        "--journal-url", url, "status", "--format", "json", "--state-dir", str(state), str(config)
    )
    assert status.code == 0, status.err
    doc = json.loads(status.out)
    assert doc["in_sync"] is True
    assert set(_statuses(doc).values()) == {"Sync Completed"} and len(doc["elements"]) == 6
    assert "recorded in the shared journal" in status.err

    # A run on the first machine leaves a distribution error: the other one sees it.
    _refused_user(sample)
    assert cli("--journal-url", url, "reconcile", str(sample)).code == 4
    here = json.loads(cli("--journal-url", url, "status", "--format", "json", str(sample)).out)
    config, state = _elsewhere(sample, tmp_path, "refused")
    status = cli(
        "--journal-url", url, "status", "--format", "json", "--state-dir", str(state), str(config)
    )
    assert status.code == 4, status.err
    doc = json.loads(status.out)
    assert doc["in_sync"] is False
    assert _statuses(doc) == _statuses(here)
    assert [(e["element"], e["key"]) for e in doc["distribution_errors"]] == [("mivb3", "zwu")]
    errors = cli(
        "--journal-url",
        url,
        "errors",
        "list",
        "--format",
        "json",
        "--state-dir",
        str(state),
        "--config",
        str(config),
    )
    assert errors.code == 0, errors.err
    listed = json.loads(errors.out)
    assert (listed["count"], listed["alarm"]) == (1, "warning")
    assert [(e["element"], e["key"], e["error_type"]) for e in listed["errors"]] == [
        ("mivb3", "zwu", doc["distribution_errors"][0]["error_type"])
    ]
    # No journal of its own here: everything came from PostgreSQL.
    assert not (state / "journal.sqlite").exists() and not (state / "observed").exists()
    assert pg.PASSWORD not in status.out + status.err + errors.out + errors.err


def test_status_from_an_empty_state_directory_without_a_shared_journal_says_there_is_none(
    sample: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    assert cli("reconcile", str(sample)).code == 0
    config, state = _elsewhere(sample, tmp_path, "local")
    status = cli("status", "--state-dir", str(state), str(config))
    assert status.code == 1
    assert "no runs recorded" in status.err
