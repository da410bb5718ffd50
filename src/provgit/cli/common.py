"""Options and helpers shared by commands (composition only, no pipeline logic)."""

from __future__ import annotations

import os
from pathlib import Path

import click
from rich.console import Console

from provgit import exitcodes
from provgit.load.yaml_events import YamlProblem, parse_documents
from provgit.model.settings import Settings
from provgit.render import diagnostics as render_diag
from provgit.source import SETTINGS_FILE, ConfigSource, read_directory
from provgit.validate import Validated, validate_source

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


def read_settings(path: Path) -> Settings | None:
    """PATH/provgit.yaml alone, or None when it is missing or invalid.

    For commands that must answer without the whole config being valid (or
    loaded): `status`, `errors delete`. `validate` says what is wrong with it.
    """
    try:
        docs = parse_documents((path / "provgit.yaml").read_bytes())
        return Settings.model_validate(docs[0] if docs else {})
    except (OSError, YamlProblem, ValueError):
        return None


def read_source(path: Path) -> ConfigSource:
    if not path.exists():
        raise click.UsageError(f"config directory {str(path)!r} does not exist")
    if not path.is_dir():
        raise click.UsageError(f"{str(path)!r} is not a directory")
    settings = path / SETTINGS_FILE
    # A symlinked one is judged by the source (outside the root, broken, a loop).
    if not (settings.is_file() or settings.is_symlink()):
        # Checked before reading anything or creating any state: a wrong folder
        # (e.g. people/) gets one clear sentence, not an error per record.
        raise click.UsageError(settings_missing_message(path))
    source = read_directory(path)
    if not source.files and not source.errors:
        # An empty network is valid, but here it is nearly always the wrong folder.
        raise click.UsageError(
            f"no *.yaml files under {str(path)!r}: is this the config directory? "
            "(a config has provgit.yaml at its root; see sample-config/)"
        )
    return source


def settings_missing_message(path: Path) -> str:
    looked = path / SETTINGS_FILE
    near = sorted(
        p.name
        for p in (path.iterdir() if path.is_dir() else ())
        if p.name.lower() in ("provgit.yaml", "provgit.yml") and p.name != SETTINGS_FILE
    )
    how = (
        f"rename {near[0]} to {SETTINGS_FILE}"
        if near
        else "create it with at least 'version: 1' and 'network: NAME' "
        "(see sample-config/provgit.yaml)"
    )
    return (
        f"no {SETTINGS_FILE} in {str(path)!r} (looked for {str(looked)!r}): "
        f"is this the config directory? A config has {SETTINGS_FILE} at its root; {how}"
    )


def load_valid(source: ConfigSource, cache_dir: Path | None, fmt: str = "text") -> Validated:
    """Validate, or print every problem and stop with exit code 1 (nothing is changed)."""
    result = validate_source(source, cache_dir)
    if not result.ok:
        if fmt == "github":
            click.echo(render_diag.as_github(result.diagnostics))
        elif fmt == "json":
            click.echo(render_diag.as_json(result.diagnostics))
        else:
            click.echo(render_diag.as_text(result.diagnostics), err=True)
            click.echo(
                f"\n{len(result.diagnostics)} problem(s) in the config at {source.root}; "
                "nothing was planned or changed.",
                err=True,
            )
        raise click.exceptions.Exit(exitcodes.INVALID)
    return result


def console(err: bool = False) -> Console:
    # Colours only on a terminal; CI logs and pipes get plain text.
    return Console(stderr=err, highlight=False, soft_wrap=True)
