"""`provgit plan`: what would change on every element, without changing anything."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from provgit import aio, exitcodes
from provgit.api import Config, Plan, PlanOptions, PlanRun, UsageProblem, memo_written_behind
from provgit.cli import keep_until_exit
from provgit.cli.common import (
    api_errors,
    config_path_argument,
    console,
    invalid_shown_as,
    state_dir_for,
    state_dir_option,
)

FORMATS = ["text", "markdown", "json"]


F = TypeVar("F", bound=Callable[..., Any])


def plan_options(f: F) -> F:
    """Options shared by plan, apply and reconcile."""
    for opt in reversed(
        [
            click.option(
                "--element",
                "elements",
                multiple=True,
                help="Only this element (repeatable).",
            ),
            click.option(
                "--prune",
                is_flag=True,
                help="Also delete records provgit did not create (every kind).",
            ),
            click.option(
                "--allow-mass-delete",
                is_flag=True,
                help="Apply even when deletes pass the safety threshold.",
            ),
            click.option(
                "--allow-mass-update",
                is_flag=True,
                help="Apply even when updates pass the safety threshold.",
            ),
        ]
    ):
        f = opt(f)
    return f


def full_read_option(f: F) -> F:
    """--full-read, shared by plan and reconcile."""
    return click.option(
        "--full-read",
        is_flag=True,
        help="Read every element in full, checking what its change feed said "
        "(default: only elements last read in full before observe.full_read_hours).",
    )(f)


def claim_option(f: F) -> F:
    """--claim (plan, apply and reconcile; watch never claims)."""
    return click.option(
        "--claim",
        is_flag=True,
        help="Take ownership of records the config has that provgit did not create "
        "(e.g. directory entries `provgit import` read): planned as modifies, written "
        "only where the element still holds what was planned.",
    )(f)


def emit(plan: Plan, fmt: str, full: bool, markdown_max: int) -> None:
    # Here, not at the top: `reconcile` and `apply` import this module for its
    # options, and the text renderer loads rich (~60 modules).
    from provgit.render import plan_markdown, plan_text

    if fmt == "json":
        click.echo(plan.dumps(), nl=False)
    elif fmt == "markdown":
        click.echo(plan_markdown.render(plan, markdown_max), nl=False)
    else:
        plan_text.render(plan, console(), None if full else 200)


def _echo(piece: bytes) -> None:
    click.echo(piece, nl=False)


def exit_code(plan: Plan, detailed: bool, allow_unreachable: bool = False) -> int:
    """3 refused for safety; 5 when some element could not be observed (a CI
    gate must not pass without looking at part of the network) unless
    `allow_unreachable`; then 2 for changes with `detailed`, else 0."""
    if plan.refused:
        return exitcodes.REFUSED
    if plan.unreachable and not allow_unreachable:
        return exitcodes.INCOMPLETE
    changes = plan.has_changes or any(e.queued for e in plan.elements)
    return exitcodes.CHANGES if detailed and changes else exitcodes.OK


def unreachable_note(plan: Plan, allowed: bool) -> str | None:
    """The line that says which elements the answer does not cover, and what the exit code does."""
    down = plan.unreachable
    if not down:
        return None
    names = ", ".join(f"{e.element} ({e.state})" for e in down)
    if allowed:
        return f"warning: not observed, not covered by this plan: {names} (--allow-unreachable)"
    return (
        f"incomplete: not observed: {names}; exit code {exitcodes.INCOMPLETE} "
        "(pass --allow-unreachable to answer for the other elements only)"
    )


async def make_plan(
    path: Path,
    state_dir: Path,
    options: PlanOptions,
    fmt: str = "text",
) -> PlanRun:
    """`Config.plan` with its errors as the command line says them (kept for
    the tests and tools that call it)."""
    with invalid_shown_as(fmt):
        try:
            return await Config.at(path, state_dir).plan(options)
        except UsageProblem as e:
            raise click.UsageError(str(e)) from None


def check_out_path(out: Path) -> None:
    """Refuse --out into a folder that is not there, before anything is planned:
    a typo in the path must not make directories the user never asked for."""
    parent = out.parent
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise click.UsageError(
            f"cannot save the plan to {out}: the directory {str(parent)!r} {what} "
            f"(create it first, e.g. `mkdir -p {parent}`)"
        )


@click.command("plan")
@config_path_argument
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Save the plan (JSON) for `provgit apply`.",
)
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 2 when there are changes (0: none, 1: error, 3: refused for safety, "
    "5: some elements could not be observed).",
)
@click.option(
    "--allow-unreachable",
    is_flag=True,
    help="Answer 0/2 for the elements observed even when others could not be "
    "(default: exit 5, incomplete).",
)
@click.option("--full", is_flag=True, help="Show every operation (text output).")
@plan_options
@claim_option
@full_read_option
@state_dir_option
@api_errors
def command(
    path: Path,
    fmt: str,
    out: Path | None,
    detailed_exitcode: bool,
    allow_unreachable: bool,
    full: bool,
    elements: tuple[str, ...],
    prune: bool,
    allow_mass_delete: bool,
    allow_mass_update: bool,
    claim: bool,
    full_read: bool,
    state_dir: str | None,
) -> int:
    """Plan the config at PATH against every element and show what would change.

    Nothing is changed. Secrets show as (sensitive); changes to them are still
    detected. When an element cannot be observed the plan is incomplete and
    exits 5 (--allow-unreachable: 0/2 for the rest, with a warning). Save the
    plan with --out and apply exactly that with `provgit apply FILE`: the saved
    plan is signed with the network's secret_key (or the state directory's
    key), so a plan edited since is refused, and so are elements that changed
    since.
    """
    if out is not None:
        check_out_path(out)
    config = Config.at(path, state_dir_for(path, state_dir))
    options = PlanOptions(prune, allow_mass_delete, allow_mass_update, elements, claim)
    # A full plan's memo is written by a child while the plan is rendered here.
    with memo_written_behind() as left:
        with invalid_shown_as(fmt):
            run = aio.run(config.plan(options, full_read))
        # What a hold would keep back is part of the plan (and of its signature).
        run = aio.run(config.preview_holds(run))
        plan = run.plan
        if out is not None or fmt == "json":
            # Signed, so `provgit apply` can tell it is what this command planned.
            signed = config.sign(run)
            if signed.warning:
                click.echo(signed.warning, err=True)
        # The JSON goes out as it is made, to the file and stdout at once: bytes,
        # written as they are, not decoded again.
        stdout = _echo if fmt == "json" else None
        if out is not None:
            config.save_plan(signed, out, stdout)
        elif stdout is not None:
            for piece in signed.pieces:
                stdout(piece)
        if fmt != "json":
            emit(plan, fmt, full, run.settings.reports.markdown_max_bytes)
        notes = config.plan_notes(run, drift=fmt == "text")
        if fmt == "text":
            for line in notes.drift:
                click.echo(line)
        if out is not None:
            # On stderr when stdout carries the plan itself (JSON, markdown).
            click.echo(
                f"plan saved to {out} (apply it with `provgit apply {out}`)", err=fmt != "text"
            )
    note = unreachable_note(plan, allow_unreachable)
    if note is not None:
        click.echo(note, err=True)
    # The plan, the validated config and the observations are freed by the
    # process's end, not one object at a time (~0.7 CPU s at 100,000 users).
    # So is what the plan left to this command (`leave_to_caller`).
    keep_until_exit(config, run, left)
    return exit_code(plan, detailed_exitcode, allow_unreachable)
