"""`provgit resume`: lift a suspension; the held work goes out on the next run."""

from __future__ import annotations

from pathlib import Path

import click

from provgit import exitcodes
from provgit.api import Config
from provgit.cli.common import api_errors, config_path_argument, state_dir_option


@click.command("resume")
@config_path_argument
@click.option("--element", metavar="NAME", help="Only this element (default: the network).")
@state_dir_option
@api_errors
def command(path: Path, element: str | None, state_dir: str | None) -> int:
    """Resume writes to the network at PATH (or one --element)."""
    hold = Config.at(path, state_dir).resume(element)
    for warning in hold.warnings:
        click.echo(warning, err=True)
    name = element or "network"
    if hold.suspension is None:
        click.echo(f"{name} was not suspended")
        return exitcodes.OK
    click.echo(f"{name}: resumed; held changes go out on the next run")
    return exitcodes.OK
