"""`provgit list [KIND]`: what provgit manages, like `terraform state list`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from provgit import exitcodes
from provgit.api import Config, kind_named, kind_names
from provgit.cli.common import api_errors, state_dir_option


@click.command("list")
@click.argument("kind", required=False, metavar="[KIND]")
@click.option(
    "-C",
    "--config",
    "path",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Config directory.",
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@state_dir_option
@api_errors
def command(kind: str | None, path: Path, fmt: str, state_dir: str | None) -> int:
    """List the resources provgit manages: every resource of the config (of KIND
    only, e.g. users or cos), one per line as `provgit show` takes it, with the
    elements it lands on.

    Read from the config alone, like `terraform state list` reads its state:
    no element is contacted. `provgit plan` says whether the elements hold
    them; `provgit show KIND/KEY` shows one in detail.
    """
    chosen = None
    if kind is not None:
        chosen = kind_named(kind)
        if chosen is None:
            raise click.UsageError(f"unknown kind {kind!r}; kinds: {', '.join(kind_names())}")
    found = Config.at(path, state_dir).resources(chosen)
    rows = found.rows
    if fmt == "json":
        click.echo(json.dumps({"network": found.network, "resources": rows}, indent=1))
        return exitcodes.OK
    if not rows:
        click.echo(
            f"no {chosen.plural if chosen else 'resources'} in the config at {path}", err=True
        )
        return exitcodes.OK
    width = max(len(r["address"]) for r in rows)
    for r in rows:
        shown: str = r.get("type") or ", ".join(r["elements"]) or "(lands on no element)"
        click.echo(f"{r['address']:<{width}}  {shown}")
    return exitcodes.OK
