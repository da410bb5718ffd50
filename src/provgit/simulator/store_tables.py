"""The element store's side tables: the DN and COS indexes behind its
reference rules, and the plaintexts of sensitive fields (`store.ElementStore`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

from provgit.records import Fields
from provgit.simulator import rules
from provgit.wire import codec
from provgit.wire.protocol import Refusal, RefusedError
from provgit.wire.sensitive import SENSITIVE


def _dumps(value: Any) -> str:
    return codec.dumps(value).decode()


class Indexes:
    """`dns` (DN -> the record using it) and `cos_refs` (COS -> records naming it)."""

    def __init__(self, db: sqlite3.Connection, element_type: str) -> None:
        self.db = db
        self.element_type = element_type

    def indexed(self, fields: Fields) -> bool:
        return bool(
            rules.directory_numbers(fields) or rules.cos_references(self.element_type, fields)
        )

    def check_references(
        self,
        collection: str,
        key: str,
        dns: list[tuple[str, str]],
        cos_refs: list[tuple[str, str]],
        form: str,
    ) -> list[Refusal]:
        out: list[Refusal] = []
        seen: dict[str, str] = {}
        for path, dn in dns:
            if dn in seen:
                out.append(Refusal(form, path, f"DN {dn} is used twice in this record"))
                continue
            seen[dn] = path
            owner = self.db.execute(
                "SELECT collection, key FROM dns WHERE dn = ?", (dn,)
            ).fetchone()
            if owner is not None and (owner[0], owner[1]) != (collection, key):
                out.append(Refusal(form, path, f"DN {dn} is already used by {owner[0]}/{owner[1]}"))
        # A record names the same COS for several periods (day, night1,
        # night2): one lookup each, nothing is written in between.
        exists: dict[str, bool] = {}
        for path, cos in cos_refs:
            if cos not in exists:
                exists[cos] = (
                    self.db.execute(
                        "SELECT 1 FROM records WHERE collection = 'cos' AND key = ?", (cos,)
                    ).fetchone()
                    is not None
                )
            if not exists[cos]:
                out.append(
                    Refusal(form, path, f"Class of Service {cos} does not exist on this element")
                )
        return out

    def check_delete(self, collection: str, key: str, form: str) -> None:
        if collection != "cos":
            return
        users = self.db.execute(
            "SELECT collection, key FROM cos_refs WHERE cos = ? ORDER BY collection, key LIMIT 3",
            (key,),
        ).fetchall()
        if users:
            names = ", ".join(f"{c}/{k}" for c, k in users)
            reason = f"Class of Service {key} is still used by {names}"
            raise RefusedError(f"{form} {key} refused: {reason}", [Refusal(form, None, reason)])

    def add(
        self,
        collection: str,
        key: str,
        dns: list[tuple[str, str]],
        cos_refs: list[tuple[str, str]],
    ) -> None:
        # Only the statements that have rows (an empty executemany still costs).
        if dns:
            self.db.executemany(
                "INSERT OR IGNORE INTO dns VALUES (?, ?, ?)",
                [(dn, collection, key) for _, dn in dns],
            )
        if cos_refs:
            self.db.executemany(
                "INSERT OR IGNORE INTO cos_refs VALUES (?, ?, ?)",
                [(cos, collection, key) for _, cos in cos_refs],
            )

    def remove(self, collection: str, key: str) -> None:
        self.db.execute("DELETE FROM dns WHERE collection = ? AND key = ?", (collection, key))
        self.db.execute("DELETE FROM cos_refs WHERE collection = ? AND key = ?", (collection, key))


class Secrets:
    """Plaintexts of sensitive fields, by record and JSON path; never read back
    by any API, only kept as an element keeps a PIN."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def store(self, collection: str, key: str, stored: Fields, secrets: dict[str, Any]) -> None:
        # A fingerprint sent without its value keeps the plaintext already held
        # (rewriting a record must not wipe its PIN); paths no longer present go.
        kept = dict(
            self.db.execute(
                "SELECT path, value FROM secrets WHERE collection = ? AND key = ?",
                (collection, key),
            ).fetchall()
        )
        self.db.execute("DELETE FROM secrets WHERE collection = ? AND key = ?", (collection, key))
        rows: list[tuple[str, str, str, str]] = []
        for path in _sensitive_paths(stored, ""):
            if path in secrets:
                rows.append((collection, key, path, _dumps(secrets[path])))
            elif path in kept:
                rows.append((collection, key, path, kept[path]))
        self.db.executemany("INSERT INTO secrets VALUES (?, ?, ?, ?)", rows)

    def drop(self, collection: str, key: str) -> None:
        self.db.execute("DELETE FROM secrets WHERE collection = ? AND key = ?", (collection, key))

    def has(self, collection: str, key: str, path: str) -> bool:
        row = self.db.execute(
            "SELECT 1 FROM secrets WHERE collection = ? AND key = ? AND path = ?",
            (collection, key, path),
        ).fetchone()
        return row is not None


def _sensitive_paths(value: Any, path: str) -> Iterator[str]:
    if isinstance(value, dict):
        if SENSITIVE in value:
            yield path
            return
        for k, v in value.items():
            yield from _sensitive_paths(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _sensitive_paths(v, f"{path}[{i}]")
