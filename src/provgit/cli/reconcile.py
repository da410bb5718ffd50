"""`provgit reconcile`: observe, plan, apply and report in one run."""

from __future__ import annotations

from pathlib import Path

import click

from provgit import aio
from provgit.api import Config, PlanOptions
from provgit.cli import applying, keep_until_exit
from provgit.cli.common import (
    api_errors,
    config_path_argument,
    invalid_shown_as,
    state_dir_option,
)
from provgit.cli.plan import claim_option, full_read_option, plan_options


@click.command("reconcile")
@config_path_argument
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.option("--full", is_flag=True, help="List every problem (text output).")
@click.option(
    "--partial",
    is_flag=True,
    help="When some elements are refused (lock, threshold), apply the others.",
)
@click.option(
    "--overwrite-drift",
    is_flag=True,
    help="Write records changed outside provgit that drift mode report holds.",
)
@click.option(
    "--override-window",
    is_flag=True,
    help="Write even where a sync window or the call load holds changes "
    "(needs --reason; journaled).",
)
@click.option("--reason", help="Why the hold is overridden (recorded in the journal).")
@plan_options
@claim_option
@full_read_option
@state_dir_option
@api_errors
def command(
    path: Path,
    fmt: str,
    full: bool,
    partial: bool,
    overwrite_drift: bool,
    override_window: bool,
    reason: str | None,
    elements: tuple[str, ...],
    prune: bool,
    allow_mass_delete: bool,
    allow_mass_update: bool,
    claim: bool,
    full_read: bool,
    state_dir: str | None,
) -> int:
    """Bring every element in line with the config at PATH, and report.

    Observes each element, plans, applies and writes `status.json` to the
    reports directory. Records that could not be delivered are kept as
    pending updates and retried on the next run; refusals and conflicts
    become distribution errors (`provgit errors list`), held until retried.

    A record changed outside provgit since provgit wrote it is drift: with
    `drift.mode: report` it is held, not overwritten, until --overwrite-drift.
    An element that is down gets its writes kept as pending updates at once.
    Changes a sync window or the call load holds wait as pending updates;
    --override-window --reason TEXT writes them now (journaled as an event).

    Exit codes: 0 in sync, 1 invalid input, 3 refused for safety (nothing
    applied), 4 applied with errors, pending updates left (an element down or
    refusing the token) or drift held, 143 stopped by SIGTERM (journaled as
    interrupted).
    """
    override = applying.override_reason(override_window, reason)
    config = Config.at(path, state_dir)
    options = PlanOptions(prune, allow_mass_delete, allow_mass_update, elements, claim)
    with (
        invalid_shown_as("json" if fmt == "json" else "text"),
        applying.progress_for(fmt) as progress,
    ):
        applied = aio.run(
            config.reconcile(
                options,
                partial=partial,
                overwrite_drift=overwrite_drift,
                override_window=override,
                progress=progress,
                full_read=full_read,
            )
        )
    applying.warn(applied.warnings)
    applying.render(applied.result, fmt, full)
    if applied.status_file is not None and fmt == "text":
        click.echo(f"Status written to {applied.status_file}")
    keep_until_exit(config, applied)  # freed by the process's end (see `plan`)
    return applied.exit_code
