"""`provgit status`: the latest sync state from the journal, without contacting any element."""

from __future__ import annotations

from pathlib import Path

import click
import orjson

from provgit import exitcodes
from provgit.cli.applying import existing_journal
from provgit.cli.common import (
    config_path_argument,
    read_settings,
    read_source,
    state_dir_for,
    state_dir_option,
)
from provgit.compose import status_inputs
from provgit.model.kinds import KINDS, resolve_kind
from provgit.model.settings import Settings
from provgit.render import status_markdown, status_text
from provgit.report.document import build_document, filtered


def _settings(path: Path) -> tuple[str | None, int]:
    """Network name (the journal does not keep it) and markdown bound."""
    settings = read_settings(path)
    if settings is None:
        return None, Settings().reports.markdown_max_bytes
    return settings.network, settings.reports.markdown_max_bytes


@click.command("status")
@config_path_argument
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text")
@click.option("--element", "element", metavar="NAME", help="Only this element.")
@click.option("--kind", "kind", metavar="KIND", help="Only resources of this kind (e.g. users).")
@click.option(
    "--max-bytes",
    type=click.IntRange(min=1000),
    default=None,
    help="Bound of the markdown output (default: reports.markdown_max_bytes).",
)
@state_dir_option
def command(
    path: Path,
    fmt: str,
    element: str | None,
    kind: str | None,
    max_bytes: int | None,
    state_dir: str | None,
) -> int:
    """Show the sync status of the network at PATH, derived without contacting elements.

    Every resource of the config on every element it lands on is compared
    with the element's last observation and provgit's journal: Sync
    Completed, pending update, distribution error, drift, not yet applied,
    offline/stopped (IVR servers: "IVR services are stopped or the server is
    offline"), token refused, unknown (never observed). Per element status in
    the words of the element consoles, pending updates, distribution errors
    and the alarm level. --element keeps that element,
    its errors and pending updates; --kind keeps that kind's resources,
    errors and pending updates (and answers for them alone, not for the
    elements).

    Exit codes: 0 in sync (for what is shown), 1 invalid input or usage (or no
    run recorded yet, or a config that does not validate: the status shown is
    then the last valid config's), 4 distribution errors, pending updates or elements or
    resources not completed remain.
    """
    sdir = state_dir_for(path, state_dir)
    kind_name: str | None = None
    if kind is not None:
        found = resolve_kind(kind)
        if found is None:
            raise click.UsageError(f"unknown kind {kind!r}; kinds: {', '.join(KINDS)}")
        kind_name = found.plural
    journal = existing_journal(path, sdir)
    try:
        network, bound = _settings(path)
        # The config as it is now: a change not applied yet shows as such.
        now = status_inputs(read_source(path), sdir, sdir / "cache")
        doc = build_document(
            journal,
            network=network,
            state=now.state if now else None,
            target=now.target if now else None,
            state_dir=sdir,
        )
        if element is not None and element not in doc["elements"]:
            known = ", ".join(doc["elements"]) or "none yet"
            raise click.UsageError(f"no status for element {element!r}; known: {known}")
    finally:
        journal.close()
    doc = filtered(doc, element=element, kind=kind_name)
    invalid = now.problems if now is not None else 0
    if invalid:
        # A CI gate asking "is what is in git in sync?" must not hear yes.
        click.echo(
            f"warning: the config at {path} does not validate ({invalid} problem(s); "
            f"`provgit validate {path}` lists them): this is the status of the last valid "
            "config, and the config as it is now cannot be applied",
            err=True,
        )
    if fmt == "json":
        # orjson: the pure-Python indenting encoder took 0.4 s on 100,000 users.
        click.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
    elif fmt == "markdown":
        click.echo(status_markdown.render(doc, max_bytes or bound), nl=False)
    else:
        click.echo(status_text.render(doc), nl=False)
    if invalid:
        return exitcodes.INVALID
    return exitcodes.OK if doc["in_sync"] else exitcodes.APPLIED_WITH_ERRORS
