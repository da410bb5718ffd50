"""What a failed watch test saw: every watcher's whole log and, for replicas,
the shared journal's runs, pending updates, statuses, leases and meta rows.

Written to files under the test's tmp directory (kept by pytest) and, in
short, into the failure's report section, so a failure that happens once in
twenty runs on a loaded machine explains itself without a rerun.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .helpers import Watch

# How much of each log the report section shows (the files hold all of it).
TAIL = 60

_QUERIES = {
    "runs": "SELECT id, command, pid, started, finished, commit_id, outcome FROM runs ORDER BY id",
    "pending": "SELECT element, collection, key, action, attempts, last_error FROM pending",
    "dist_errors": "SELECT element, collection, key, action, error_type, status FROM dist_errors",
    "element_status": "SELECT element, status, state, run_id, detail, time FROM element_status",
    "replica_leases": "SELECT element, holder, token, expires FROM replica_leases",
    "replica_seen": "SELECT replica, pid, seen FROM replica_seen",
    "meta": "SELECT k, v FROM meta ORDER BY k",
    "events": "SELECT id, time, type, element, message, run_id FROM events ORDER BY id",
}


def journal_rows(url: str) -> dict[str, list[list[Any]]]:
    """The shared journal's rows a replica failure is explained by (an error
    string in place of a table that cannot be read)."""
    import psycopg

    out: dict[str, Any] = {}
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
            for table, query in _QUERIES.items():
                try:
                    out[table] = [list(r) for r in conn.execute(query).fetchall()]
                except psycopg.Error as e:
                    out[table] = f"unreadable: {e}"
    except psycopg.Error as e:
        out["error"] = f"cannot connect: {e}"
    return out


def _line(entry: dict[str, Any]) -> str:
    return json.dumps(entry, default=str, separators=(",", ":"))


def explain(watches: Sequence[Watch], where: Path) -> str:
    """Write every watcher's log (and the shared journal's rows) under
    `where`; the report section's text: each log's tail and the journal."""
    where.mkdir(parents=True, exist_ok=True)
    parts = [f"full logs and journal rows in {where}"]
    urls: list[str] = []
    for w in watches:
        with w._changed:
            lines = list(w.logs)
        (where / f"watch-{w.proc.pid}.jsonl").write_text("".join(_line(x) + "\n" for x in lines))
        alive = "running" if w.proc.poll() is None else f"exited {w.proc.returncode}"
        parts.append(f"--- watch pid {w.proc.pid} ({alive}), last {TAIL} of {len(lines)} lines")
        parts += [_line(x) for x in lines[-TAIL:]]
        if w.journal_url and w.journal_url not in urls:
            urls.append(w.journal_url)
    for i, url in enumerate(urls):
        rows = journal_rows(url)
        (where / f"journal-{i}.json").write_text(json.dumps(rows, default=str, indent=1))
        parts.append(f"--- shared journal {i}")
        for table, value in rows.items():
            shown = value[-40:] if isinstance(value, list) else value
            parts.append(f"{table}: {json.dumps(shown, default=str)}")
    return "\n".join(parts)
