"""`provgit journal`: the journal's own operations (moving it to PostgreSQL)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from provgit import exitcodes
from provgit.api import migrate_journal
from provgit.cli.common import api_errors, state_dir_for, state_dir_option


def _password(env: str | None) -> str | None:
    if env is None:
        return None  # libpq's own: PGPASSWORD, ~/.pgpass
    value = os.environ.get(env)
    if not value:
        raise click.UsageError(f"--password-env {env}: that environment variable is not set")
    return value


@click.group("journal")
def command() -> None:
    """The journal's own operations: move it to a shared PostgreSQL database."""


@command.command("migrate")
@click.option("--to", "url", required=True, metavar="URL", help="postgresql://user@host/db")
@click.option(
    "--password-env",
    metavar="NAME",
    default=None,
    help="Read the database password from this environment variable "
    "(else libpq's PGPASSWORD or ~/.pgpass).",
)
@click.option("--force", is_flag=True, help="Replace a journal the database already holds.")
@click.option(
    "--config",
    "config",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Config directory (its state dir holds the journal).",
)
@state_dir_option
@api_errors
def migrate(
    url: str, password_env: str | None, force: bool, config: Path, state_dir: str | None
) -> int:
    """Copy the state directory's journal into a PostgreSQL database, in one
    transaction, checking row counts; the file is left as it was."""
    done = migrate_journal(
        state_dir_for(config, state_dir), url, _password(password_env), force=force
    )
    counts = ", ".join(f"{t} {n}" for t, n in done.rows.items() if n)
    click.echo(
        f"copied {sum(done.rows.values())} rows ({counts}) from {done.source} to {done.target}"
    )
    if done.replaced:
        click.echo(f"replaced the {done.replaced} rows the database held (--force)")
    secret = f"{{env: {password_env}}}" if password_env else "<a secret reference>"
    click.echo(
        "next: in provgit.yaml set\n"
        f"  journal:\n    url: {done.target}\n    password: {secret}\n"
        f"then move {done.source} away, so no run writes to the old journal"
    )
    return exitcodes.OK
