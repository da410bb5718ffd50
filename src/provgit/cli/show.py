"""`provgit show KIND/KEY`: where one resource lands and which of its data is shared;
`provgit show PLAN_FILE`: what a saved plan would do."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from provgit import exitcodes
from provgit.cli.common import (
    console,
    load_valid,
    read_settings,
    read_source,
    state_dir_for,
    state_dir_option,
)
from provgit.model.kinds import KINDS, resolve_kind
from provgit.plan import Plan, PlanFormatError, signing
from provgit.plan.signing import PlanSignatureError
from provgit.projection.project import landings, shared_fields
from provgit.records import form_name
from provgit.render import plan_text
from provgit.render.values import short
from provgit.report.links import reach_through
from provgit.secrets import Fingerprinter


@click.command("show")
@click.argument("resource", metavar="KIND/KEY|PLAN_FILE")
@click.argument(
    "path", type=click.Path(file_okay=False, path_type=Path), default=None, required=False
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.option("--full", is_flag=True, help="Show every operation of a saved plan (text output).")
@state_dir_option
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
    kind = resolve_kind(kind_name)
    if not sep or kind is None:
        raise click.UsageError(
            f"expected KIND/KEY (e.g. users/jdoe; kinds: {', '.join(KINDS)}) "
            f"or a plan file ({resource!r} is not a file)"
        )
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


def _signature_note(
    text: str, doc: dict[str, object], config: Path | None, state_dir: str | None
) -> str:
    """Whether the plan's signature holds, in one sentence (never a reason to refuse:
    showing a plan is harmless, applying it checks again)."""
    signature = doc.get(signing.SIGNATURE)
    if not isinstance(signature, dict):
        return "signature: none (apply refuses an unsigned plan)"
    if config is None:
        named = doc.get("source")
        config = Path(named) if isinstance(named, str) else None
    settings = read_settings(config) if config is not None else None
    if config is None or settings is None:
        return (
            "signature: not checked (no readable config at "
            f"{str(config) if config else 'the path the plan names'}; pass it as PATH)"
        )
    key = signing.plan_key(settings.secret_key, state_dir_for(config, state_dir), create=False)
    if isinstance(key, str):
        return f"signature: not checked: {key}"
    try:
        signing.verify(text, key)
    except PlanSignatureError as e:
        return f"signature: DOES NOT HOLD for the config at {config}: {e}"
    except PlanFormatError as e:
        return f"signature: not checked: {e}"
    return f"signature: holds under the key of the config at {config}"


def show_plan(
    plan_file: Path, config: Path | None, fmt: str, full: bool, state_dir: str | None
) -> int:
    """A saved plan, as `provgit plan` showed it (like `terraform show plan.out`)."""
    try:
        text = plan_file.read_text(encoding="utf-8")
        doc = json.loads(text)
    except OSError as e:
        raise click.UsageError(f"cannot read the plan {plan_file}: {e.strerror or e}") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise click.UsageError(
            f"{plan_file} is not a provgit plan (not JSON); give KIND/KEY or a file "
            "from `provgit plan --out`"
        ) from None
    body = (
        {k: v for k, v in doc.items() if k != signing.SIGNATURE} if isinstance(doc, dict) else doc
    )
    try:
        plan = Plan.from_json(body)
    except PlanFormatError as e:
        raise click.UsageError(f"{plan_file}: {e}") from None
    note = _signature_note(text, doc, config, state_dir)
    if fmt == "json":
        # The file as saved (the signature included), pretty-printed, with the check.
        click.echo(json.dumps({**doc, "signature_check": note}, indent=1))
        return exitcodes.OK
    out = console()
    out.print(f"Saved plan {plan_file}", highlight=False)
    out.print(note, highlight=False, soft_wrap=True)
    plan_text.render(plan, out, None if full else 200)
    return exitcodes.OK
