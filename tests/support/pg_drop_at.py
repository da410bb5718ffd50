"""Run the provgit CLI with a write hook that terminates its PostgreSQL journal
sessions (`pg_terminate_backend`) at a chosen write: the journal's database
connection drops in the middle of a real `provgit reconcile`.

    python tests/support/pg_drop_at.py POINT ADMIN_URL PROVGIT-ARGS...

POINT is as for tests/support/kill_after.py. ADMIN_URL is the server's
maintenance database (with its password); every session whose
application_name is `provgit` is terminated, and the hook waits until none is
left. The hook goes in through provgit's public injection point
(`provgit.apply.install_write_hook`).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

LAUNCHER = Path(__file__).resolve()
DEADLINE_S = 20


def command(point: str, admin_url: str, *args: str) -> list[str]:
    return [sys.executable, str(LAUNCHER), point, admin_url, *args]


def terminate(admin_url: str) -> None:
    """End every provgit session on the server; returns once none is left."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        end = time.monotonic() + DEADLINE_S
        while True:
            left = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = 'provgit' AND pid <> pg_backend_pid()"
            ).fetchone()
            if not left or not left[0] or time.monotonic() > end:
                return
            time.sleep(0.02)


def main(argv: list[str]) -> None:
    from provgit.apply import WriteMoment, install_write_hook
    from provgit.cli import main as provgit
    from support.kill_after import parse_point

    raw, admin_url, *rest = argv
    point = parse_point(raw)
    if point is None:
        raise SystemExit(f"pg_drop_at: {raw!r} is not a write point (N or N:before)")

    def drop(n: int, moment: WriteMoment) -> None:
        if (n, moment) == point:
            terminate(admin_url)

    install_write_hook(drop)
    sys.argv = ["provgit", *rest]
    provgit()


if __name__ == "__main__":
    sys.path.insert(0, str(LAUNCHER.parents[1]))
    main(sys.argv[1:])
