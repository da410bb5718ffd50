"""The sample config, copied, with its embedded elements under a state
directory of its own, and the demo values of its secret references set."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from provgit.drivers.base import WriteOp
from provgit.simulator.store import ElementStore

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)
    monkeypatch.delenv("PROVGIT_NO_MEMO", raising=False)
    config = tmp_path / "config"
    shutil.copytree(ROOT / "sample-config", config, ignore=shutil.ignore_patterns(".provgit"))
    for line in (ROOT / "scripts" / "demo-secrets.env").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            monkeypatch.setenv(name, value)
    return config


def element_record(state_dir: Path, element: str, collection: str, key: str) -> dict[str, Any]:
    """What an embedded element holds for one record (without provgit's own fields)."""
    store = ElementStore(state_dir / "elements" / f"{element}.sqlite")
    try:
        row = store._db.execute(
            "SELECT fields FROM records WHERE collection = ? AND key = ?", (collection, key)
        ).fetchone()
    finally:
        store.close()
    assert row is not None, (element, collection, key)
    fields: dict[str, Any] = json.loads(row[0])
    return {k: v for k, v in fields.items() if not k.startswith("_")}


def edit_element(
    state_dir: Path, element: str, collection: str, key: str, fields: dict[str, Any] | None
) -> None:
    """Another user's change, made on the element itself (None: a delete)."""
    store = ElementStore(state_dir / "elements" / f"{element}.sqlite")
    try:
        action = "delete" if fields is None else "put"
        store.write(WriteOp(action, collection, key, fields), force=True)
    finally:
        store.close()
