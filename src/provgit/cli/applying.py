"""Shared by apply, reconcile and errors: progress while the API applies, and
the result shown. Rendering only; the work happens behind `provgit.api`."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import click

from provgit.api import ApplyResult, Progress
from provgit.api.running import execute as execute
from provgit.render import apply_summary

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import TaskID

MAX_PROBLEMS_SHOWN = 20


class PlainProgress:
    """Lines on stderr, for logs and pipes: start, at most one line per 2 s, end."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}

    def element_started(self, element: str, total: int) -> None:
        self._last[element] = time.monotonic()
        if total:
            click.echo(f"{element}: Synching {element} (0/{total})", err=True)

    def advanced(self, element: str, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._last.get(element, 0.0) >= 2.0:
            self._last[element] = now
            click.echo(f"{element}: Synching {element} ({done}/{total})", err=True)

    def element_finished(self, element: str, status: str) -> None:
        click.echo(f"{element}: {status}", err=True)


class BarProgress:
    """A rich progress bar per element, on a terminal."""

    def __init__(self, console: Console) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichBar

        self.bar = RichBar(
            TextColumn("{task.fields[element]:<16}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.tasks: dict[str, TaskID] = {}
        self.started = False

    def __enter__(self) -> BarProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.started:
            self.bar.stop()

    def element_started(self, element: str, total: int) -> None:
        # Started with the apply, not before: the API call plans first (reconcile,
        # errors retry), and planning shows no bar.
        if not self.started:
            self.bar.start()
            self.started = True
        self.tasks[element] = self.bar.add_task(
            element, total=max(total, 1), element=element, status=f"Synching {element}"
        )

    def advanced(self, element: str, done: int, total: int) -> None:
        self.bar.update(self.tasks[element], completed=done)

    def element_finished(self, element: str, status: str) -> None:
        task = self.tasks[element]
        self.bar.update(task, completed=self.bar.tasks[task].total, status=status)


def _may_be_terminal() -> bool:
    """False only where rich's `Console.is_terminal` is False too (no tty, no
    TTY_COMPATIBLE=1, no FORCE_COLOR): rich is ~40 modules, loaded only where a
    bar may be drawn (a CI log, a pipe or `--format json` never has one)."""
    if os.environ.get("TTY_COMPATIBLE") == "1" or os.environ.get("FORCE_COLOR") is not None:
        return True
    try:
        return sys.stderr.isatty()
    except ValueError:  # closed
        return False


@contextlib.contextmanager
def progress_for(fmt: str) -> Iterator[Progress]:
    """Bars on a terminal, plain lines otherwise; nothing on stdout when JSON is asked."""
    if fmt == "text" and _may_be_terminal():
        from rich.console import Console

        err = Console(stderr=True, highlight=False)
        if err.is_terminal:
            with BarProgress(err) as bar:
                yield bar
            return
    yield PlainProgress()


def warn(lines: Iterable[str]) -> None:
    for line in lines:
        click.echo(line, err=True)


def render(result: ApplyResult, fmt: str, full: bool = False) -> None:
    if fmt == "json":
        click.echo(json.dumps(result.to_json(full=full), indent=1))
        return
    out = click.echo
    if result.refusal:
        out(f"Refused: {result.refusal}")
    width = max((len(e.element) for e in result.elements), default=8)
    for e in result.elements:
        c = e.counts()
        parts = [f"{c['ok']} applied"] + [
            f"{c[k]} {k}" for k in ("failed", "pending", "skipped", "held") if c[k]
        ]
        line = f"{e.element:<{width}}  {e.shown}"
        if e.operations:
            line += f"  ({', '.join(parts)})"
        out(line)
        if e.refusal:
            out(f"  refused: {e.refusal}")
        elif e.error and e.outcome == "unreachable":
            out(f"  {e.error}")
        problems = [op for op in e.operations if op.status != "ok"]
        for op in problems if full else problems[:MAX_PROBLEMS_SHOWN]:
            ref = f"{op.action} {op.collection}/{op.key}"
            tag = (
                f"  [distribution error {op.error_id}]"
                if op.error_id and op.status == "failed"
                else ""
            )
            out(f"  {op.status:<8} {ref}: {op.message or ''}{tag}")
        if not full and len(problems) > MAX_PROBLEMS_SHOWN:
            out(f"  … and {len(problems) - MAX_PROBLEMS_SHOWN} more (--format json shows all)")
    for line in apply_summary.lines(result):
        out(line)
    summary = result.headline()
    if result.alarm:
        summary += f"; {result.alarm} alarm"
    out(summary)
    if result.drift:
        by: dict[str, int] = {}
        for d in result.drift:
            by[d["outcome"]] = by.get(d["outcome"], 0) + 1
        out(
            f"Drift: {len(result.drift)} record(s) changed outside provgit ("
            + ", ".join(f"{n} {k}" for k, n in sorted(by.items()))
            + ")"
            + (
                "; write them with --overwrite-drift, or capture them with `provgit import --drift`"
                if by.get("held")
                else ""
            )
        )
    if result.distribution_errors:
        out("See `provgit errors list`; retry with `provgit errors retry ID`.")


def override_reason(override_window: bool, reason: str | None) -> str | None:
    """The journaled reason for going through a sync window, or None when not
    overriding; an override without a reason is a usage error."""
    if not override_window:
        return None
    if not (reason or "").strip():
        raise click.UsageError("--override-window needs --reason TEXT (it is journaled)")
    return (reason or "").strip()


def stdin_is_tty() -> bool:
    return sys.stdin.isatty()
