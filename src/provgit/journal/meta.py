"""The `meta` table: small settings kept with the journal.

Keys: schema_version (see schema.py), alarm_level, pruned_at, the drift
baselines of apply/drift_detect, the commit the watcher last applied and
the safety each element was last applied under (`applied_safety:<element>`).
"""

from __future__ import annotations

from provgit.journal.store import Store


class Meta:
    def __init__(self, store: Store) -> None:
        self._store = store

    def get(self, k: str) -> str | None:
        row = self._store.db.execute("SELECT v FROM meta WHERE k = ?", (k,)).fetchone()
        return None if row is None else str(row[0])

    def prefixed(self, prefix: str) -> dict[str, str]:
        """Every key that starts with `prefix`. Filtered here: a few rows, and
        neither LIKE (`_` is a wildcard) nor a range (a PostgreSQL collation
        may order punctuation its own way) says "starts with" on both backends."""
        rows = self._store.db.execute("SELECT k, v FROM meta").fetchall()
        return {str(k): str(v) for k, v in rows if str(k).startswith(prefix)}

    def put(self, k: str, v: str) -> None:
        """Set `k` inside the caller's transaction."""
        self._store.db.execute(
            "INSERT INTO meta VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v", (k, v)
        )

    def set(self, k: str, v: str) -> None:
        with self._store.transaction():
            self.put(k, v)
