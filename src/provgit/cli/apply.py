"""`provgit apply`: apply a saved plan, or plan a config and apply it."""

from __future__ import annotations

import json
from pathlib import Path

import click

from provgit import aio, exitcodes
from provgit.api import Config, PlanOptions, PlanRefused, PlanRun, open_saved_plan
from provgit.cli import applying
from provgit.cli.common import api_errors, invalid_shown_as, state_dir_option
from provgit.cli.plan import claim_option, emit, plan_options

# Refusals listed in text output (JSON lists them all).
MAX_SHOWN = 20


def _refuse(path: Path, problems: list[str], fmt: str) -> int:
    """A saved plan refused before anything was contacted or applied (exit 3)."""
    if fmt == "json":
        click.echo(json.dumps({"plan": str(path), "applied": False, "refused": problems}, indent=1))
    else:
        shown = problems[:MAX_SHOWN]
        for problem in shown:
            click.echo(f"refused: {path}: {problem}", err=True)
        if len(problems) > len(shown):
            more = len(problems) - len(shown)
            click.echo(f"… and {more} more (--format json shows all)", err=True)
        click.echo("Nothing was applied.", err=True)
    return exitcodes.REFUSED


def _planned(cfg: Config, options: PlanOptions, fmt: str) -> PlanRun:
    """Plan the config, showing the plan in text mode before asking."""
    with invalid_shown_as("json" if fmt == "json" else "text"):
        run = aio.run(cfg.plan(options))
    if fmt == "text":
        emit(run.plan, "text", False, run.settings.reports.markdown_max_bytes)
    return run


def _confirm(has_changes: bool, yes: bool) -> int | None:
    """None to go on; else the exit code (no terminal to ask on, or declined).
    The apply still checks that no element moved while a person read the plan."""
    if not has_changes or yes:
        return None
    if not applying.stdin_is_tty():
        click.echo("error: no terminal to confirm on; pass --yes to apply without asking", err=True)
        return exitcodes.INVALID
    if not click.confirm("Apply these changes?", default=False, err=True):
        click.echo("Nothing applied.", err=True)
        return exitcodes.OK
    return None


@click.command("apply")
@click.argument(
    "target",
    type=click.Path(path_type=Path),
    default=".",
    required=False,
    metavar="[PLAN_FILE|PATH]",
)
@click.option("--yes", is_flag=True, help="Apply without asking (needed without a terminal).")
@click.option(
    "--partial",
    is_flag=True,
    help="When some elements are refused (stale plan, lock, threshold), apply the others.",
)
@click.option(
    "--config",
    "config",
    type=click.Path(file_okay=False, path_type=Path),
    help=(
        "Config directory of a saved plan (default: the one it was made from, "
        "when that is in the current directory)."
    ),
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
@click.option("--reason", help="Why the window is overridden (recorded in the journal).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.option("--full", is_flag=True, help="List every problem (text output).")
@plan_options
@claim_option
@state_dir_option
@api_errors
def command(
    target: Path,
    yes: bool,
    partial: bool,
    config: Path | None,
    overwrite_drift: bool,
    override_window: bool,
    reason: str | None,
    fmt: str,
    full: bool,
    elements: tuple[str, ...],
    prune: bool,
    allow_mass_delete: bool,
    allow_mass_update: bool,
    claim: bool,
    state_dir: str | None,
) -> int:
    """Apply a saved plan (PLAN_FILE from `provgit plan --out`), or plan the config
    at PATH and apply it.

    A saved plan is applied exactly: its signature must hold (a plan edited
    after `provgit plan` signed it is refused, exit 3), every operation must be
    one planning the config would allow (protected records, prune rules,
    thresholds, secret references), and an element whose revision moved since
    the plan was made is refused ("changed by another user; run plan again",
    exit 3); nothing is applied unless --partial. Applying a config shows the
    plan and asks first; pass --yes when no terminal is attached.

    A record changed outside provgit since provgit wrote it is drift: with
    `drift.mode: report` it is held, not overwritten, until --overwrite-drift.
    Changes a sync window holds wait as pending updates until it opens;
    --override-window --reason TEXT writes them now (journaled as an event).

    Exit codes: 0 applied and in sync, 1 invalid input, 3 refused for safety
    (nothing applied), 4 applied with errors, pending updates left or drift
    held (see `provgit errors list`), 143 stopped by SIGTERM (journaled as
    interrupted).
    """
    if not target.exists():
        raise click.UsageError(
            f"{str(target)!r} does not exist (a plan file or a config directory)"
        )
    override = applying.override_reason(override_window, reason)
    if target.is_file():
        if prune or allow_mass_delete or allow_mass_update or claim:
            raise click.UsageError(
                "--prune, --claim and --allow-mass-* decide what is planned; a saved plan has been "
                "planned already (plan again with them)"
            )
        try:
            with invalid_shown_as("json" if fmt == "json" else "text"):
                saved = open_saved_plan(target, config, state_dir, elements)
        except PlanRefused as e:
            return _refuse(target, e.problems, fmt)
        cfg, run = saved.config, saved.run
    else:
        cfg = Config.at(target, state_dir)
        options = PlanOptions(prune, allow_mass_delete, allow_mass_update, elements, claim)
        run = _planned(cfg, options, fmt)
        declined = _confirm(run.plan.has_changes, yes)
        if declined is not None:
            return declined
    with applying.progress_for(fmt) as progress:
        applied = aio.run(
            cfg.apply(
                run,
                partial=partial,
                overwrite_drift=overwrite_drift,
                override_window=override,
                progress=progress,
            )
        )
    applying.warn(applied.warnings)
    applying.render(applied.result, fmt, full)
    return applied.exit_code
