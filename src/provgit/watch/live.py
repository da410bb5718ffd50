"""The live status: what /status.json, the feed and the metrics say about the watcher.

Everything shown that is not read from the journal lives here: the run going
on (and each element's progress), the last run, the refused config, the held
removals and the drift the last runs found. Every change `touch`es a version
number; the document is rebuilt only when it moved (or after DOC_TTL).
"""

from __future__ import annotations

import contextlib
import copy
import threading
import time
from collections.abc import Iterator
from typing import Any

from provgit.api.watching import (
    SYNC_COMPLETED,
    SYNC_INCOMPLETE,
    ApplyResult,
    Desired,
    Journal,
    StageCache,
    database_errors,
    status_class,
    synching,
)
from provgit.watch import reports
from provgit.watch.drift_policy import Classified, describe
from provgit.watch.logs import Log
from provgit.watch.metrics import Metrics
from provgit.watch.options import MAX_PROBLEMS, DriftMode, WatchOptions, iso
from provgit.watch.replicas import Replica, replica_json

DOC_TTL = 1.0
# What a replica cut off from the shared journal says of every element and
# resource: it stopped writing and cannot read what their holders did since.
CUT_OFF_DETAIL = (
    "this replica is cut off from the shared journal: it stopped writing and "
    "cannot vouch for this element (what its holder did since is unknown here)"
)


def unvouched(doc: dict[str, Any]) -> dict[str, Any]:
    """`doc` (not changed) as a replica cut off from the journal shows it:
    nothing in sync, every element and resource unknown. Its last reading
    would say "Sync Completed" for elements another replica may have written
    since, or that a commit it cannot see has not reached."""
    doc = copy.deepcopy(doc)
    doc["in_sync"], doc["status"] = False, SYNC_INCOMPLETE
    not_known = {"status": SYNC_INCOMPLETE, "class": status_class(SYNC_INCOMPLETE)}
    for entry in doc["elements"].values():
        entry.update(not_known, detail=CUT_OFF_DETAIL)
        if "sync" in entry:
            entry["sync"] = "unknown"
    for resource in doc["resources"]:
        resource.update(not_known)
        if "state" in resource:
            resource["state"] = "unknown"
        for landing in resource.get("elements", {}).values():
            landing.update(state="unknown", status=SYNC_INCOMPLETE)
    counts = doc["counts"]
    counts["elements_not_completed"] = counts["elements"]
    counts["resources_not_completed"] = counts["resources"]
    if "worst" in doc:
        doc["worst"] = {"state": "unknown", "status": SYNC_INCOMPLETE}
    return doc


