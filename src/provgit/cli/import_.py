"""`provgit import`: adopt an existing network (the Reconcile wizard), or capture drift."""

from __future__ import annotations

import time
from pathlib import Path

import click

from provgit import aio, exitcodes
from provgit.apply import drift_detect as drift_items
from provgit.cli.common import load_valid, read_source, state_dir_for, state_dir_option
from provgit.compose import connect, observe_network
from provgit.fsutil import atomic_write
from provgit.importing import drift_branch as drift_git
from provgit.importing import report
from provgit.importing.analysis import Analysis, Options, analyse
from provgit.importing.writer import WriteError, check, commit, render
from provgit.journal import FILENAME as JOURNAL_FILE
from provgit.journal import Journal, JournalError
from provgit.model.state import DesiredState
from provgit.observe import Observation
from provgit.source import ConfigSource

FORMATS = ["text", "json", "markdown"]


async def _observe(
    state: DesiredState, config_root: Path, state_dir: Path, only: tuple[str, ...]
) -> dict[str, Observation]:
    network = connect(state, state_dir, config_root, only)
    try:
        return await observe_network(network, state_dir)
    finally:
        await network.close()


def _read(
    config_root: Path, elements_root: Path, state_dir: Path, only: tuple[str, ...], fmt: str
) -> tuple[ConfigSource, DesiredState, dict[str, Observation]]:
    source = read_source(config_root)
    state = load_valid(source, state_dir / "cache", "json" if fmt == "json" else "text").state
    if not state.elements:
        raise click.UsageError(
            f"the config at {config_root} defines no elements: import reads the elements "
            "the config names, so write provgit.yaml and the elements (e.g. "
            "network/elements.yaml) first"
        )
    unknown = [e for e in only if e not in state.elements]
    if unknown:
        raise click.UsageError(
            f"unknown element(s): {', '.join(unknown)} (known: {', '.join(state.elements)})"
        )
    observed = aio.run(_observe(state, elements_root, state_dir, only))
    down = {n: o for n, o in observed.items() if not o.ok}
    if down:
        detail = "; ".join(f"{n}: {o.error or o.state}" for n, o in down.items())
        raise click.ClickException(
            f"cannot read {', '.join(down)} ({detail}); nothing was written. "
            "Import from the others with --element NAME."
        )
    return source, state, observed


def _header(observed: dict[str, Observation]) -> str:
    when = time.strftime("%Y-%m-%d", time.gmtime())
    return f"Imported by `provgit import` from {', '.join(observed)} on {when}."


def _emit(value: dict[str, object], fmt: str, max_bytes: int) -> None:
    if fmt == "json":
        click.echo(report.dumps(value), nl=False)
    elif fmt == "markdown":
        click.echo(report.markdown(value, max_bytes), nl=False)
    else:
        click.echo(report.text(value), nl=False)


def _save_report(value: dict[str, object], report_dir: Path, name: str, max_bytes: int) -> None:
    try:
        atomic_write(report_dir / f"{name}.json", report.dumps(value).encode())
        atomic_write(report_dir / f"{name}.md", report.markdown(value, max_bytes).encode())
    except OSError as e:
        raise click.ClickException(f"cannot write the report to {report_dir}: {e}") from e


def _exit(analysis: Analysis) -> int:
    return exitcodes.APPLIED_WITH_ERRORS if analysis.by_category("unresolved") else exitcodes.OK


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
    sdir = state_dir_for(into, state_dir)
    rdir = report_dir or sdir / "import"
    if drift:
        return _drift(
            into, sdir, rdir, elements, dry_run, fmt, branch or drift_git.default_branch()
        )
    source, state, observed = _read(into, into, sdir, elements, fmt)
    analysis = analyse(state, source, observed, Options(prefer_element=prefer_element))
    files: list[str] = []
    try:
        rendered = render(into, state, analysis.items, _header(observed))
    except WriteError as e:
        raise click.ClickException(f"{e}; nothing was written") from e
    refused = _refused(source, rendered)
    if not dry_run and not refused:
        files = commit(into, rendered)
    max_bytes = state.settings.reports.markdown_max_bytes
    value = report.build(
        analysis, network=state.settings.network, files=files, dry_run=dry_run, refused=refused
    )
    _save_report(value, rdir, "import", max_bytes)
    _emit(value, fmt, max_bytes)
    if fmt == "text":
        click.echo(f"Report written to {rdir}")
    return exitcodes.APPLIED_WITH_ERRORS if refused else _exit(analysis)


def _refused(source: ConfigSource, rendered: dict[str, bytes]) -> list[str]:
    """Why the config as written would not validate (checked in memory first): then
    nothing is written."""
    return check(source, rendered) if rendered else []


def _drift(
    into: Path,
    sdir: Path,
    rdir: Path,
    elements: tuple[str, ...],
    dry_run: bool,
    fmt: str,
    branch: str,
) -> int:
    try:
        with drift_git.head_checkout(into, branch) as checkout:
            # The config as committed; elements (embedded files, state) as configured here.
            source, state, observed = _read(checkout.config_root, into, sdir, elements, fmt)
            analysis = analyse(state, source, observed, Options(prefer_element=True, drift=True))
            files: list[str] = []
            made: str | None = None
            rendered = render(checkout.config_root, state, analysis.items, _header(observed))
            refused = _refused(source, rendered)
            if rendered and not dry_run and not refused:
                files = commit(checkout.config_root, rendered)
                message = drift_git.commit_message(analysis)
                drift_git.commit_branch(checkout, files, message, branch)
                made = branch
    except (drift_git.DriftError, WriteError) as e:
        raise click.ClickException(str(e)) from e
    max_bytes = state.settings.reports.markdown_max_bytes
    value = report.build(
        analysis,
        network=state.settings.network,
        files=files,
        dry_run=dry_run,
        mode="drift",
        branch=made,
        refused=refused,
    )
    _save_report(value, rdir, "drift", max_bytes)
    _emit(value, fmt, max_bytes)
    if made and (sdir / JOURNAL_FILE).exists():
        # The drift items of these elements are now on the branch: no longer
        # open, still held until the branch is merged (or overwritten).
        try:
            with Journal.open(sdir) as journal:
                drift_items.capture(journal, drift_git.drifted_elements(analysis), made)
        except JournalError as e:
            click.echo(f"warning: drift items not marked as captured: {e}", err=True)
    if fmt == "text":
        if made:
            click.echo(f"Branch {made} holds the drift; open a pull request from it.")
        elif not rendered:
            click.echo("No drift: the YAML already says what the elements hold.")
        click.echo(f"Report written to {rdir}")
    return exitcodes.APPLIED_WITH_ERRORS if refused else _exit(analysis)
