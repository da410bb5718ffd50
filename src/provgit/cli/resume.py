"""`provgit resume`: lift a suspension; the held work goes out on the next run."""

from __future__ import annotations

from pathlib import Path

import click

from provgit import exitcodes
from provgit.cli.applying import open_journal
from provgit.cli.common import config_path_argument, state_dir_for, state_dir_option
from provgit.cli.suspend import check_element, who
from provgit.journal import NETWORK


@click.command("resume")
@config_path_argument
@click.option("--element", metavar="NAME", help="Only this element (default: the network).")
@state_dir_option
def command(path: Path, element: str | None, state_dir: str | None) -> int:
    """Resume writes to the network at PATH (or one --element)."""
    sdir = state_dir_for(path, state_dir)
    check_element(path, sdir, element)
    journal = open_journal(sdir)
    try:
        s = journal.resume(element or NETWORK, who())
    finally:
        journal.close()
    name = element or "network"
    if s is None:
        click.echo(f"{name} was not suspended")
        return exitcodes.OK
    click.echo(f"{name}: resumed; held changes go out on the next run")
    return exitcodes.OK