class LiveStatus:
    def __init__(
        self,
        options: WatchOptions,
        source: str | None,
        cache: StageCache,
        metrics: Metrics,
        log: Log,
    ) -> None:
        """`source`: what git mode follows (`repo@ref`); None in directory mode."""
        self.o = options
        self.git_source = source
        self.cache = cache
        self.metrics = metrics
        self.log = log
        self.version = 0
        self.alive = True  # the loop is running (/healthz)
        self.running: dict[str, Any] | None = None
        self.progress: dict[str, str] = {}
        self.timings: dict[str, float] = {}
        self.last_run: dict[str, Any] | None = None
        self.refused: dict[str, Any] | None = None
        self.held: dict[str, Any] | None = None
        self.drift: dict[str, Any] | None = None
        self._drift_sig: frozenset[tuple[str, str, str, str]] = frozenset()
        self._drift_elements: set[str] = set()
        self._doc: tuple[float, int, dict[str, Any]] | None = None
        self._doc_lock = threading.Lock()
        self._doc_journal: Journal | None = None
        # /metrics' own: a scrape (on the event loop) must not wait for a
        # document's build, which a locked or slow journal holds up for long.
        self._rows_lock = threading.Lock()
        self._rows_journal: Journal | None = None
        self.replica: Replica | None = None  # replicas on a shared journal

    def touch(self) -> None:
        self.version += 1

    # ---- the run going on ---------------------------------------------------------

    def begin_run(self, reason: str) -> None:
        self.running = {"reason": reason, "started": iso(time.time())}
        self.progress = {}
        self.timings = {}
        self.metrics.running.set(1)
        self.touch()

    def end_run(
        self,
        reason: str,
        outcome: str,
        seconds: float,
        result: ApplyResult | None,
        commit: str | None,
    ) -> None:
        self.metrics.running.set(0)
        self.metrics.run_finished(reason, outcome, seconds, result)
        self.running = None
        self.last_run = {
            "reason": reason,
            "outcome": outcome,
            "seconds": round(seconds, 3),
            "finished": iso(time.time()),
            "commit": commit,
        }
        self.touch()
        self.log.info(
            "run_finished",
            reason=reason,
            outcome=outcome,
            seconds=round(seconds, 3),
            stages=self.timings,
        )

    @contextlib.contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        """Seconds per stage of the current run, logged with its end (what dominates)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] = round(
                self.timings.get(stage, 0.0) + time.perf_counter() - started, 4
            )

    # ---- the document ---------------------------------------------------------------

    def document(
        self, desired: Desired | None, applied_commit: str | None, drift_mode: DriftMode
    ) -> dict[str, Any]:
        """The live document. The server calls it off the event loop (deriving
        the status of a large network takes a while), so it reads the journal
        through its own connection, one caller at a time."""
        with self._doc_lock:
            return self._document(desired, applied_commit, drift_mode)

    def _document(
        self, desired: Desired | None, applied_commit: str | None, drift_mode: DriftMode
    ) -> dict[str, Any]:
        now = time.monotonic()
        if self._doc is not None and self._doc[1] == self.version and now - self._doc[0] < DOC_TTL:
            return self._doc[2]
        git = self.git_source is not None
        doc: dict[str, Any]
        cut_off = self.replica is not None and not self.replica.healthy
        try:
            if cut_off and self._doc is not None:
                # Not read at all: a read waits out the pool's reconnection
                # (10 s), longer than a client waits for the page.
                doc = self._doc[2]
            else:
                doc = self._journal_document(desired, applied_commit)
        except database_errors():
            if self._doc is None:
                raise
            # Cut off from the journal: the last document, saying so (watch.replica).
            doc, cut_off = self._doc[2], True
        if cut_off:
            doc = unvouched(doc)
        if desired is None and doc["in_sync"]:
            # No config read yet, or every one refused since the start: nothing
            # was compared with the elements, so nothing is known to be in sync
            # (a network that never validated would say "Sync Completed").
            doc["in_sync"] = False
            doc["status"] = "Sync Incomplete"
        doc["watch"] = {
            "mode": "git" if git else "directory",
            "source": self.git_source if git else str(self.o.config),
            "applied_commit": applied_commit,
            "config_commit": desired.source.commit if desired else None,
            "running": None
            if self.running is None
            else {**self.running, "elements": dict(self.progress)},
            "last_run": self.last_run,
            "refused": self.refused,
            "held_removals": self.held,
            "drift": self.drift,
            "drift_mode": drift_mode,
        }
        if self.replica is not None:
            doc["watch"]["replica"] = replica_json(self.replica.snapshot())
        self._doc = (now, self.version, doc)
        return doc

    def _journal_document(
        self, desired: Desired | None, applied_commit: str | None
    ) -> dict[str, Any]:
        git = self.git_source is not None
        if self._doc_journal is None:
            self._doc_journal = Journal.open(self.o.state_dir, patient=False)
        doc = reports.document(
            self._doc_journal,
            network=desired.state.settings.network if desired else None,
            state=desired.state if desired else None,
            commit=applied_commit if git else None,
            config_path=self.o.subdir if git else str(self.o.config),
            # Derived from what the watcher holds in memory (report.derive).
            target=desired.target if desired else None,
            observations=dict(self.cache.observations),
            plans=self.cache.last_plans(desired) if desired else None,
        )
        if self.replica is not None:
            self._holders_say(doc, self._doc_journal.element_statuses())
        return doc

    def _holders_say(self, doc: dict[str, Any], rows: dict[str, dict[str, Any]]) -> None:
        """Replicas: an element another replica holds is as its holder last
        journaled it (this replica's reading of it, if any, is old), and each
        element names its holder."""
        assert self.replica is not None
        snap = self.replica.snapshot()
        for name, entry in doc["elements"].items():
            holder = entry["holder"] = snap.holders.get(name)
            row = rows.get(name)
            if holder is None or holder == snap.replica or row is None:
                continue
            for key in ("sync", "observed", "read_only", "records_not_deleted"):
                entry.pop(key, None)  # from this replica's own (old) reading
            entry.update(
                {k: row[k] for k in ("status", "state", "run_id", "detail", "time")},
                **{"class": status_class(row["status"])},
            )
        if any(e["status"] != SYNC_COMPLETED for e in doc["elements"].values()):
            doc["in_sync"], doc["status"] = False, SYNC_INCOMPLETE

    def element_rows(self) -> dict[str, dict[str, Any]]:
        """Every element's status as the journal holds it (for /metrics)."""
        with self._rows_lock:
            if self._rows_journal is None:
                self._rows_journal = Journal.open(self.o.state_dir, patient=False)
            return self._rows_journal.element_statuses()

    def close(self) -> None:
        with self._doc_lock:  # the server is down: no document is being built
            if self._doc_journal is not None:
                self._doc_journal.close()
                self._doc_journal = None
        with self._rows_lock:
            if self._rows_journal is not None:
                self._rows_journal.close()
                self._rows_journal = None

    # ---- drift ----------------------------------------------------------------------

    def note_drift(self, c: Classified, mode: DriftMode) -> None:
        """The drift a resync or retry found: shown, counted, logged once."""
        sig = c.signature()
        self._drift_elements.update(c.drift)
        for el in self._drift_elements:
            self.metrics.drift.labels(el).set(len(c.drift.get(el, [])))
        if not c.drift:
            if self.drift is not None:
                self.log.info("drift_gone")
            self.drift, self._drift_sig = None, frozenset()
            self.touch()
            return
        corrected = mode == "correct"
        proposed = self.drift.get("proposed") if self.drift is not None else None
        self.drift = {
            "time": iso(time.time()),
            "records": c.drift_count,
            "corrected": corrected,
            # propose: the branch of the last proposal, until a newer one is made.
            **({"proposed": proposed} if proposed and mode == "propose" else {}),
            "elements": {
                el: [
                    {
                        "action": op.action,
                        "collection": op.collection,
                        "key": op.key,
                        "fields": sorted(op.changes),
                    }
                    for op in ops[:MAX_PROBLEMS]
                ]
                for el, ops in c.drift.items()
            },
        }
        self.touch()
        if sig == self._drift_sig and not corrected:
            return  # the same drift was reported already
        self._drift_sig = sig
        # The journal events were written by drift_detect.review (new items only).
        for el, ops in sorted(c.drift.items()):
            self.log.warning(
                "drift",
                element=el,
                records=len(ops),
                corrected=corrected,
                message=describe(el, ops, mode),
            )

    def note_proposal(
        self, branch: str, created: bool, remote: str | None, push_error: str | None
    ) -> None:
        """`--drift propose`: the branch the drift shown is proposed on."""
        if self.drift is not None:
            self.drift["proposed"] = {
                "branch": branch,
                "created": created,
                "remote": remote,
                "pushed": remote is not None and push_error is None,
            }
        self.touch()

    def note_run_drift(self, result: ApplyResult) -> None:
        """Drift a config run found (an edit made just before it): logged, and
        shown in the live status until a resync sees it again or gone."""
        if not result.drift:
            return
        by_element: dict[str, list[dict[str, Any]]] = {}
        for d in result.drift:
            by_element.setdefault(d["element"], []).append(d)
        for el, found in sorted(by_element.items()):
            if any(d["new"] for d in found):
                self.log.warning(
                    "drift",
                    element=el,
                    records=len(found),
                    corrected=all(d["outcome"] == "corrected" for d in found),
                    held=sum(d["outcome"] == "held" for d in found),
                )
        left = [d for d in result.drift if d["outcome"] != "corrected"]
        if not left:
            return
        action = {"changed": "modify", "missing": "add", "unexpected": "delete"}
        self.drift = {
            "time": iso(time.time()),
            "records": len(left),
            "corrected": False,
            "elements": {
                el: [
                    {
                        "action": action.get(d["change"], "modify"),
                        "collection": d["collection"],
                        "key": d["key"],
                        "fields": d["fields"],
                    }
                    for d in left
                    if d["element"] == el
                ][:MAX_PROBLEMS]
                for el in sorted({d["element"] for d in left})
            },
        }
        self.touch()


class Progress:
    """Apply progress into the log and the live status (never record values)."""

    def __init__(self, live: LiveStatus, log: Log) -> None:
        self.live = live
        self.log = log

    def element_started(self, element: str, total: int) -> None:
        if total:
            self.live.progress[element] = f"{synching(element)} (0/{total})"
            self.log.info("element_syncing", element=element, operations=total)
        self.live.touch()

    def advanced(self, element: str, done: int, total: int) -> None:
        self.live.progress[element] = f"{synching(element)} ({done}/{total})"
        self.live.touch()

    def element_finished(self, element: str, status: str) -> None:
        self.live.progress[element] = status
        self.live.touch()
