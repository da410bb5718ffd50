"""A throwaway PostgreSQL cluster on 127.0.0.1 for the journal tests.

Debian's `postgresql` package (scripts/test installs it when missing);
`initdb`/`pg_ctl` from PATH or /usr/lib/postgresql/*/bin. PostgreSQL refuses
to run as root: as root the cluster runs as `nobody` in a directory it owns.
Password authentication (scram) over TCP, so a URL without the password is
refused. `PROVGIT_TEST_PG_URL` (a server's maintenance database URL, e.g.
postgresql://user:pw@127.0.0.1/postgres) uses that server instead. Waits are
bounded; the server is stopped (immediate) and its directory removed at the end.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

USER = "provgit"
PASSWORD = "pg-test-password-not-a-secret"
START_TIMEOUT_S = 30


def _tool(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def missing() -> str | None:
    """Why a PostgreSQL server cannot be started here, or None."""
    if os.environ.get("PROVGIT_TEST_PG_URL"):
        return None
    for name in ("initdb", "pg_ctl"):
        if _tool(name) is None:
            return (
                f"{name} is not installed: scripts/test installs Debian's postgresql "
                "(apt-get install postgresql)"
            )
    return None


PORT_ATTEMPTS = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    admin_url: str  # the maintenance database, with the password
    host: str
    port: int
    # The command that restarts this cluster (none for PROVGIT_TEST_PG_URL's).
    restart_argv: list[str] | None = None

    def new_database(self) -> str:
        """A new, empty database; its URL without the password."""
        import psycopg

        name = "j_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return f"postgresql://{USER}@{self.host}:{self.port}/{name}"

    def url(self, database_url: str) -> str:
        """`database_url` with the password in it."""
        return database_url.replace(f"//{USER}@", f"//{USER}:{PASSWORD}@", 1)


@contextmanager
def running() -> Iterator[Server]:
    given = os.environ.get("PROVGIT_TEST_PG_URL")
    if given:
        from urllib.parse import urlsplit

        parts = urlsplit(given)
        yield Server(given, parts.hostname or "127.0.0.1", parts.port or 5432)
        return
    root = Path(tempfile.mkdtemp(prefix="provgit-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        # PostgreSQL will not run as root.
        shutil.chown(root, "nobody")
        as_user = ["runuser", "-u", "nobody", "--"]
    data = root / "data"
    pwfile = root / "pw"
    pwfile.write_text(PASSWORD + "\n")
    if as_user:
        shutil.chown(pwfile, "nobody")
    run = {"check": True, "capture_output": True, "timeout": START_TIMEOUT_S * 2}
    pg_ctl = str(_tool("pg_ctl"))
    try:
        subprocess.run(
            [
                *as_user,
                str(_tool("initdb")),
                "-D",
                str(data),
                "-U",
                USER,
                "--pwfile",
                str(pwfile),
                "--auth-local=scram-sha-256",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            **run,  # type: ignore[arg-type]
        )
        # A free port is closed again before the server binds it: another
        # process on the machine (a connect's ephemeral port, another
        # session's server) may take it meanwhile. Then the start fails on the
        # bind, and another port is tried.
        for attempt in range(1, PORT_ATTEMPTS + 1):
            port = _free_port()
            options = f"-h 127.0.0.1 -p {port} -k {root} -F -c max_connections=200"
            start = [*as_user, pg_ctl, "-D", str(data), "-w", "-t", str(START_TIMEOUT_S)]
            try:
                subprocess.run(
                    [*start, "-o", options, "-l", str(root / "log"), "start"],
                    **run,  # type: ignore[arg-type]
                )
                break
            except subprocess.CalledProcessError:
                said = (root / "log").read_text(errors="replace")
                if attempt == PORT_ATTEMPTS or "could not bind" not in said:
                    raise
                (root / "log").write_text("")  # the next start's own words
        restart = [
            *as_user,
            pg_ctl,
            "-D",
            str(data),
            "-m",
            "fast",
            "-w",
            "-t",
            str(START_TIMEOUT_S),
            "-o",
            options,
            "-l",
            str(root / "log"),
            "restart",
        ]
        yield Server(
            f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{port}/postgres", "127.0.0.1", port, restart
        )
    finally:
        subprocess.run(
            [*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "-t", "20", "stop"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(root, ignore_errors=True)
