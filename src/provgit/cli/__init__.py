"""The `provgit` command line. It only composes pipeline stages.

Each command lives in its own module under `provgit.cli` and exposes a click
command named `command`; they are registered below and imported only when run
(importing every command up front cost a third of a second per run).
"""

from __future__ import annotations

import gc
import importlib
import sys

import click

from provgit import __version__, exitcodes

# Modules under provgit.cli, each exporting `command` (the command's name is the
# module's without a trailing underscore: `import_` is `provgit import`).
COMMAND_MODULES = [
    "validate",
    "element",
    "plan",
    "diff",
    "show",
    "schema",
    "apply",
    "reconcile",
    "errors",
    "import_",
    "status",
    "watch",
    "version",
    "list_",
    "init",
    "suspend",
    "resume",
]


def _module_of(name: str) -> str | None:
    for module in COMMAND_MODULES:
        if module.rstrip("_") == name:
            return module
    return None


class _Group(click.Group):
    """Loads commands lazily; turns usage errors into exit code 1 (never 2,
    which means 'changes pending')."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(m.rstrip("_") for m in COMMAND_MODULES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = _module_of(cmd_name)
        if module is None:
            return None
        command: click.Command = importlib.import_module(f"provgit.cli.{module}").command
        return command

    def main(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        kwargs.setdefault("standalone_mode", False)
        # A run is a short batch job over large, acyclic data: the cyclic GC only
        # costs time (about half of projecting 100,000 users). `watch` collects
        # between its runs itself.
        gc.disable()
        try:
            rv = super().main(*args, **kwargs)
        except click.exceptions.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(exitcodes.INVALID)
        except click.exceptions.Exit as e:
            sys.exit(e.exit_code)
        except click.ClickException as e:
            e.show()
            sys.exit(exitcodes.INVALID)
        except exitcodes.Interrupted as e:
            # A run stopped by SIGTERM: said plainly, not as an error.
            click.echo(str(e), err=True)
            sys.exit(exitcodes.INTERRUPTED)
        sys.exit(rv if isinstance(rv, int) else exitcodes.OK)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="provgit", message="%(prog)s %(version)s")
def main() -> None:
    """Provision a telephony network from git.

    Validate the desired state kept as YAML, plan it against every network
    element, apply it and report sync status and distribution errors.

    Exit codes: 0 ok/in sync, 1 invalid input or usage, 2 changes pending
    (with --detailed-exitcode), 3 refused for safety, 4 applied with errors
    or pending updates left, 5 incomplete (some elements not observed),
    143 stopped by SIGTERM (journaled as interrupted).
    """
