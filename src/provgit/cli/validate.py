"""`provgit validate`: check the config and say exactly where every problem is."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from provgit import exitcodes
from provgit.api import Config
from provgit.cli.common import api_errors, config_path_argument, state_dir_option
from provgit.render import diagnostics as render


@click.command("validate")
@config_path_argument
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "github"]),
    default="text",
    show_default=True,
    help="github prints workflow-command annotations for pull requests.",
)
@click.option("--no-cache", is_flag=True, help="Parse every file, ignoring the parse cache.")
@click.option(
    "--secrets",
    is_flag=True,
    help="Also check that every secret reference resolves here (for a deploy job).",
)
@state_dir_option
@api_errors
def command(path: Path, fmt: str, no_cache: bool, secrets: bool, state_dir: str | None) -> int:
    """Validate the config at PATH (default: the current directory).

    Every problem is reported, each with file:line:col, the resource it
    concerns, what is wrong and how to fix it. Exit 0 when valid, 1 when not.
    With --secrets, a secret reference that does not resolve here (an unset
    variable, an unreadable file) is a problem too; its value is never shown.
    """
    started = time.perf_counter()
    result = Config.at(path, state_dir).validate(use_cache=not no_cache, secrets=secrets)
    elapsed = time.perf_counter() - started
    counts = {k: v for k, v in result.counts.items() if v}
    if fmt == "json":
        click.echo(render.as_json(result.diagnostics, {"counts": counts, "files": result.files}))
    elif fmt == "github":
        out = render.as_github(result.diagnostics)
        if out:
            click.echo(out)
    else:
        if result.diagnostics:
            click.echo(render.as_text(result.diagnostics))
        errors = sum(d.severity == "error" for d in result.diagnostics)
        summary = ", ".join(f"{n} {k}" for k, n in counts.items()) or "no resources"
        if errors:
            click.echo(
                f"\n{errors} problem(s) in {result.files} file(s); nothing was changed.",
                err=False,
            )
        else:
            click.echo(
                f"valid: {result.files} file(s), {summary} "
                f"({elapsed:.2f}s, {result.parsed} parsed, {result.cached} from cache)",
                file=sys.stdout,
            )
    return exitcodes.OK if result.ok else exitcodes.INVALID
