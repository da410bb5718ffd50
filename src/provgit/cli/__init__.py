"""The `provgit` command line. It only composes pipeline stages.

Each command lives in its own module under `provgit.cli` and exposes a click
command named `command`; they are registered below and imported only when run
(importing every command up front cost a third of a second per run).
"""

from __future__ import annotations

import contextlib
import errno
import gc
import importlib
import os
import sys
from typing import NoReturn

import click

from provgit import __version__, exitcodes

# Modules under provgit.cli, each exporting `command` (the command's name is the
# module's without a trailing underscore: `import_` is `provgit import`).
COMMAND_MODULES = [
    "validate",
    "fleet",
    "element",
    "plan",
    "diff",
    "show",
    "schema",
    "apply",
    "reconcile",
    "errors",
    "journal",
    "import_",
    "status",
    "watch",
    "version",
    "list_",
    "init",
    "suspend",
    "resume",
]


# Each command's summary (the first sentence of its help), so `provgit --help`
# lists the commands without importing them (that took ~1.5 s: the modules pull
# in the whole pipeline). tests/test_cli_help.py holds it equal to the commands'.
SUMMARIES = {
    "apply": "Apply a saved plan (PLAN_FILE from `provgit plan --out`), or plan the config "
    "at PATH and apply it.",
    "diff": "Show what changes on each element between two commits of the config at PATH.",
    "element": "Network element simulator (the element API v1 over HTTP).",
    "fleet": "Serve many networks from one process (a fleet file); replicas share them.",
    "errors": "Distribution errors: records an element refused, or that another user changed.",
    "journal": "The journal's own operations: move it to a shared PostgreSQL database.",
    "init": "Scaffold a config repository in DIR (created if missing): provgit.yaml, a "
    ".gitignore that keeps .provgit/ (state, embedded elements, secret.key) out of git, "
    "example elements and users that validate and plan on embedded elements, and "
    ".github/workflows/provgit.yml calling provgit's reusable pull-request workflow.",
    "list": "List the resources provgit manages: every resource of the config (of KIND only, "
    "e.g. users or cos), one per line as `provgit show` takes it, with the elements it "
    "lands on.",
    "version": "Print provgit's version (and, with --format json, the Python it runs on and "
    "the saved-plan format it reads and writes).",
    "import": "Read the network elements and write what they hold into the config as YAML.",
    "plan": "Plan the config at PATH against every element and show what would change.",
    "reconcile": "Bring every element in line with the config at PATH, and report.",
    "schema": "Write JSON Schemas (draft 2020-12) for config documents and provgit.yaml.",
    "show": "Show where a resource lands, or what a saved plan would do.",
    "resume": "Resume writes to the network at PATH (or one --element).",
    "suspend": "Suspend writes to the network at PATH (or one --element).",
    "status": "Show the sync status of the network at PATH, derived without contacting elements.",
    "validate": "Validate the config at PATH (default: the current directory).",
    "watch": "Keep the network in sync with PATH (a directory) or a git ref, continuously.",
}


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

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from SUMMARIES, as click would print it from the
        commands themselves (a command without a summary is imported)."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(n) for n in names)
        rows = []
        for name in names:
            summary = SUMMARIES.get(name)
            if summary is None:
                command = self.get_command(ctx, name)
                if command is None or command.hidden:
                    continue
                rows.append((name, command.get_short_help_str(limit)))
            else:
                # Shortened as click shortens a command's help (a stand-in command).
                rows.append((name, click.Command(name, help=summary).get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def main(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        kwargs.setdefault("standalone_mode", False)
        # A run is a short batch job over large, acyclic data: the cyclic GC only
        # costs time (about half of projecting 100,000 users). `watch` collects
        # between its runs itself.
        gc.disable()
        # The process's own command line (`provgit ...`, `python -m provgit`),
        # not a caller's argument list (tests, scripts): it may end at once.
        whole_process = (args[0] if args else kwargs.get("args")) is None
        try:
            code = self._invoke(*args, **kwargs)
            if _KEPT and whole_process:
                _exit_kept(code)
            sys.exit(code)
        finally:
            _KEPT.clear()  # not the whole process: freed as the command returns

    def _invoke(self, *args, **kwargs) -> int:  # type: ignore[no-untyped-def]
        """The command's exit code; click's and provgit's errors said as the
        command line says them (SystemExit)."""
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
        except Exception as e:
            if type(e).__name__ == "NetworkWithoutJournal":  # provgit.journal.location
                click.echo(f"Error: {e}", err=True)
                sys.exit(exitcodes.INVALID)
            if isinstance(e, OSError) and type(e).__name__ == "UnsafeStateDir":
                click.echo(f"error: {e.strerror}.", err=True)  # a bad input: nothing written
                sys.exit(exitcodes.INVALID)
            if isinstance(e, OSError) and type(e).__name__ in _REFUSED_STATE_FILES:
                click.echo(f"error: {e.strerror}; provgit stopped before writing to it.", err=True)
                sys.exit(exitcodes.REFUSED)
            if not _out_of_space(e):
                raise
            click.echo(
                f"error: provgit could not write its files ({e}): the disk is full or a "
                "file size limit was reached. Each file provgit keeps is replaced whole or "
                "in a transaction, so none is left half-written; free space and run again.",
                err=True,
            )
            sys.exit(exitcodes.INVALID)
        return rv if isinstance(rv, int) else exitcodes.OK


# What a command left to the end of the process (`keep_until_exit`).
_KEPT: list[object] = []


def keep_until_exit(*values: object) -> None:
    """Leave `values` (a run's plan, config, observations) to the end of the
    process: the command line ends without freeing them one object at a time
    (at 100,000 users that was ~0.7 CPU s after a first plan's last line, on
    the critical path). Called from another program (`main([...])`, tests),
    they are freed when the command returns, as before."""
    _KEPT.extend(values)


def _exit_kept(code: int) -> NoReturn:
    """End the process now, its output flushed: what the command kept, and
    the interpreter's own teardown, are left to the operating system. Every
    file provgit keeps was written whole (renamed into place or committed)
    before the command returned; only buffered output is left, flushed here."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


# provgit.fsutil's refusals of a state file (by name: not imported for every command).
_REFUSED_STATE_FILES = ("PlantedLink", "StateFileIsDirectory")
_NO_SPACE = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
# SQLite's words for the same (SQLITE_FULL, and SQLITE_IOERR that EFBIG becomes).
_SQLITE_NO_SPACE = ("database or disk is full", "disk I/O error")


def _out_of_space(e: BaseException) -> bool:
    if isinstance(e, OSError):
        return e.errno in _NO_SPACE
    # sqlite3 is not imported here for every command: recognised by its module.
    return type(e).__module__ == "sqlite3" and str(e) in _SQLITE_NO_SPACE


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="provgit", message="%(prog)s %(version)s")
@click.option(
    "--journal-url",
    metavar="URL",
    default=None,
    help="Keep the journal in this PostgreSQL database (postgresql://user@host/db) "
    "instead of the state directory's file; also $PROVGIT_JOURNAL_URL or journal.url "
    "in provgit.yaml.",
)
@click.option(
    "--network",
    metavar="NAME",
    default=None,
    help="One network of a fleet (`provgit fleet watch`): its journal in the PostgreSQL "
    "database of --journal-url / $PROVGIT_JOURNAL_URL / journal.url (e.g. `provgit "
    "--journal-url URL --network east status`).",
)
def main(journal_url: str | None, network: str | None) -> None:
    """Provision a telephony network from git.

    Validate the desired state kept as YAML, plan it against every network
    element, apply it and report sync status and distribution errors.

    Exit codes: 0 ok/in sync, 1 invalid input or usage, 2 changes pending
    (with --detailed-exitcode), 3 refused for safety, 4 applied with errors
    or pending updates left, 5 incomplete (some elements not observed),
    143 stopped by SIGTERM (journaled as interrupted).
    """
    if journal_url:
        from provgit.api import use_journal_url  # only then: --help stays fast

        use_journal_url(journal_url)
    if network:
        from provgit.api import network_schema, use_network

        try:
            network_schema(network)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--network") from None
        use_network(network)
