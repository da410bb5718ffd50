"""`provgit errors`: SDS distribution errors — list, retry, force, delete."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from provgit import aio, exitcodes
from provgit.apply import ApplyOptions, standing
from provgit.cli import applying
from provgit.cli.common import read_settings, state_dir_for, state_dir_option
from provgit.cli.plan import make_plan
from provgit.journal import DistributionError, Journal
from provgit.plan import PlanOptions
from provgit.records import form_name_of

CSV_COLUMNS = [
    "action_id",
    "element",
    "time",
    "last_retried",
    "action",
    "form",
    "key",
    "error_type",
    "reason",
    "status",
    "detail",
]

config_option = click.option(
    "-C",
    "--config",
    "config",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Config directory (its state dir holds the journal).",
)


@click.group("errors")
def command() -> None:
    """Distribution errors: records an element refused, or that another user changed.

    They stay until retried (`retry`), overwritten (`force`, for conflicts) or
    deleted (`delete`). Alarms are raised on their count (warning above 0,
    minor above 100, major above 1000 by default; `alarms` in provgit.yaml).
    """


# Error types that mean "another user changed the record": only these are forced.
CONFLICTS = ("conflict", "not_found")

# Action ids are SQLite integers; anything else is a usage error, not a crash.
ERROR_ID = click.IntRange(1, 2**63 - 1)


def _journal(config: Path, state_dir: str | None) -> Journal:
    return applying.existing_journal(config, state_dir_for(config, state_dir))


def _csv(errors: Sequence[DistributionError]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for e in errors:
        row = e.to_json()
        row["detail"] = json.dumps(row["detail"], sort_keys=True)
        writer.writerow(row)
    return buf.getvalue()


def _text_row(e: DistributionError) -> str:
    d = e.to_json()
    return (
        f"{e.id:>6}  {e.element:<12} {d['time']}  {d['last_retried']}  {e.action:<6}  "
        f"{e.form:<22} {e.key:<20} {e.error_type:<10} {e.status:<13} {e.reason}"
    )


PENDING_SHOWN = 20
TEXT_HEADER = (
    f"{'ID':>6}  {'ELEMENT':<12} {'TIME':<20}  {'LAST RETRIED':<20}  {'ACTION':<6}  "
    f"{'FORM':<22} {'KEY':<20} {'TYPE':<10} {'STATUS':<13} REASON"
)


@command.command("list")
@click.option("--element", help="Only errors of this destination element.")
@click.option("--form", help="Only errors of this form (e.g. 'Class of Service Options').")
@click.option("--type", "error_type", help="Only this error type (refused, conflict, …).")
@click.option("--group-by", type=click.Choice(["form"]), help="Group the errors by form.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "csv"]), default="text")
@config_option
@state_dir_option
def list_(
    element: str | None,
    form: str | None,
    error_type: str | None,
    group_by: str | None,
    fmt: str,
    config: Path,
    state_dir: str | None,
) -> int:
    """List distribution errors (exit 0 even when there are some)."""
    with _journal(config, state_dir) as journal:
        if element is not None:
            _check_element(journal, element)
        errors = journal.distribution_errors(element=element, form=form, error_type=error_type)
        pending = journal.pending_count()
        # SDS shows pending updates beside the errors: writes kept for an
        # element that is down, locked or refusing the token, retried on schedule.
        queued = journal.pending(element)
        alarm = journal.alarm_level()
    if group_by == "form":
        errors = sorted(errors, key=lambda e: (e.form, e.id))
    if fmt == "csv":
        click.echo(_csv(errors), nl=False)
        return exitcodes.OK
    if fmt == "json":
        body: dict[str, Any] = {
            "alarm": alarm,
            "pending_updates": pending,
            "count": len(errors),
            "pending": [p.to_json() for p in queued],
        }
        if group_by == "form":
            groups: dict[str, list[dict[str, Any]]] = {}
            for e in errors:
                groups.setdefault(e.form, []).append(e.to_json())
            body["by_form"] = groups
        else:
            body["errors"] = [e.to_json() for e in errors]
        click.echo(json.dumps(body, indent=1))
        return exitcodes.OK
    if not errors:
        click.echo("No distribution errors.")
    elif group_by == "form":
        current = None
        for e in errors:
            if e.form != current:
                current = e.form
                n = sum(1 for x in errors if x.form == current)
                click.echo(f"\n{current} ({n})")
                click.echo(TEXT_HEADER)
            click.echo(_text_row(e))
    else:
        click.echo(TEXT_HEADER)
        for e in errors:
            click.echo(_text_row(e))
    if queued:
        click.echo(f"\nPending updates ({len(queued)}), retried on schedule:")
        for p in queued[:PENDING_SHOWN]:
            d = p.to_json()
            # The form as SDS names it ("Class of Service Options: 7", not "cos/7")
            # where the collection alone says which (the journal has no element types).
            form = form_name_of(p.collection)
            what = f"{p.collection}/{p.key}" if form == p.collection else f"{form}: {p.key}"
            click.echo(
                f"  {p.element:<12} {p.action:<6} {what}  attempts {p.attempts}, "
                f"next retry {d['next_retry']}: {p.last_error}"
            )
        if len(queued) > PENDING_SHOWN:
            click.echo(f"  … and {len(queued) - PENDING_SHOWN} more (--format json lists all)")
    tail = f"{len(errors)} distribution error(s), {pending} pending update(s)"
    if alarm:
        tail += f"; {alarm} data distribution alarm"
    click.echo(tail)
    return exitcodes.OK


def _check_element(journal: Journal, element: str) -> None:
    """A mistyped element is a usage error, not "no distribution errors"."""
    known = set(journal.element_statuses())
    known.update(e.element for e in journal.distribution_errors())
    known.update(p.element for p in journal.pending())
    if element not in known:
        listed = ", ".join(sorted(known)) or "none recorded yet"
        raise click.UsageError(f"no element {element} (known: {listed})")


def _select(journal: Journal, ids: Sequence[int], all_: bool) -> list[DistributionError]:
    if all_ and ids:
        raise click.UsageError("give IDS or --all, not both")
    if not all_ and not ids:
        raise click.UsageError(
            "give the action ids to act on (see `provgit errors list`), or --all"
        )
    if all_:
        return journal.distribution_errors()
    found = journal.distribution_errors(ids=list(ids))
    missing = sorted(set(ids) - {e.id for e in found})
    if missing:
        raise click.UsageError(
            f"no distribution error with id {', '.join(map(str, missing))} "
            "(see `provgit errors list`)"
        )
    return found


def _reapply(
    config: Path, state_dir: str | None, chosen: list[DistributionError], command_name: str
) -> int:
    """Plan the chosen records again from the config and the elements now, and apply just them."""
    sdir = state_dir_for(config, state_dir)
    keys = frozenset((e.element, e.collection, e.key) for e in chosen)
    with applying.open_journal(sdir) as journal:
        journal.set_distribution_error_status([e.id for e in chosen], "retry pending")
    elements = tuple(sorted({e.element for e in chosen}))
    run = aio.run(make_plan(config, sdir, PlanOptions(elements=elements)))
    options = ApplyOptions(
        command=command_name, check_stale=False, only=keys, release=keys, fresh=False
    )
    with applying.open_journal(sdir) as journal:
        result = aio.run(
            applying.execute_with_progress(
                run.plan, run.state, config, sdir, journal, options, "text"
            )
        )
    ids = {(e.element, e.collection, e.key): e.id for e in chosen}
    refused = {ep.element: ep.refusal for ep in result.elements if ep.refusal}
    if result.refusal is not None or refused:
        # Not retried: said so, and the errors go back to idle (a "retry
        # pending" that nothing will ever retry would hide them).
        not_retried = [e for e in chosen if result.refusal is not None or e.element in refused]
        with applying.open_journal(sdir) as journal:
            journal.set_distribution_error_status([e.id for e in not_retried], "idle")
        by_element: dict[str, list[DistributionError]] = {}
        for e in not_retried:
            by_element.setdefault(e.element, []).append(e)
        for element, errs in by_element.items():
            why = refused.get(element) or result.refusal
            # One line per error when few; thousands stuck behind one threshold: one line.
            if len(errs) <= PENDING_SHOWN:
                for e in errs:
                    click.echo(
                        f"{e.id}: {e.element} {e.collection}/{e.key} not retried: {why}", err=True
                    )
            else:
                click.echo(
                    f"{len(errs)} distribution error(s) on {element} not retried: {why}", err=True
                )
        click.echo(
            "A retry plans the whole element again: apply or reconcile the config "
            "(with the flag named, if intended), or change it, then retry.",
            err=True,
        )
    for ref in result.settled:
        element, collection, key = ref
        click.echo(f"{ids[ref]}: {element} {collection}/{key} is already in sync; cleared")
    for ep in result.elements:
        for op in ep.operations:
            line = f"{ep.element} {op.action} {op.collection}/{op.key}: "
            if op.status == "ok":
                click.echo(line + "applied")
            else:
                click.echo(line + f"{op.status}: {op.message or ''}")
    left = result.distribution_errors
    click.echo(f"{left} distribution error(s) left, {result.pending_updates} pending update(s)")
    return result.exit_code()


@command.command("retry")
@click.argument("ids", nargs=-1, type=ERROR_ID)
@click.option("--all", "all_", is_flag=True, help="Retry every distribution error.")
@config_option
@state_dir_option
def retry(ids: tuple[int, ...], all_: bool, config: Path, state_dir: str | None) -> int:
    """Retry distribution errors: plan those records again from the config and the
    elements as they are now, and apply just them.

    Conflicts (a record changed by another user) are not overwritten by a
    retry; use `provgit errors force ID` for that, or change the config.
    """
    with _journal(config, state_dir) as journal:
        chosen = _select(journal, ids, all_)
    conflicts = [e for e in chosen if e.error_type in CONFLICTS]
    for e in conflicts:
        click.echo(
            f"{e.id}: {e.element} {e.collection}/{e.key} was changed by another user; "
            f"not overwritten (provgit errors force {e.id} to overwrite it)",
            err=True,
        )
    chosen = [e for e in chosen if e not in conflicts]
    if not chosen:
        if not all_:
            return exitcodes.REFUSED
        click.echo("Nothing to retry.")
        return exitcodes.OK
    return _reapply(config, state_dir, chosen, "errors retry")


@command.command("force")
@click.argument("ids", nargs=-1, type=ERROR_ID, required=True)
@config_option
@state_dir_option
def force(ids: tuple[int, ...], config: Path, state_dir: str | None) -> int:
    """Overwrite conflicts with the config's value (the other user's change is lost).

    Only conflicts (a record another user changed or removed): other errors are
    refused with nothing done; `provgit errors retry` is for those.
    """
    with _journal(config, state_dir) as journal:
        chosen = _select(journal, ids, False)
    others = [e for e in chosen if e.error_type not in CONFLICTS]
    if others:
        for e in others:
            click.echo(
                f"{e.id}: {e.element} {e.collection}/{e.key} is not a conflict "
                f"({e.error_type}: {e.reason}); force only overwrites another user's change. "
                f"Use `provgit errors retry {e.id}` (after fixing the config if the element "
                "refused it)",
                err=True,
            )
        click.echo("Nothing was forced.", err=True)
        return exitcodes.INVALID
    return _reapply(config, state_dir, chosen, "errors force")


@command.command("delete")
@click.argument("ids", nargs=-1, type=ERROR_ID)
@click.option("--all", "all_", is_flag=True, help="Delete every distribution error.")
@click.option("--yes", is_flag=True, help="With --all: do not ask (needed without a terminal).")
@config_option
@state_dir_option
def delete(ids: tuple[int, ...], all_: bool, yes: bool, config: Path, state_dir: str | None) -> int:
    """Delete distribution errors (IDS, or --all). The records are tried again by
    the next reconcile."""
    settings = read_settings(config)
    with _journal(config, state_dir) as journal:
        chosen = _select(journal, ids, all_)
        if all_ and chosen and not yes:
            if not applying.stdin_is_tty():
                click.echo(
                    f"error: --all deletes {len(chosen)} distribution error(s); no terminal "
                    "to confirm on: pass --yes",
                    err=True,
                )
                return exitcodes.INVALID
            if not click.confirm(
                f"Delete all {len(chosen)} distribution error(s)?", default=False, err=True
            ):
                click.echo("Nothing deleted.", err=True)
                return exitcodes.OK
        n = journal.delete_distribution_errors([e.id for e in chosen])
        left = journal.distribution_error_count()
        # The alarm follows the count now, not at the next run.
        alarm = journal.alarm_level()
        if settings is not None:
            alarm = standing.update_alarm(journal, settings.alarms)
    click.echo(f"{n} distribution error(s) deleted, {left} left")
    if settings is None:
        click.echo(
            f"{config / 'provgit.yaml'} could not be read: the alarm is recomputed by the "
            "next run (provgit validate says what is wrong)",
            err=True,
        )
    elif alarm:
        click.echo(f"{alarm} data distribution alarm")
    else:
        click.echo("no data distribution alarm")
    return exitcodes.OK
