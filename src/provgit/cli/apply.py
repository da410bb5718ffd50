"""`provgit apply`: apply a saved plan, or plan a config and apply it."""

from __future__ import annotations

import json
from pathlib import Path

import click

from provgit import aio, exitcodes
from provgit.apply import ApplyOptions
from provgit.cli import applying
from provgit.cli.common import load_valid, read_source, state_dir_for, state_dir_option
from provgit.cli.plan import emit, make_plan, plan_options
from provgit.compose import desired_target
from provgit.plan import PlanFormatError, PlanOptions, signing
from provgit.plan.recheck import recheck
from provgit.plan.signing import PlanSignatureError
from provgit.publish import reports_dir

# Refusals listed in text output (JSON lists them all).
MAX_SHOWN = 20


def _read_plan(path: Path) -> tuple[str, str | None]:
    """The plan file's text, and the config path it names (not trusted yet:
    only used to find the config and key its signature is checked against)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise click.UsageError(f"cannot read the plan {path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise click.UsageError(f"{path} is not a provgit plan (not text)") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise click.UsageError(f"{path}: plan file is not JSON: {e}") from None
    named = doc.get("source") if isinstance(doc, dict) else None
    return text, named if isinstance(named, str) else None


def _named_config(plan_file: Path, named: str | None) -> Path:
    """The config a saved plan names, when it may be believed without --config.

    The plan's `source` is not signed-checked yet, and it decides which config
    (and so which key) the signature is checked with: a plan pointing at a
    config its author controls could sign itself. So it is only taken when it
    lies in the current directory or below (the checkout the job runs in);
    anywhere else the user says where the config is.
    """
    root = Path(named or ".")
    cwd = Path.cwd().resolve()
    resolved = root.resolve()
    if resolved == cwd or cwd in resolved.parents:
        return root
    raise click.UsageError(
        f"{plan_file} was made from the config at {named!r}, outside the current "
        "directory; pass --config PATH to say which config (and key) it is checked against"
    )


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
@state_dir_option
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
    if override_window and not (reason or "").strip():
        raise click.UsageError("--override-window needs --reason TEXT (it is journaled)")
    override = reason.strip() if override_window and reason else None
    if target.is_file():
        if prune or allow_mass_delete or allow_mass_update:
            raise click.UsageError(
                "--prune and --allow-mass-* decide what is planned; a saved plan has been "
                "planned already (plan again with them)"
            )
        text, named = _read_plan(target)
        root = config or _named_config(target, named)
        sdir = state_dir_for(root, state_dir)
        source = read_source(root)
        state = load_valid(source, sdir / "cache", "json" if fmt == "json" else "text").state
        # The signature first, before anything in the plan is believed.
        key = signing.plan_key(state.settings.secret_key, sdir, create=False)
        try:
            plan = signing.verify(text, key)
        except PlanSignatureError as e:
            return _refuse(target, [str(e)], fmt)
        except PlanFormatError as e:
            raise click.UsageError(f"{target}: {e}") from None
        if state.settings.network != plan.network:
            raise click.UsageError(
                f"the plan is for network {plan.network!r} but the config at {root} is "
                f"{state.settings.network!r} (pass --config)"
            )
        # Then everything planning this config would refuse (nothing contacted yet).
        problems = recheck(
            plan,
            desired_target(state, source.read_other, sdir),
            state.settings,
            {n: e.type for n, e in state.elements.items()},
        )
        if problems:
            return _refuse(target, problems, fmt)
        if elements:
            unknown = [e for e in elements if plan.element(e) is None]
            if unknown:
                raise click.UsageError(f"element(s) not in the plan: {', '.join(unknown)}")
            plan = plan.only(elements)
        options = ApplyOptions(
            command="apply",
            check_stale=True,
            partial=partial,
            overwrite_drift=overwrite_drift,
            override_window=override,
        )
    else:
        root = target
        sdir = state_dir_for(root, state_dir)
        run = aio.run(
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
        options = ApplyOptions(
            command="apply",
            check_stale=True,
            partial=partial,
            fresh=True,
            overwrite_drift=overwrite_drift,
            override_window=override,
        )
    journal = applying.open_journal(sdir)
    try:
        result = aio.run(
            applying.execute_with_progress(plan, state, root, sdir, journal, options, fmt)
        )
        applying.report(result, journal, reports_dir(state, root, sdir), state, root)
    finally:
        journal.close()
    applying.render(result, fmt, full)
    return result.exit_code()
