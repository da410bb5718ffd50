"""`provgit version`: which provgit this is (the same as `provgit --version`)."""

from __future__ import annotations

import json
import platform

import click

from provgit import __version__, exitcodes
from provgit.api import PLAN_FORMAT


@click.command("version")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def command(fmt: str) -> int:
    """Print provgit's version (and, with --format json, the Python it runs on
    and the saved-plan format it reads and writes)."""
    if fmt == "json":
        doc = {
            "provgit": __version__,
            "python": platform.python_version(),
            "plan_format": PLAN_FORMAT,
        }
        click.echo(json.dumps(doc, indent=1))
    else:
        click.echo(f"provgit {__version__}")
    return exitcodes.OK
