"""`provgit --help` lists every command without importing the command modules."""

from __future__ import annotations

import subprocess
import sys

import click
from click.testing import CliRunner

from provgit.cli import COMMAND_MODULES, SUMMARIES, main


def test_every_command_has_its_own_summary_in_the_help_list() -> None:
    ctx = click.Context(main)
    assert set(SUMMARIES) == {m.rstrip("_") for m in COMMAND_MODULES}
    for name in main.list_commands(ctx):
        command = main.get_command(ctx, name)
        assert command is not None
        for limit in (30, 45, 80, 200):
            stand_in = click.Command(name, help=SUMMARIES[name])
            assert stand_in.get_short_help_str(limit) == command.get_short_help_str(limit), name


def test_help_lists_the_commands_as_click_would() -> None:
    ctx = click.Context(main)
    lazy, eager = ctx.make_formatter(), ctx.make_formatter()
    main.format_commands(ctx, lazy)
    click.Group.format_commands(main, ctx, eager)
    assert lazy.getvalue() == eager.getvalue()
    assert "  plan " in lazy.getvalue()
    assert "Commands:" in CliRunner().invoke(main, ["--help"]).output


def test_help_imports_no_command_module() -> None:
    code = (
        "import sys\n"
        "from provgit.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('provgit.cli.')))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip().splitlines()[-1] == "[]"
    assert "Commands:" in r.stdout
