"""`provgit validate`: check the config and say exactly where every problem is."""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import click

from provgit import exitcodes
from provgit.cli.common import config_path_argument, read_source, state_dir_for, state_dir_option
from provgit.diagnostics import Diagnostic
from provgit.model.findings import resolve
from provgit.render import diagnostics as render
from provgit.secret_refs import check_references
from provgit.validate import validate_source
from provgit.validate.cache import Verdict, VerdictStore, recording_reads


@click.command("validate")
@config_path_argument
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "github"]),
    default="text",
    show_default=True,
    help="github prints workflow-command annotations for pull requests.",
)
@click.option("--no-cache", is_flag=True, help="Parse every file, ignoring the parse cache.")
@click.option(
    "--secrets",
    is_flag=True,
    help="Also check that every secret reference resolves here (for a deploy job).",
)
@state_dir_option
def command(path: Path, fmt: str, no_cache: bool, secrets: bool, state_dir: str | None) -> int:
    """Validate the config at PATH (default: the current directory).

    Every problem is reported, each with file:line:col, the resource it
    concerns, what is wrong and how to fix it. Exit 0 when valid, 1 when not.
    With --secrets, a secret reference that does not resolve here (an unset
    variable, an unreadable file) is a problem too; its value is never shown.
    """
    started = time.perf_counter()
    source = read_source(path)
    cache = None if no_cache else state_dir_for(path, state_dir) / "cache"
    # Nothing changed since the last run: answer from the stored verdict
    # (see provgit.validate.cache) instead of rebuilding every model.
    store = None if cache is None else VerdictStore(cache)
    # Secrets depend on the environment, not the files: never a stored verdict.
    result = None if store is None or secrets else store.get(source)
    if result is None:
        traced, reads = recording_reads(source)
        full = validate_source(traced, cache)
        result = Verdict(
            full.diagnostics, full.state.counts(), full.files, full.parsed, full.cached
        )
        if store is not None:
            store.put(source, result, reads)
        if secrets and full.ok:
            # Where every reference is written; the value is never read out.
            found = resolve(check_references(full.state), full.state.sources)
            result = dataclasses.replace(
                result, diagnostics=sorted(result.diagnostics + found, key=Diagnostic.sort_key)
            )
    elapsed = time.perf_counter() - started
    counts = {k: v for k, v in result.counts.items() if v}
    if fmt == "json":
        click.echo(render.as_json(result.diagnostics, {"counts": counts, "files": result.files}))
    elif fmt == "github":
        out = render.as_github(result.diagnostics)
        if out:
            click.echo(out)
    else:
        if result.diagnostics:
            click.echo(render.as_text(result.diagnostics))
        errors = sum(d.severity == "error" for d in result.diagnostics)
        summary = ", ".join(f"{n} {k}" for k, n in counts.items()) or "no resources"
        if errors:
            click.echo(
                f"\n{errors} problem(s) in {result.files} file(s); nothing was changed.",
                err=False,
            )
        else:
            click.echo(
                f"valid: {result.files} file(s), {summary} "
                f"({elapsed:.2f}s, {result.parsed} parsed, {result.cached} from cache)",
                file=sys.stdout,
            )
    return exitcodes.OK if result.ok else exitcodes.INVALID
