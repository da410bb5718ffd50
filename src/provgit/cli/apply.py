"""`provgit apply`: apply a saved plan, or plan a config and apply it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from provgit import exitcodes
from provgit.apply import ApplyOptions
from provgit.cli import applying
from provgit.cli.common import load_valid, read_source, state_dir_for, state_dir_option
from provgit.cli.plan import emit, make_plan, plan_options
from provgit.plan import Plan, PlanFormatError, PlanOptions
from provgit.report import reports_dir


def _load_plan(path: Path) -> Plan:
    try:
        return Plan.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise click.UsageError(f"cannot read the plan {path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise click.UsageError(f"{path} is not a provgit plan (not text)") from None
    except PlanFormatError as e:
        raise click.UsageError(f"{path}: {e}") from None


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
    help="Config directory of a saved plan (default: the one it was made from).",
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.option("--full", is_flag=True, help="List every problem (text output).")
@plan_options
@state_dir_option
def command(
    target: Path,
    yes: bool,
    partial: bool,
    config: Path | None,
    fmt: str,
    full: bool,
    elements: tuple[str, ...],
    prune: bool,
    allow_mass_delete: bool,
    allow_mass_update: bool,
    state_dir: str | None,
) -> int:
    """Apply a saved plan (PLAN_FILE from `provgit plan --out`), or plan the config
    at PATH and apply it.

    A saved plan is applied exactly: an element whose revision moved since the
    plan was made is refused ("changed by another user; run plan again", exit
    3) and nothing is applied unless --partial. Applying a config shows the
    plan and asks first; pass --yes when no terminal is attached.

    Exit codes: 0 applied and in sync, 1 invalid input, 3 refused for safety
    (nothing applied), 4 applied with errors or pending updates left (see
    `provgit errors list`), 143 stopped by SIGTERM (journaled as interrupted).
    """
    if not target.exists():
        raise click.UsageError(
            f"{str(target)!r} does not exist (a plan file or a config directory)"
        )
    if target.is_file():
        if prune or allow_mass_delete or allow_mass_update:
            raise click.UsageError(
                "--prune and --allow-mass-* decide what is planned; a saved plan has been "
                "planned already (plan again with them)"
            )
        plan = _load_plan(target)
        root = config or Path(plan.source or ".")
        sdir = state_dir_for(root, state_dir)
        source = read_source(root)
        state = load_valid(source, sdir / "cache", "json" if fmt == "json" else "text").state
        if state.settings.network != plan.network:
            raise click.UsageError(
                f"the plan is for network {plan.network!r} but the config at {root} is "
                f"{state.settings.network!r} (pass --config)"
            )
        gone = [e.element for e in plan.elements if e.element not in state.elements]
        if gone:
            raise click.UsageError(
                f"the plan names element(s) the config no longer has: {', '.join(gone)}; "
                "run `provgit plan` again"
            )
        if elements:
            unknown = [e for e in elements if plan.element(e) is None]
            if unknown:
                raise click.UsageError(f"element(s) not in the plan: {', '.join(unknown)}")
            plan = plan.only(elements)
        options = ApplyOptions(command="apply", check_stale=True, partial=partial)
    else:
        root = target
        sdir = state_dir_for(root, state_dir)
        run = asyncio.run(
            make_plan(
                root,
                sdir,
                PlanOptions(prune, allow_mass_delete, allow_mass_update, elements),
                "json" if fmt == "json" else "text",
            )
        )
        plan, state = run.plan, run.state
        if fmt == "text":
            emit(plan, "text", False, state.settings.reports.markdown_max_bytes)
        if plan.has_changes and not yes:
            if not applying.stdin_is_tty():
                click.echo(
                    "error: no terminal to confirm on; pass --yes to apply without asking",
                    err=True,
                )
                return exitcodes.INVALID
            if not click.confirm("Apply these changes?", default=False, err=True):
                click.echo("Nothing applied.", err=True)
                return exitcodes.OK
        # Observed moments ago, but a confirmation can take long: still check.
        options = ApplyOptions(command="apply", check_stale=True, partial=partial, fresh=True)
    journal = applying.open_journal(sdir)
    try:
        result = asyncio.run(
            applying.execute_with_progress(plan, state, root, sdir, journal, options, fmt)
        )
        applying.report(result, journal, reports_dir(state, root, sdir), state, root)
    finally:
        journal.close()
    applying.render(result, fmt, full)
    return result.exit_code()
