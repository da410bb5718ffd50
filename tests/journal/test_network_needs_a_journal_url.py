"""`provgit --network NAME …` names a fleet network, whose journal is a schema
of a PostgreSQL database: with no journal URL it is a usage error, and the
state directory's own SQLite journal (not that network's) is left alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.conftest import sample  # noqa: F401 (the sample config fixture)
from apply.helpers import cli_process


def _tree(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*")}


@pytest.mark.parametrize("command", ["reconcile", "status", "plan"])
def test_network_without_a_journal_url_is_a_usage_error_and_touches_nothing(
    sample: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    command: str,
) -> None:
    monkeypatch.delenv("PROVGIT_JOURNAL_URL", raising=False)
    before = _tree(sample)
    # In its own process: --network sets process-wide state.
    ran = cli_process("--network", "east", command, str(sample))
    assert ran.code == 1, (ran.out, ran.err)
    # What is wrong and how to fix it, on one line.
    assert "--network east names a fleet network" in ran.err
    for fix in ("--journal-url", "$PROVGIT_JOURNAL_URL", "journal.url in provgit.yaml"):
        assert fix in ran.err
    assert "Traceback" not in ran.err
    # Nothing written: no state directory, no journal, no element file.
    assert _tree(sample) == before
    assert not (sample / ".provgit").exists()


def test_without_network_the_same_reconcile_uses_the_state_directorys_journal(
    sample: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PROVGIT_JOURNAL_URL", raising=False)
    ran = cli_process("reconcile", str(sample))
    assert ran.code == 0, ran.err
    assert (sample / ".provgit" / "journal.sqlite").is_file()
