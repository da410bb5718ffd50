"""`provgit suspend` / `provgit resume`: hold or release writes, kept in the journal."""

from __future__ import annotations

import getpass
import json
import time
from pathlib import Path

import click

from provgit import exitcodes
from provgit.cli.applying import open_journal
from provgit.cli.common import (
    config_path_argument,
    read_source,
    state_dir_for,
    state_dir_option,
)
from provgit.journal import NETWORK
from provgit.validate import validate_source


def check_element(path: Path, state_dir: Path, element: str | None) -> None:
    """A mistyped --element would hold nothing: refuse a name the config lacks.
    A config that does not validate cannot say; then only a warning (a freeze
    must still be possible while the config is broken)."""
    if element is None:
        return
    valid = validate_source(read_source(path), state_dir / "cache")
    if not valid.ok:
        click.echo(
            f"warning: the config at {path} does not validate; element {element!r} not checked",
            err=True,
        )
        return
    if element not in valid.state.elements:
        known = ", ".join(valid.state.elements)
        raise click.UsageError(f"unknown element {element!r} (known: {known})")


def who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@click.command("suspend")
@config_path_argument
@click.option("--element", metavar="NAME", help="Only this element (default: the whole network).")
@click.option("--reason", required=True, help="Why (shown in the status and the feed).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@state_dir_option
def command(path: Path, element: str | None, reason: str, fmt: str, state_dir: str | None) -> int:
    """Suspend writes to the network at PATH (or one --element).

    Runs still observe and plan; the writes wait as pending updates with the
    reason, until `provgit resume`. Kept in the journal: survives restarts.
    """
    if not reason.strip():
        raise click.UsageError("--reason must say why (it is shown in the status)")
    sdir = state_dir_for(path, state_dir)
    check_element(path, sdir, element)
    journal = open_journal(sdir)
    try:
        s = journal.suspend(element or NETWORK, reason.strip(), who(), time.time())
    finally:
        journal.close()
    if fmt == "json":
        click.echo(json.dumps(s.to_json(), indent=1))
    else:
        click.echo(f"{element or 'network'}: {s.describe()}")
    return exitcodes.OK
