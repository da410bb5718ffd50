"""Options and helpers shared by commands (composition only, no pipeline logic)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from provgit.source import ConfigSource, read_directory

config_path_argument = click.argument(
    "path", type=click.Path(file_okay=False, path_type=Path), default=".", required=False
)


def state_dir_for(path: Path, state_dir: str | None) -> Path:
    """Where provgit keeps its state: --state-dir, $PROVGIT_STATE_DIR, or PATH/.provgit."""
    chosen = state_dir or os.environ.get("PROVGIT_STATE_DIR")
    return Path(chosen) if chosen else path / ".provgit"


state_dir_option = click.option(
    "--state-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Where provgit keeps caches, journal and embedded elements "
    "(default: PATH/.provgit, or $PROVGIT_STATE_DIR).",
)


def read_source(path: Path) -> ConfigSource:
    if not path.exists():
        raise click.UsageError(f"config directory {str(path)!r} does not exist")
    if not path.is_dir():
        raise click.UsageError(f"{str(path)!r} is not a directory")
    return read_directory(path)
