"""`provgit show KIND/KEY`: where one resource lands and which of its data is shared;
`provgit show PLAN_FILE`: what a saved plan would do."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table
from rich.text import Text

from provgit import exitcodes
from provgit.api import Config, inspect_saved_plan, kind_named, kind_names
from provgit.cli.common import api_errors, console, state_dir_option
from provgit.render import plan_text
from provgit.render.values import short


@click.command("show")
@click.argument("resource", metavar="KIND/KEY|PLAN_FILE")
@click.argument(
    "path", type=click.Path(file_okay=False, path_type=Path), default=None, required=False
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.option("--full", is_flag=True, help="Show every operation of a saved plan (text output).")
@state_dir_option
@api_errors
def command(resource: str, path: Path | None, fmt: str, full: bool, state_dir: str | None) -> int:
    """Show where a resource lands, or what a saved plan would do.

    KIND/KEY (e.g. users/jdoe or cos/7): every element and record the
    resource becomes, the fields shared to several elements, and links to each
    element's admin form (config at PATH, default the current directory).

    PLAN_FILE (an existing file, from `provgit plan --out`): the plan as
    `provgit plan` showed it, or its JSON with --format json, and whether its
    signature holds under the key of the config it names (or PATH). Nothing
    is contacted or changed; `provgit apply PLAN_FILE` checks everything again.
    """
    if Path(resource).is_file():
        return show_plan(Path(resource), path, fmt, full, state_dir)
    path = path or Path(".")
    kind_name, sep, key = resource.partition("/")
    kind = kind_named(kind_name)
    if not sep or kind is None:
        raise click.UsageError(
            f"expected KIND/KEY (e.g. users/jdoe; kinds: {', '.join(kind_names())}) "
            f"or a plan file ({resource!r} is not a file)"
        )
    found = Config.at(path, state_dir).landings(kind, key)
    key, rows, shared = found.key, found.rows, found.shared_fields
    if fmt == "json":
        click.echo(
            json.dumps(
                {
                    "kind": kind.plural,
                    "key": key,
                    "defined_in": found.defined_in,
                    "shared_fields": shared,
                    "landings": rows,
                },
                indent=2,
                default=str,
            )
        )
        return exitcodes.OK
    out = console()
    defined_in = found.defined_in if found.defined_in is not None else "?"
    out.print(Text(f"{kind.singular} {key}", style="bold"), f" (defined in {defined_in})")
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


def show_plan(
    plan_file: Path, config: Path | None, fmt: str, full: bool, state_dir: str | None
) -> int:
    """A saved plan, as `provgit plan` showed it (like `terraform show plan.out`)."""
    seen = inspect_saved_plan(plan_file, config, state_dir)
    if fmt == "json":
        # The file as saved (the signature included), pretty-printed, with the check.
        click.echo(json.dumps({**seen.document, "signature_check": seen.signature}, indent=1))
        return exitcodes.OK
    out = console()
    out.print(f"Saved plan {plan_file}", highlight=False)
    out.print(seen.signature, highlight=False, soft_wrap=True)
    plan_text.render(seen.plan, out, None if full else 200)
    return exitcodes.OK
