"""Applying a plan: connect -> apply -> remember the writes -> reports, and the journal.

Internal to the API (`provgit.api`); the work itself happens in `provgit.apply`.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from dataclasses import dataclass, field, replace
from pathlib import Path

from provgit.api.errors import JournalUnavailable
from provgit.api.journals import existing_journal as existing_journal
from provgit.api.journals import open_journal as open_journal
from provgit.api.network import connect, remember_writes
from provgit.api.saved_feed import mark_said, note_full_reads, unsaid
from provgit.apply import ApplyOptions, ApplyResult, apply_plan
from provgit.apply.progress import Progress
from provgit.exitcodes import Interrupted
from provgit.journal import Journal
from provgit.journal.schema import JournalLost
from provgit.model.state import DesiredState
from provgit.observe import ObservationCache
from provgit.plan import Plan
from provgit.publish import reports_dir, write_status


@dataclass(frozen=True)
class Applied:
    """What an apply (or reconcile) did: the engine's result, where the status
    report went (None: not written, or not asked for) and the warnings on the
    way (a report that could not be written, say), each one sentence."""

    result: ApplyResult
    status_file: Path | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """What `provgit apply` exits with for it (0 in sync, 3 refused, 4 errors left)."""
        return self.result.exit_code()


async def execute(
    plan: Plan,
    state: DesiredState,
    config_root: Path,
    state_dir: Path,
    journal: Journal,
    options: ApplyOptions,
    progress: Progress,
) -> ApplyResult:
    """Apply `plan` to the elements it names and keep the observation cache true.

    SIGTERM (a service manager stopping us) cancels the run: the engine
    journals it as interrupted, `Interrupted` is raised, and what is left is
    planned again next time."""
    # The new homes of its moves too, read (never written) before an old
    # home lets a user go (apply/moves.py).
    homes = {t for e in plan.elements for m in e.moves for t in m.to}
    network = connect(
        state, state_dir, config_root, [*(e.element for e in plan.elements), *sorted(homes)]
    )
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
        planned = {e.element for e in plan.elements}
        left_out = tuple(n for n in sorted(state.elements) if n not in planned)
        options = replace(options, left_out=left_out)
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
        raise Interrupted(
            f"Interrupted: {which} was stopped by SIGTERM before it finished; it is journaled "
            "as interrupted, and the next run plans what is left again."
        ) from None
    except JournalLost as e:
        raise JournalUnavailable(
            f"the run stopped: {e}. No element was written without its intent journaled; "
            "writes whose outcome is not recorded are settled by the next run"
        ) from None
    finally:
        if handled:
            loop.remove_signal_handler(signal.SIGTERM)
        await network.close()


def write_report(
    result: ApplyResult,
    journal: Journal,
    state: DesiredState,
    config_root: Path,
    state_dir: Path,
    warnings: list[str],
) -> Path | None:
    """Every report of a finished run; the path of `status.json`, or None (said
    in `warnings`) when the reports directory cannot be written."""
    directory: Path | str = state.settings.reports.dir
    try:
        directory = reports_dir(state, config_root, state_dir)
        return write_status(
            directory,
            result,
            journal,
            state=state,
            config_root=config_root,
            warn=lambda message: warnings.append(f"warning: {message}"),
        )
    except OSError as e:
        warnings.append(f"warning: cannot write the status report to {directory}: {e}")
        return None


async def apply_and_report(
    handed: Plan | list[Plan],
    state: DesiredState,
    config_root: Path,
    state_dir: Path,
    options: ApplyOptions,
    progress: Progress,
    report: bool = True,
) -> Applied:
    """Open the journal, apply, write the reports (when `report`), close.
    `handed` as a one-plan list: the caller keeps no other reference, and the
    plan is let go before the reports (a first rollout's report held it beside
    its own reading of the target: the run's peak)."""
    plan = handed.pop() if isinstance(handed, list) else handed
    journal = open_journal(state_dir)
    saved = not options.fresh
    try:
        if saved and options.feed_missed:
            # A saved plan says what its full read found once, however often applied.
            options = replace(options, feed_missed=unsaid(plan, journal, options.feed_missed))
        result = await execute(plan, state, config_root, state_dir, journal, options, progress)
        if saved:
            mark_said(plan, journal, options.feed_missed)
        warnings: list[str] = note_full_reads(plan, state_dir) if saved else []
        del plan
        # The report reads the stored target: a memo written behind the plan
        # while this run applied (`Config.reconcile`) is waited for here.
        from provgit.api.planning import memo_written_now

        memo_written_now()
        written = (
            write_report(result, journal, state, config_root, state_dir, warnings)
            if report
            else None
        )
    finally:
        journal.close()
    if options.feed_missed:
        # Reviewed as drift and journaled by this apply: not said again.
        cache = ObservationCache(state_dir)
        for name in options.feed_missed:
            with contextlib.suppress(OSError):
                cache.forget_missed(name)
    return Applied(result, written, warnings)
