"""Run the provgit CLI with a write hook that terminates its PostgreSQL journal
sessions (`pg_terminate_backend`) at a chosen write: the journal's database
connection drops in the middle of a real `provgit reconcile`.

    python tests/support/pg_drop_at.py POINT ADMIN_URL KEEP_OUT PROVGIT-ARGS...

POINT is as for tests/support/kill_after.py. ADMIN_URL is the server's
maintenance database (with its password); every session whose
application_name is `provgit` is terminated, and the hook waits until none is
left. KEEP_OUT: a database name to refuse connections to from then on
(ALLOW_CONNECTIONS false: the server stays down for provgit), "-", or
"restart:" and a JSON argv that restarts the cluster (run instead of terminating).
The hook says on stderr how many sessions it ended. It goes in through
provgit's public injection point (`provgit.apply.install_write_hook`).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

LAUNCHER = Path(__file__).resolve()
DEADLINE_S = 20


def command(point: str, admin_url: str, keep_out: str, *args: str) -> list[str]:
    return [sys.executable, str(LAUNCHER), point, admin_url, keep_out, *args]


def terminate(admin_url: str, keep_out: str = "-") -> int:
    """End every provgit session on the server; returns once none is left."""
    import psycopg

    ended = 0
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if keep_out != "-":
            conn.execute(f"ALTER DATABASE {keep_out} ALLOW_CONNECTIONS false")
        end = time.monotonic() + DEADLINE_S
        while True:
            left = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = 'provgit' AND pid <> pg_backend_pid()"
            ).fetchone()
            if not left or not left[0] or time.monotonic() > end:
                return ended
            ended += int(left[0])
            time.sleep(0.02)


def main(argv: list[str]) -> None:
    from provgit.apply import WriteMoment, install_write_hook
    from provgit.cli import main as provgit
    from support.kill_after import parse_point

    raw, admin_url, keep_out, *rest = argv
    point = parse_point(raw)
    if point is None:
        raise SystemExit(f"pg_drop_at: {raw!r} is not a write point (N or N:before)")

    def drop(n: int, moment: WriteMoment) -> None:
        if (n, moment) == point and keep_out.startswith("restart:"):
            argv = json.loads(keep_out.removeprefix("restart:"))
            subprocess.run(argv, check=True, capture_output=True, timeout=DEADLINE_S * 3)
            print("pg_drop_at: restarted the cluster", file=sys.stderr)
        elif (n, moment) == point:
            ended = terminate(admin_url, keep_out)
            print(f"pg_drop_at: ended {ended} provgit session(s)", file=sys.stderr)

    install_write_hook(drop)
    sys.argv = ["provgit", *rest]
    provgit()


if __name__ == "__main__":
    sys.path.insert(0, str(LAUNCHER.parents[1]))
    main(sys.argv[1:])
