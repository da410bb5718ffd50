"""The end of an element's run and of the whole run: statuses, events, alarms.

Journal writes only; what they say was decided by apply/outcomes.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from provgit.apply import drift_detect as drift
from provgit.apply import outcomes as oc
from provgit.apply import status as st
from provgit.apply.ledger import Ledger
from provgit.apply.options import ApplyOptions
from provgit.apply.resources import ResourceTally
from provgit.apply.result import ApplyResult, removed_resources
from provgit.apply.standing import update_alarm
from provgit.apply.work import ElementWork
from provgit.drivers.base import FencedError
from provgit.model.settings import Settings


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


async def close_element(
    ledger: Ledger,
    w: ElementWork,
    tally: ResourceTally,
    options: ApplyOptions,
    found: drift.Review,
) -> None:
    """An element is done: its status, its resources, its pending updates and
    errors made stale, the drift its writes corrected, one event."""
    oc.conclude(w)
    if isinstance(w.down, FencedError):
        # Lost the lease mid-run: the element's new holder owns its status,
        # its pending updates and errors from now on; this replica writes none.
        w.result.status, w.result.state = f"{w.plan.element}: lease lost", "lost_lease"
        w.result.error = w.down.message
        return
    name, journal, run_id = w.plan.element, ledger.journal, ledger.run_id
    counts = w.result.counts()
    rows = tally.element_rows(w.result)
    fresh = options.fresh and options.only is None
    in_plan = {(op.collection, op.key) for op in w.plan.operations}
    status = w.result.status
    overwritten = [
        (c, k)
        for (e, c, k) in found.found
        if e == name and getattr(w.outcomes.get((c, k)), "status", None) == "ok"
    ]
    written = [r.revision for r in w.result.operations if r.status == "ok"]

    def commit() -> None:
        # Relaxed: the run's last commit (in `finish_run`) makes it durable, and
        # a status lost to a power cut is derived again by the next run.
        with journal.relaxed(), journal.transaction():
            if rows:
                journal.set_resource_statuses(rows, run_id, history=False)
            if fresh:
                # Observed just now and planned with nothing to do: any
                # pending update or error of a record not in the plan is over.
                stale_p = [
                    (p.collection, p.key)
                    for p in journal.pending(name)
                    if (p.collection, p.key) not in in_plan
                ]
                stale_e = [
                    (e.collection, e.key)
                    for e in journal.distribution_errors(element=name)
                    if (e.collection, e.key) not in in_plan
                ]
                journal.clear_pending(name, stale_p)
                journal.clear_distribution_errors(name, stale_e)
            ledger.set_status(name, status, w.result.state, w.result.error)
            if overwritten:
                drift.corrected(journal, name, overwritten, run_id)
            drift.set_baseline(journal, name, w.plan.observed_revision, written)
            if w.ops or w.result.outcome != "in_sync":
                ok = w.result.outcome in ("applied", "in_sync")
                c = counts
                journal.add_event(
                    "sync_completed" if ok else "sync_failed",
                    f"{name}: {status} ({c['ok']} applied, {c['failed']} failed, "
                    f"{c['pending']} pending, {c['skipped']} skipped, {c['held']} held)",
                    element=name,
                    run_id=run_id,
                )

    await ledger.call(commit)


def _refusal_statuses(ledger: Ledger, result: ApplyResult, work: list[ElementWork]) -> None:
    """Refusals: statuses and events saying what was not applied, and why."""
    journal = ledger.journal
    if result.refusal is not None:
        # Nothing was applied: an element with work says so, one not
        # observed says why; the others keep what they said before.
        for w in work:
            if w.result.outcome == "refused" or not w.plan.observed:
                ledger.set_status(
                    w.plan.element,
                    w.result.status,
                    w.result.state,
                    w.result.refusal or w.result.error or result.refusal,
                )
    for w in work:
        if w.result.outcome == "refused" and w.result.refusal:
            journal.add_event(
                "refused", w.result.refusal, element=w.plan.element, run_id=ledger.run_id
            )
    if result.refusal is not None and not any(w.result.refusal for w in work):
        journal.add_event("refused", result.refusal, run_id=ledger.run_id)


def _resource_statuses(
    ledger: Ledger,
    result: ApplyResult,
    work: list[ElementWork],
    tally: ResourceTally,
    options: ApplyOptions,
) -> None:
    """Where each resource of the run ends, and the ones left behind by others."""
    journal, run_id = ledger.journal, ledger.run_id
    for (kind, resource), els in sorted(removed_resources(result.elements).items()):
        # It leaves the status (which lists what the config has); the feed
        # says where it went.
        journal.add_event(
            "resource_removed",
            f"{kind}/{resource} removed from {', '.join(els)}",
            resource=f"{kind}/{resource}",
            run_id=run_id,
        )
    rows = tally.final_rows()
    for kind, resource, final, done, total in rows:
        if final != st.SYNC_COMPLETED:
            result.resources[f"{kind}/{resource}"] = {
                "status": final,
                "completed": done,
                "total": total,
            }
    if rows:
        journal.set_resource_statuses(rows, run_id)
    # Resources left incomplete by earlier runs and untouched now are in
    # sync, if every element was seen.
    if (
        options.fresh
        and options.only is None
        and result.refusal is None
        and all(w.plan.observed for w in work)
    ):
        leftover = [
            (r["kind"], r["resource"], st.SYNC_COMPLETED, r["total"], r["total"])
            for r in journal.resource_statuses(not_completed_only=True)
            if (r["kind"], r["resource"]) not in tally.targets
        ]
        journal.set_resource_statuses(leftover, run_id)


def finish_run(
    ledger: Ledger,
    result: ApplyResult,
    work: list[ElementWork],
    tally: ResourceTally,
    options: ApplyOptions,
    settings: Settings,
    also: Callable[[], None] | None = None,
) -> ApplyResult:
    """The run's last commit: refusals, resources, counts, the alarm, the end
    (and `also`'s journal writes, in the same commit)."""
    journal = ledger.journal
    result.elements = [w.result for w in work]
    with journal.transaction():
        _refusal_statuses(ledger, result, work)
        _resource_statuses(ledger, result, work, tally, options)
        result.distribution_errors = journal.distribution_error_count()
        result.pending_updates = journal.pending_count()
        result.alarm = update_alarm(journal, settings.alarms, ledger.run_id)
        result.finished = now_iso()
        if also is not None:
            also()
        journal.finish_run(
            ledger.run_id,
            "refused" if result.refusal else result.overall,
            {"counts": result.counts(), "exit_code": result.exit_code()}
            | ({"left_out": result.left_out} if result.left_out else {}),
        )
    return result
