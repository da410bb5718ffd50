"""What the journal says is still to do, and the alarm that follows from it.

Apply writes the journal; these read it back for the watcher (is a retry run
due? may a resync be skipped?) and for `provgit errors` (the alarm after a
delete). One place, so the reconciler and the CLI cannot disagree about what
"in sync" means.
"""

from __future__ import annotations

import os
import time
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from provgit.apply import status as st
from provgit.journal import Journal

if TYPE_CHECKING:  # pydantic: a status in sync builds no settings model
    from provgit.model.settings import Alarms

Record = tuple[str, str, str]  # (element, collection, key)


def down_elements(journal: Journal, elements: Collection[str]) -> set[str]:
    """Elements of `elements` the last run could not bring in sync for want of
    reaching them (offline, stopped, or left mid-apply): their work is still to do.

    "Synching" written by a run of another process of this host that is still
    running is not left mid-apply: that run is applying it now. Counted as
    down, a watcher started a retry run beside a `provgit reconcile` and took
    the reconcile's writes, under way, for its own unfinished work (to write
    again from its config, which may be older, or to fail on the element lock)."""
    statuses = journal.element_statuses()
    applying = (
        _applying_elsewhere(journal)
        if any(row["status"].startswith("Synching ") for row in statuses.values())
        else set()
    )
    return {
        name
        for name, row in statuses.items()
        if name in elements
        and row["status"] != st.SYNC_COMPLETED
        and (
            row["status"] in (st.OFFLINE, st.STOPPED, st.TOKEN_REFUSED)
            or (row["status"].startswith("Synching ") and row["run_id"] not in applying)
            or row["state"] != "running"
        )
    }


def _applying_elsewhere(journal: Journal) -> set[int]:
    """Unfinished runs of another live process of this host. A run of another
    host cannot be seen from here: its "Synching" still counts as left."""
    host, me = os.uname().nodename, os.getpid()
    return {
        run["id"]
        for run in journal.unfinished_runs()
        if run["host"] == host and run["pid"] != me and _alive(run["pid"], run["started"])
    }


def _alive(pid: int, started: float) -> bool:
    """Whether the process that started a run at `started` is still running.

    A pid can be reused: a process with that pid that started after the run
    did is not the run's (Linux: its start time from /proc)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: it exists
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        ticks = int(stat.rsplit(")", 1)[1].split()[19])
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
        return boot + ticks / os.sysconf("SC_CLK_TCK") <= started + 1.0
    except (OSError, ValueError, IndexError, StopIteration):
        return True  # cannot tell: leave it be


def dead_runs(journal: Journal, host: str | None = None) -> list[dict[str, object]]:
    """Unfinished runs of this host (default: this machine) whose process is
    gone: nothing is writing for them any more, whatever their rows say."""
    host = host if host is not None else os.uname().nodename
    return [
        run
        for run in journal.unfinished_runs()
        if run["host"] == host and not _alive(run["pid"], run["started"])
    ]


def settle_dead_runs(journal: Journal, host: str, current: int) -> list[int]:
    """Mark `interrupted`, with an event each, the runs of this host that
    never finished and whose process is gone (SIGKILL, power loss, a crash
    loop): "unfinished" forever would be a lie. Runs of other hosts are left
    alone (their processes cannot be seen from here), as are this process's
    own (it says itself how they end). Returns the run ids marked."""
    marked: list[int] = []
    me = os.getpid()
    for run in journal.unfinished_runs():
        if run["id"] == current or run["host"] != host or run["pid"] == me:
            continue
        if _alive(run["pid"], run["started"]):
            continue
        with journal.transaction():
            journal.finish_run(
                run["id"], "interrupted", {"reason": "process gone before the run finished"}
            )
            journal.add_event(
                "interrupted",
                f"run {run['id']} ({run['command']}, pid {run['pid']}, started "
                f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(run['started']))}) "
                "ended without finishing (killed or power lost); the writes it left "
                "open are settled by observing the elements again",
                run_id=run["id"],
            )
        marked.append(run["id"])
    return marked


def settle_removed_elements(
    journal: Journal, elements: Collection[str], run_id: int | None = None
) -> list[str]:
    """Drop the pending updates and distribution errors of elements the config
    no longer has, with an event each: nothing will ever send them, so
    showing them as "pending" (and the network out of sync) would be a lie.
    Returns the elements settled."""
    gone = sorted(
        {p.element for p in journal.pending()}.union(
            e.element for e in journal.distribution_errors()
        )
        - set(elements)
    )
    for name in gone:
        with journal.transaction():
            errors = [e.id for e in journal.distribution_errors() if e.element == name]
            dropped = journal.clear_pending(name)
            journal.delete_distribution_errors(errors)
            journal.add_event(
                "element_removed",
                f"element {name} is no longer in the config: {dropped} pending update(s) "
                f"and {len(errors)} distribution error(s) of it dropped",
                element=name,
                run_id=run_id,
            )
    return gone


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
