"""`provgit diff`: what a pull request changes per element, contacting no element."""

from __future__ import annotations

from pathlib import Path

import click

from provgit import exitcodes
from provgit.cli.common import (
    config_path_argument,
    console,
    load_valid,
    state_dir_for,
    state_dir_option,
)
from provgit.cli.plan import FORMATS, emit
from provgit.compose import diff_states
from provgit.source.git import GitSourceError, read_commit
from provgit.validate import validate_source


@click.command("diff")
@config_path_argument
@click.option("--base", required=True, help="The git revision to compare from (e.g. origin/main).")
@click.option("--head", default="HEAD", show_default=True, help="The git revision to compare to.")
@click.option(
    "--format", "fmt", type=click.Choice([*FORMATS, "github"]), default="text", show_default=True
)
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when the two revisions differ.")
@click.option("--full", is_flag=True, help="Show every operation (text output).")
@state_dir_option
def command(
    path: Path,
    base: str,
    head: str,
    fmt: str,
    detailed_exitcode: bool,
    full: bool,
    state_dir: str | None,
) -> int:
    """Show what changes on each element between two commits of the config at PATH.

    Both commits are read from git and projected onto the elements the head
    commit defines; no element is contacted, so this is what a CI job without
    element credentials runs on a pull request. --format github prints
    annotations for validation problems of the head commit.
    """
    cache = state_dir_for(path, state_dir) / "cache"
    try:
        head_src = read_commit(path, head)
        base_src = read_commit(path, base)
    except GitSourceError as e:
        raise click.UsageError(str(e)) from None
    head_valid = load_valid(head_src, cache, fmt)
    base_valid = validate_source(base_src, cache)
    settings = head_valid.state.settings
    plan = diff_states(
        head_valid.state,
        head_src,
        base_valid.state if base_valid.ok else None,
        base_src,
        f"{base}..{head}",
    )
    if not base_valid.ok:
        console(err=True).print(
            f"warning: the base revision {base} does not validate; diffing against an empty network"
        )
    emit(plan, "markdown" if fmt == "github" else fmt, full, settings.reports.markdown_max_bytes)
    return exitcodes.CHANGES if detailed_exitcode and plan.has_changes else exitcodes.OK
