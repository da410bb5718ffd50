"""Shared by apply, reconcile and errors: compose connect -> apply -> report, and show it.

Composition and rendering only; the work happens in `provgit.apply`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichBar

from provgit import exitcodes
from provgit.apply import ApplyOptions, ApplyResult, apply_plan
from provgit.apply.progress import Progress
from provgit.compose import connect, remember_writes
from provgit.journal import Journal, JournalError
from provgit.journal.db import FILENAME
from provgit.model.state import DesiredState
from provgit.plan import Plan
from provgit.publish import write_status
from provgit.render import apply_summary

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

    def __enter__(self) -> BarProgress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def element_started(self, element: str, total: int) -> None:
        self.tasks[element] = self.bar.add_task(
            element, total=max(total, 1), element=element, status=f"Synching {element}"
        )

    def advanced(self, element: str, done: int, total: int) -> None:
        self.bar.update(self.tasks[element], completed=done)

    def element_finished(self, element: str, status: str) -> None:
        task = self.tasks[element]
        self.bar.update(task, completed=self.bar.tasks[task].total, status=status)


def open_journal(state_dir: Path) -> Journal:
    try:
        return Journal.open(state_dir)
    except JournalError as e:
        raise click.ClickException(str(e)) from None


def existing_journal(config: Path, state_dir: Path) -> Journal:
    """The journal of past runs; reading commands must not create state (a
    mistyped path would otherwise answer "no errors")."""
    path = state_dir / FILENAME
    if not path.is_file():
        raise click.ClickException(
            f"no runs recorded for {config} (no journal in {state_dir}); "
            "run `provgit reconcile` or `provgit apply` first"
        )
    try:
        return Journal(path)
    except JournalError as e:
        raise click.ClickException(str(e)) from None


async def execute(
    plan: Plan,
    state: DesiredState,
    config_root: Path,
    state_dir: Path,
    journal: Journal,
    options: ApplyOptions,
    progress: Progress,
) -> ApplyResult:
    network = connect(state, state_dir, config_root, [e.element for e in plan.elements])
    # SIGTERM (a service manager stopping us) cancels the run: the engine
    # journals it as interrupted, and what is left is planned again next time.
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    stopped: list[int] = []

    def stop() -> None:
        stopped.append(signal.SIGTERM)
        if task is not None:
            task.cancel()

    handled = False
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGTERM, stop)
        handled = True
    try:
        result = await apply_plan(
            plan,
            network.drivers,
            journal,
            state.settings,
            state_dir,
            options,
            progress,
            network.unavailable,
        )
        remember_writes(state_dir, plan, result)
        return result
    except asyncio.CancelledError:
        if not stopped:
            raise
        run = journal.runs(1)
        which = f"run {run[0]['id']}" if run else "the run"
        raise exitcodes.Interrupted(
            f"Interrupted: {which} was stopped by SIGTERM before it finished; it is journaled "
            "as interrupted, and the next run plans what is left again."
        ) from None
    finally:
        if handled:
            loop.remove_signal_handler(signal.SIGTERM)
        await network.close()


async def execute_with_progress(
    plan: Plan,
    state: DesiredState,
    config_root: Path,
    state_dir: Path,
    journal: Journal,
    options: ApplyOptions,
    fmt: str,
) -> ApplyResult:
    """Bars on a terminal, plain lines otherwise; nothing on stdout when JSON is asked."""
    err = Console(stderr=True, highlight=False)
    if fmt == "text" and err.is_terminal:
        with BarProgress(err) as bar:
            return await execute(plan, state, config_root, state_dir, journal, options, bar)
    return await execute(plan, state, config_root, state_dir, journal, options, PlainProgress())


def report(
    result: ApplyResult,
    journal: Journal,
    directory: Path,
    state: DesiredState | None = None,
    config_root: Path | None = None,
) -> Path | None:
    try:
        return write_status(directory, result, journal, state=state, config_root=config_root)
    except OSError as e:
        click.echo(f"warning: cannot write the status report to {directory}: {e}", err=True)
        return None


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
        line = f"{e.element:<{width}}  {e.status}"
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
    c = result.counts()
    summary = (
        f"{result.overall}: {c['ok']} applied, {c['failed']} failed, {c['pending']} pending, "
        f"{c['skipped']} skipped, {c['held']} held; "
        f"{result.distribution_errors} distribution error(s), "
        f"{result.pending_updates} pending update(s)"
    )
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


def stdin_is_tty() -> bool:
    return sys.stdin.isatty()
