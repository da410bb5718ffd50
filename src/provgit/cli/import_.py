"""`provgit import`: adopt an existing network (the Reconcile wizard), or capture drift."""

from __future__ import annotations

from pathlib import Path

import click

from provgit import aio
from provgit.api import Config, ImportReport
from provgit.cli.common import api_errors, invalid_shown_as, state_dir_option

FORMATS = ["text", "json", "markdown"]


def _emit(done: ImportReport, fmt: str) -> None:
    if fmt == "json":
        click.echo(done.json(), nl=False)
    elif fmt == "markdown":
        click.echo(done.markdown(), nl=False)
    else:
        click.echo(done.text(), nl=False)


@click.command("import")
@click.option("--element", "elements", multiple=True, help="Only read this element (repeatable).")
@click.option(
    "--into",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="The config root to write into (it names the elements to read).",
)
@click.option("--dry-run", is_flag=True, help="Analyse and report only; write no YAML.")
@click.option(
    "--prefer-element",
    is_flag=True,
    help="Where an element disagrees with existing YAML, take the element's side.",
)
@click.option(
    "--report-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to write the report (markdown and JSON; default: STATE_DIR/import).",
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option(
    "--drift",
    is_flag=True,
    help="Capture out-of-band changes on the elements as a commit on a new git branch; "
    "the working tree and current branch are left as they are.",
)
@click.option("--branch", default=None, help="Branch for --drift (default provgit/drift-<time>).")
@state_dir_option
@api_errors
def command(
    elements: tuple[str, ...],
    into: Path,
    dry_run: bool,
    prefer_element: bool,
    report_dir: Path | None,
    fmt: str,
    drift: bool,
    branch: str | None,
    state_dir: str | None,
) -> int:
    """Read the network elements and write what they hold into the config as YAML.

    Pairs what the elements hold as the Reconcile wizard does (users by DN,
    then by login id and email; the rest by name or number) and classifies
    every change: Automatic, For Review (the elements disagree, or disagree
    with existing YAML: the rule in force chooses, the report shows both
    sides) or Unresolved (not written). Secrets are never read: placeholders
    like {env: VOICEMAIL_PIN_JDOE} are written and listed to set.

    Exit codes: 0 everything written, 4 some items Unresolved (those not
    written), 1 invalid input.
    """
    if branch is not None and not drift:
        raise click.UsageError("--branch only goes with --drift")
    config = Config.at(into, state_dir)
    with invalid_shown_as("json" if fmt == "json" else "text"):
        if drift:
            done = aio.run(
                config.capture_drift(
                    elements, dry_run=dry_run, report_dir=report_dir, branch=branch
                )
            )
        else:
            done = aio.run(
                config.import_network(
                    elements, dry_run=dry_run, prefer_element=prefer_element, report_dir=report_dir
                )
            )
    _emit(done, fmt)
    for warning in done.warnings:
        click.echo(warning, err=True)
    if fmt == "text":
        if done.branch:
            click.echo(f"Branch {done.branch} holds the drift; open a pull request from it.")
        elif drift and not done.rendered:
            click.echo("No drift: the YAML already says what the elements hold.")
        click.echo(f"Report written to {done.report_dir}")
    return done.exit_code
