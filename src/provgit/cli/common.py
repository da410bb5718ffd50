"""Options and helpers shared by commands: parsing and rendering only (the
pipeline is reached through `provgit.api`)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, ParamSpec, TypeVar

import click

from provgit import exitcodes
from provgit.api import ConfigSource, InvalidConfig, ProvgitError, UsageProblem, sources
from provgit.api.sources import default_state_dir
from provgit.api.sources import settings_missing_message as settings_missing_message
from provgit.cli.hosts import host_names
from provgit.render import diagnostics as render_diag

if TYPE_CHECKING:
    from rich.console import Console

config_path_argument = click.argument(
    "path", type=click.Path(file_okay=False, path_type=Path), default=".", required=False
)


def state_dir_for(path: Path, state_dir: str | None) -> Path:
    """Where provgit keeps its state: --state-dir, $PROVGIT_STATE_DIR, or PATH/.provgit."""
    return default_state_dir(path, state_dir)


state_dir_option = click.option(
    "--state-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Where provgit keeps caches, journal and embedded elements "
    "(default: PATH/.provgit, or $PROVGIT_STATE_DIR).",
)


# The status server and the drift resync, the same for `watch` and `fleet watch`.
host_option = click.option(
    "--host", default="127.0.0.1", show_default=True, help="Status server address."
)


allowed_host_option = click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    callback=host_names,
    metavar="NAME",
    help="A name the status server may be reached by besides its address, "
    "localhost and a loopback address (repeatable: a reverse proxy's or a tunnel's "
    "name); a request naming another Host is refused (421), against DNS rebinding. "
    "Checked on a loopback --host, and on any --host once one is given.",
)
resync_option = click.option(
    "--resync-seconds",
    type=click.FloatRange(min=0),
    default=300.0,
    show_default=True,
    help="Observe every element this often to find drift (0: never).",
)
log_format_option = click.option(
    "--log-format", type=click.Choice(["plain", "json"]), default="plain"
)


port_option = click.option(
    "--port",
    type=click.IntRange(min=0, max=65535),
    default=8472,
    show_default=True,
    help="Status server port (0: any free port; the URL is printed on start).",
)


def read_source(path: Path) -> ConfigSource:
    try:
        return sources.read_config_directory(path)
    except UsageProblem as e:
        raise click.UsageError(str(e)) from None


def show_invalid(e: InvalidConfig, fmt: str = "text") -> NoReturn:
    """Print every problem of a config that does not validate, and stop with
    exit code 1 (nothing was changed)."""
    if fmt == "github":
        click.echo(render_diag.as_github(e.diagnostics))
    elif fmt == "json":
        click.echo(render_diag.as_json(e.diagnostics))
    else:
        click.echo(render_diag.as_text(e.diagnostics), err=True)
        click.echo(
            f"\n{len(e.diagnostics)} problem(s) in the config at {e.root}; "
            "nothing was planned or changed.",
            err=True,
        )
    raise click.exceptions.Exit(exitcodes.INVALID)


@contextlib.contextmanager
def invalid_shown_as(fmt: str) -> Iterator[None]:
    """A config that does not validate, shown in `fmt` (text, json, github)."""
    try:
        yield
    except InvalidConfig as e:
        show_invalid(e, fmt)


P = ParamSpec("P")
R = TypeVar("R")


def api_errors(f: Callable[P, R]) -> Callable[P, R]:
    """The API's errors as the command line says them: usage problems with the
    command's usage line, the rest as one `Error: ...` line; exit code 1 for both.
    (A config that does not validate: every problem as text, unless the
    command showed it in its own format already.)"""

    @functools.wraps(f)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return f(*args, **kwargs)
        except InvalidConfig as e:
            show_invalid(e)
        except UsageProblem as e:
            raise click.UsageError(str(e)) from None
        except ProvgitError as e:
            raise click.ClickException(str(e)) from None

    return wrapper


def console(err: bool = False) -> Console:
    # rich is ~40 modules: loaded by the commands that print through it, not
    # by every command (`status --format json` never does).
    from rich.console import Console

    # Colours only on a terminal; CI logs and pipes get plain text. No markup:
    # names and values are user text, and "[/bold]" in a last name raised a
    # MarkupError, "[link=...]" made a hidden hyperlink. Styles go in Text.
    return Console(stderr=err, highlight=False, soft_wrap=True, markup=False)
