"""`provgit suspend` / `provgit resume`: hold or release writes, kept in the journal."""

from __future__ import annotations

import json
from pathlib import Path

import click

from provgit import exitcodes
from provgit.api import Config
from provgit.cli.common import api_errors, config_path_argument, state_dir_option


@click.command("suspend")
@config_path_argument
@click.option("--element", metavar="NAME", help="Only this element (default: the whole network).")
@click.option("--reason", required=True, help="Why (shown in the status and the feed).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@state_dir_option
@api_errors
def command(path: Path, element: str | None, reason: str, fmt: str, state_dir: str | None) -> int:
    """Suspend writes to the network at PATH (or one --element).

    Runs still observe and plan; the writes wait as pending updates with the
    reason, until `provgit resume`. Kept in the journal: survives restarts.
    """
    hold = Config.at(path, state_dir).suspend(reason, element)
    for warning in hold.warnings:
        click.echo(warning, err=True)
    s = hold.suspension
    assert s is not None  # a suspension is always set
    if fmt == "json":
        click.echo(json.dumps(s.to_json(), indent=1))
    else:
        click.echo(f"{element or 'network'}: {s.describe()}")
    return exitcodes.OK
