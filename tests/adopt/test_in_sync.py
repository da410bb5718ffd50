"""The sample network, reconciled onto its embedded elements, imports as nothing to do."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from tests.adopt.conftest import cli

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample-config"
SECRETS = ROOT / "scripts" / "demo-secrets.env"


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), *args], check=True, capture_output=True, text=True, timeout=60
    ).stdout


@pytest.fixture
def synced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of sample-config reconciled onto fresh embedded elements, committed in git."""
    for line in SECRETS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            k, _, v = line.partition("=")
            monkeypatch.setenv(k.strip(), v.strip())
    root = tmp_path / "sample-config"
    shutil.copytree(SAMPLE, root, ignore=shutil.ignore_patterns(".provgit"))
    r = cli("reconcile", str(root))
    assert r.exit_code == 0, r.output
    _git(root, "init", "-q", "-b", "main")
    _git(root, "config", "user.email", "t@example.net")
    _git(root, "config", "user.name", "t")
    (root / ".gitignore").write_text(".provgit/\n")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "config")
    return root


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*.yaml"))
        if ".provgit" not in p.parts
    }


def test_in_sync_network_imports_as_nothing_to_do(synced: Path) -> None:
    r = cli("import", "--dry-run", "--into", str(synced), "--format", "json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    summary = report["summary"]
    assert (summary["automatic"], summary["review"], summary["unresolved"]) == (0, 0, 0)
    assert report["items"] == []


def test_in_sync_network_prefer_element_writes_nothing(synced: Path) -> None:
    before = _snapshot(synced)
    r = cli("import", "--prefer-element", "--into", str(synced))
    assert r.exit_code == 0, r.output
    assert _snapshot(synced) == before


def test_in_sync_network_drift_makes_no_branch(synced: Path) -> None:
    heads = _git(synced, "branch", "--list")
    r = cli("import", "--drift", "--into", str(synced))
    assert r.exit_code == 0, r.output
    assert _git(synced, "branch", "--list") == heads
    assert "No drift" in r.output
