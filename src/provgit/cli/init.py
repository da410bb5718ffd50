"""`provgit init [DIR]`: scaffold a config repository."""

from __future__ import annotations

import os
from pathlib import Path

import click

from provgit import exitcodes, scaffold


@click.command("init")
@click.argument(
    "directory", type=click.Path(file_okay=False, path_type=Path), default=".", required=False
)
@click.option(
    "--network",
    help="The network's name in provgit.yaml (default: the directory's name).",
)
def command(directory: Path, network: str | None) -> int:
    """Scaffold a config repository in DIR (created if missing): provgit.yaml,
    a .gitignore that keeps .provgit/ (state, embedded elements, secret.key)
    out of git, example elements and users that validate and plan on embedded
    elements, and .github/workflows/provgit.yml calling provgit's reusable
    pull-request workflow.

    Nothing is overwritten: if any of these files exists, nothing is written.
    """
    name = network or scaffold.network_name(directory.resolve().name)
    if scaffold.network_name(name) != name:
        raise click.UsageError(
            f"--network {name!r}: use letters, digits, '.', '_' and '-' (e.g. "
            f"{scaffold.network_name(name)!r})"
        )
    if directory.exists() and not directory.is_dir():
        raise click.UsageError(f"{str(directory)!r} is not a directory")
    planned = scaffold.files(name)
    # A link counts as present, dangling or not (its target would be written),
    # and so does one in place of a folder init writes into (.github).
    present = sorted(rel for rel in planned if _taken(directory, rel))
    if present:
        raise click.UsageError(
            f"not overwriting {', '.join(str(directory / rel) for rel in present)}: "
            "init writes a new config repository (move them away, or pick another DIR); "
            "nothing was written"
        )
    for rel, text in planned.items():
        target = directory / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        # "x": never replace a file (or follow a link) that appeared since the check.
        try:
            with target.open("x", encoding="utf-8") as f:
                f.write(text)
        except FileExistsError:
            raise click.ClickException(f"{target} appeared while init was writing") from None
        click.echo(f"created {target}")
    click.echo(
        f"\nNext: provgit validate {directory}  ·  provgit plan {directory}  ·  "
        f"git init && git add -A (.provgit/ stays out)"
    )
    return exitcodes.OK


def _taken(directory: Path, rel: str) -> bool:
    """Whether `rel` (or a folder on its way, inside `directory`) is there as
    something init must not write into: any file, or a link of any kind."""
    path = directory
    for part in Path(rel).parts:
        path = path / part
        if path.is_symlink():
            return True
    return os.path.lexists(path)
