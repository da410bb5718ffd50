"""`provgit list [KIND]`: what provgit manages, like `terraform state list`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from provgit import exitcodes
from provgit.cli.common import load_valid, read_source, state_dir_for, state_dir_option
from provgit.diagnostics import SHORT_KINDS
from provgit.model.kinds import KINDS, resolve_kind
from provgit.projection.project import project
from provgit.secrets import Fingerprinter


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
        chosen = resolve_kind(kind)
        if chosen is None:
            raise click.UsageError(f"unknown kind {kind!r}; kinds: {', '.join(KINDS)}")
    source = read_source(path)
    state = load_valid(source, state_dir_for(path, state_dir) / "cache").state
    kinds = (
        [chosen] if chosen is not None else [k for k in KINDS.values() if k.plural != "elements"]
    )
    rows: list[dict[str, Any]] = []
    if chosen is not None and chosen.plural == "elements":
        for name, el in state.elements.items():
            rows.append(
                {
                    "kind": "elements",
                    "key": name,
                    "address": f"elements/{name}",
                    "type": el.type,
                    "elements": [],
                }
            )
    else:
        # One projection of the whole config (no secret resolved): where each record lands.
        target = project(state, Fingerprinter(None, False), source.read_other)
        lands: dict[tuple[str, str], list[str]] = {}
        for element, records in target.records.items():
            for collection, keyed in records.items():
                for key in keyed:
                    where = lands.setdefault(target.resource_of(element, collection, key), [])
                    if element not in where:
                        where.append(element)
        for k in kinds:
            short = SHORT_KINDS.get(k.plural, k.plural)
            for key in state.of(k.plural):
                rows.append(
                    {
                        "kind": k.plural,
                        "key": key,
                        "address": f"{short}/{key}",
                        "elements": lands.get((k.plural, key), []),
                    }
                )
    if fmt == "json":
        click.echo(json.dumps({"network": state.settings.network, "resources": rows}, indent=1))
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
