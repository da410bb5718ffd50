"""What the journal says is still to do, and the alarm that follows from it.

Apply writes the journal; these read it back for the watcher (is a retry run
due? may a resync be skipped?) and for `provgit errors` (the alarm after a
delete). One place, so the reconciler and the CLI cannot disagree about what
"in sync" means.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from provgit.apply import status as st
from provgit.journal import Journal
from provgit.model.settings import Alarms

Record = tuple[str, str, str]  # (element, collection, key)


def down_elements(journal: Journal, elements: Collection[str]) -> set[str]:
    """Elements of `elements` the last run could not bring in sync for want of
    reaching them (offline, stopped, or left mid-apply): their work is still to do."""
    return {
        name
        for name, row in journal.element_statuses().items()
        if name in elements
        and row["status"] != st.SYNC_COMPLETED
        and (
            row["status"] in (st.OFFLINE, st.STOPPED)
            or row["status"].startswith("Synching ")
            or row["state"] != "running"
        )
    }


def unfinished(journal: Journal) -> set[Record]:
    """Records with a pending update or a distribution error."""
    refs = {(p.element, p.collection, p.key) for p in journal.pending()}
    refs.update((e.element, e.collection, e.key) for e in journal.distribution_errors())
    return refs


def all_in_sync(journal: Journal, elements: Iterable[str]) -> bool:
    """Nothing pending, no distribution error, no alarm, and every one of
    `elements` last said `Sync Completed`."""
    statuses = journal.element_statuses()
    return (
        journal.pending_count() == 0
        and journal.distribution_error_count() == 0
        and journal.alarm_level() is None
        and all(statuses.get(n, {}).get("status") == st.SYNC_COMPLETED for n in elements)
    )


def update_alarm(journal: Journal, alarms: Alarms, run_id: int | None = None) -> str | None:
    """Set the data distribution alarm from the error count now; raise or clear
    it as an event when its level changes. Returns the level (None: no alarm)."""
    # Read under the write lock: a run finishing meanwhile cannot make the
    # level stale or raise the same alarm twice.
    with journal.transaction():
        count = journal.distribution_error_count()
        level = st.alarm_level(count, alarms)
        if level == journal.alarm_level():
            return level
        if level is None:
            journal.add_event(
                "alarm_cleared",
                f"data distribution alarm cleared ({count} distribution errors)",
                run_id=run_id,
            )
        else:
            threshold = getattr(alarms, level)
            journal.add_event(
                "alarm_raised",
                f"{level} data distribution alarm: {count} distribution errors (above {threshold})",
                run_id=run_id,
            )
        journal.set_alarm_level(level)
    return level
