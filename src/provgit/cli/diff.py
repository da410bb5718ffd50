"""`provgit diff`: what a pull request changes per element, contacting no element."""

from __future__ import annotations

from pathlib import Path

import click

from provgit import exitcodes
from provgit.api import Config
from provgit.cli.common import (
    api_errors,
    config_path_argument,
    console,
    invalid_shown_as,
    state_dir_option,
)
from provgit.cli.plan import FORMATS, emit


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
@api_errors
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
    head_config = Config.open_commit(path, head, state_dir)
    base_config = Config.open_commit(path, base, state_dir)
    with invalid_shown_as(fmt):
        diff = head_config.diff_against(base_config, f"{base}..{head}")
    plan, settings = diff.plan, diff.settings
    if not diff.base_valid:
        console(err=True).print(
            f"warning: the base revision {base} does not validate; diffing against an empty network"
        )
    emit(plan, "markdown" if fmt == "github" else fmt, full, settings.reports.markdown_max_bytes)
    return exitcodes.CHANGES if detailed_exitcode and plan.has_changes else exitcodes.OK
