"""`provgit schema`: write the JSON Schemas editors use for config files."""

from __future__ import annotations

from pathlib import Path

import click

from provgit import exitcodes
from provgit.schema import check as check_schemas
from provgit.schema import rendered


@click.command("schema")
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("schemas"),
    show_default=True,
    help="Directory to write the schema files into.",
)
@click.option(
    "--check",
    is_flag=True,
    help="Write nothing; exit 1 when a file in --out differs from what the models generate "
    "(status.schema.json: from the one provgit ships), or a *.schema.json there is not a valid "
    "schema.",
)
def command(out: Path, check: bool) -> int:
    """Write JSON Schemas (draft 2020-12) for config documents and provgit.yaml.

    Point an editor's YAML language server at them for completion and inline
    errors; `provgit validate` still checks what a schema cannot (references,
    uniqueness). It also writes `status.schema.json`, the status report's
    schema as provgit ships it.
    """
    files = rendered()
    if check:
        problems = check_schemas(out)
        for line in problems:
            click.echo(line, err=True)
        if problems:
            return exitcodes.INVALID
        click.echo(f"schemas in {out} are up to date and valid")
        return exitcodes.OK
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (out / name).write_text(text, encoding="utf-8")
    except OSError as e:
        click.echo(f"error: cannot write schemas to {out}: {e.strerror or e}", err=True)
        return exitcodes.INVALID
    for name in files:
        click.echo(f"wrote {out / name}")
    return exitcodes.OK
