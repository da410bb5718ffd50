"""The sample network (sample-config/) reconciled onto fresh embedded elements, in git."""

from __future__ import annotations

import copy
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.importing.conftest import cli

from provgit.drivers.base import WriteOp
from provgit.simulator.store import ElementStore

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample-config"
SECRETS = ROOT / "scripts" / "demo-secrets.env"


def git(root: Path, *args: str) -> str:
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
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "t@example.net")
    git(root, "config", "user.name", "t")
    (root / ".gitignore").write_text(".provgit/\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "config")
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*.yaml"))
        if ".provgit" not in p.parts
    }


def edit_user(
    root: Path, element: str, login: str, change: Callable[[dict[str, Any]], None]
) -> None:
    store = ElementStore(root / ".provgit" / "elements" / f"{element}.sqlite")
    try:
        fields = copy.deepcopy(dict(store.get_record("users", login).fields))
        change(fields)
        store.write(WriteOp("put", "users", login, fields), force=True)
    finally:
        store.close()


def edit(
    root: Path, element: str, collection: str, key: str, change: Callable[[dict[str, Any]], None]
) -> None:
    """An element admin's own change to one record, straight into the element's store."""
    store = ElementStore(root / ".provgit" / "elements" / f"{element}.sqlite")
    try:
        fields = copy.deepcopy(dict(store.get_record(collection, key).fields))
        change(fields)
        store.write(WriteOp("put", collection, key, fields), force=True)
    finally:
        store.close()


def records(root: Path, element: str, collection: str) -> dict[str, dict[str, Any]]:
    store = ElementStore(root / ".provgit" / "elements" / f"{element}.sqlite")
    try:
        return {r.key: dict(r.fields) for r in store.list_records(collection).records}
    finally:
        store.close()
