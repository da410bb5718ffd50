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
from provgit.api import Config, DistributionError, NothingToDo, Reapplied, retry_choice
from provgit.cli import applying
from provgit.cli.common import api_errors, state_dir_option
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


# Action ids are SQLite integers; anything else is a usage error, not a crash.
ERROR_ID = click.IntRange(1, 2**63 - 1)


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
@api_errors
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
    found = Config.at(config, state_dir).distribution_errors(element, form, error_type)
    errors, pending, queued, alarm = found.errors, found.pending_count, found.pending, found.alarm
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


def _show_reapplied(done: Reapplied) -> int:
    """What a retry or force did, record by record."""
    for element, (why, errs) in done.not_retried.items():
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
    if done.not_retried:
        click.echo(
            "A retry plans the whole element again: apply or reconcile the config "
            "(with the flag named, if intended), or change it, then retry.",
            err=True,
        )
    result = done.result
    ids = done.ids
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
    return done.exit_code


@command.command("retry")
@click.argument("ids", nargs=-1, type=ERROR_ID)
@click.option("--all", "all_", is_flag=True, help="Retry every distribution error.")
@config_option
@state_dir_option
@api_errors
def retry(ids: tuple[int, ...], all_: bool, config: Path, state_dir: str | None) -> int:
    """Retry distribution errors: plan those records again from the config and the
    elements as they are now, and apply just them.

    Conflicts (a record changed by another user) are not overwritten by a
    retry; use `provgit errors force ID` for that, or change the config.
    """
    cfg = Config.at(config, state_dir)
    chosen, conflicts = retry_choice(cfg.select_errors(ids, all_))
    applying.warn(conflicts)
    if not chosen:
        if not all_:
            return exitcodes.REFUSED
        click.echo("Nothing to retry.")
        return exitcodes.OK
    with applying.progress_for("text") as progress:
        done = aio.run(cfg.retry(chosen, progress))
    return _show_reapplied(done)


@command.command("force")
@click.argument("ids", nargs=-1, type=ERROR_ID, required=True)
@config_option
@state_dir_option
@api_errors
def force(ids: tuple[int, ...], config: Path, state_dir: str | None) -> int:
    """Overwrite conflicts with the config's value (the other user's change is lost).

    Only conflicts (a record another user changed or removed): other errors are
    refused with nothing done; `provgit errors retry` is for those.
    """
    cfg = Config.at(config, state_dir)
    chosen = cfg.select_errors(ids, False)
    try:
        with applying.progress_for("text") as progress:
            done = aio.run(cfg.force(chosen, progress))
    except NothingToDo as e:
        applying.warn(e.skipped)
        click.echo(str(e), err=True)
        return exitcodes.INVALID
    return _show_reapplied(done)


@command.command("delete")
@click.argument("ids", nargs=-1, type=ERROR_ID)
@click.option("--all", "all_", is_flag=True, help="Delete every distribution error.")
@click.option("--yes", is_flag=True, help="With --all: do not ask (needed without a terminal).")
@config_option
@state_dir_option
@api_errors
def delete(ids: tuple[int, ...], all_: bool, yes: bool, config: Path, state_dir: str | None) -> int:
    """Delete distribution errors (IDS, or --all). The records are tried again by
    the next reconcile."""
    cfg = Config.at(config, state_dir)
    chosen = cfg.select_errors(ids, all_)
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
    deleted = cfg.delete_errors(chosen)
    n, left, alarm = deleted.deleted, deleted.left, deleted.alarm
    click.echo(f"{n} distribution error(s) deleted, {left} left")
    if not deleted.settings_read:
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
