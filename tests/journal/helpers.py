"""Journal files of earlier schema versions, and ways to compare journal files."""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"
# Journals that earlier provgit versions wrote (see each file's header): name -> schema.
EARLIER = {"v1_first": 1, "v1": 1, "v2": 2}


def journal_from_fixture(name: str, state_dir: Path) -> Path:
    """`state_dir`/journal.sqlite built from fixtures/<name>.sql."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "journal.sqlite"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript((FIXTURES / f"{name}.sql").read_text())
    return path


def schema(path: Path) -> set[tuple[str, str, str, str | None]]:
    """What `sqlite_master` holds, less where each object happens to be stored."""
    with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as db:
        return set(db.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"))


def rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, sorted."""
    with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as db:
        tables = [
            name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        return {t: sorted(db.execute(f'SELECT * FROM "{t}"'), key=repr) for t in tables}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
