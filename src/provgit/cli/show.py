"""`provgit show KIND/KEY`: where one resource lands and which of its data is shared."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from provgit import exitcodes
from provgit.cli.common import console, load_valid, read_source, state_dir_for, state_dir_option
from provgit.model.kinds import KINDS, resolve_kind
from provgit.records import form_name
from provgit.render.values import reach_through, short
from provgit.secrets import Fingerprinter
from provgit.target.project import landings, shared_fields


@click.command("show")
@click.argument("resource")
@click.argument(
    "path", type=click.Path(file_okay=False, path_type=Path), default=".", required=False
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@state_dir_option
def command(resource: str, path: Path, fmt: str, state_dir: str | None) -> int:
    """Show where RESOURCE (KIND/KEY, e.g. users/jdoe or cos/7) lands.

    Lists every element and record the resource becomes, marks the fields
    shared to several elements, and links to each element's admin form.
    """
    kind_name, sep, key = resource.partition("/")
    kind = resolve_kind(kind_name)
    if not sep or kind is None:
        raise click.UsageError(f"expected KIND/KEY, e.g. users/jdoe; kinds: {', '.join(KINDS)}")
    source = read_source(path)
    valid = load_valid(source, state_dir_for(path, state_dir) / "cache")
    state = valid.state
    records = state.of(kind.plural)
    if key not in records:
        folded = {k.casefold(): k for k in records}
        if key.casefold() in folded:
            key = folded[key.casefold()]
        else:
            raise click.UsageError(f"no {kind.singular} {key!r} in the config at {path}")
    lands = landings(state, kind.plural, key, Fingerprinter(None, False), source.read_other)
    shared = shared_fields(lands)
    rows = []
    for land in lands:
        el = state.elements[land.element]
        form = form_name(el.type, land.collection)
        rows.append(
            {
                "element": land.element,
                "element_type": el.type,
                "collection": land.collection,
                "form": form,
                "key": land.key,
                "link": reach_through(
                    el.reach_through, land.element, form, land.collection, land.key
                ),
                "fields": {k: v for k, v in land.fields.items() if not k.startswith("_")},
            }
        )
    origin = state.origins.get((kind.plural, key))
    if fmt == "json":
        click.echo(
            json.dumps(
                {
                    "kind": kind.plural,
                    "key": key,
                    "defined_in": origin.file if origin else None,
                    "shared_fields": shared,
                    "landings": rows,
                },
                indent=2,
                default=str,
            )
        )
        return exitcodes.OK
    out = console()
    out.print(f"[bold]{kind.singular} {key}[/bold]  (defined in {origin.file if origin else '?'})")
    if not rows:
        out.print("lands on no element (excluded from sharing, or no element of its type)")
        return exitcodes.OK
    table = Table("element", "form", "record", show_lines=False)
    for r in rows:
        table.add_row(
            f"{r['element']} ({r['element_type']})",
            str(r["form"]),
            f"{r['collection']}/{r['key']}",
        )
    out.print(table)
    # Links in full, one per line, so a terminal can open them.
    for r in rows:
        if r["link"]:
            out.print(f"  {r['element']}: {r['link']}", soft_wrap=True, highlight=False)
    if shared:
        out.print(f"shared to several elements (⇄): {', '.join(shared)}")
    for r in rows:
        fields = r["fields"]
        assert isinstance(fields, dict)
        body = ", ".join(
            f"{'⇄ ' if f in shared else ''}{f}={short(v, 40)}" for f, v in fields.items()
        )
        out.print(f"  {r['element']} {r['collection']}/{r['key']}: {body}", soft_wrap=True)
    return exitcodes.OK
