"""`watch --drift propose`: when the watcher proposes drift, and what it shows.

The proposal itself (what the elements hold written into the YAML and
committed to `provgit/drift/<element>-<hash>`, the push, the journal's drift
items marked proposed) is importing/drift_proposal.py, reached through
compose; this is the watcher's side: a resync's drift proposed once (the same
drift at the same revisions is not even analysed again), pushes that failed
retried on every run, the live status and the metrics kept up to date.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from provgit.api.watching import (
    PROPOSAL_SHOWN,
    DriftError,
    Observation,
    Pushed,
    close_proposal,
    drop_local_branch,
    proposal_closed,
    propose_drift,
    push_drift_branch,
    record_proposal,
)
from provgit.watch.config_tracker import ConfigTracker
from provgit.watch.drift_policy import Classified
from provgit.watch.journals import Journals
from provgit.watch.live import LiveStatus
from provgit.watch.logs import Log
from provgit.watch.options import WatchOptions

Signature = frozenset[tuple[str, str, str, str, int | None]]
Ref = tuple[str, str, str]  # (element, collection, key)
# journal meta: a drift branch that reached `origin` (only such a branch can
# be closed there; one whose push failed is still being retried).
PUSHED = "drift_pushed/"


class Proposer:
    """The watcher's side: when to propose, pushes to retry, what to show."""

    def __init__(
        self,
        options: WatchOptions,
        config: ConfigTracker,
        live: LiveStatus,
        journals: Journals,
        log: Log,
    ) -> None:
        self.o = options
        self.config = config
        self.live = live
        self.journals = journals
        self.log = log
        # The drift (records at their revisions) last proposed: a resync that
        # finds exactly it again does not even analyse.
        self._sig: Signature | None = None
        self._unpushed: set[str] = set()  # branches whose push failed: retried each run

    async def review(self, c: Classified, observed: Mapping[str, Observation]) -> set[Ref]:
        """A resync's drift (propose mode): proposed on a branch, once. Returns
        the records of closed (rejected) proposals: the run overwrites them."""
        await self.retry_pushes()
        rejected = await self.close_rejected()
        if rejected:
            # The config wins over a closed proposal's drift: corrected, not proposed again.
            c = Classified(
                c.unfinished,
                {
                    el: kept
                    for el, ops in c.drift.items()
                    if (kept := [op for op in ops if (el, op.collection, op.key) not in rejected])
                },
            )
        await self._propose(c, observed)
        return rejected

    async def _propose(self, c: Classified, observed: Mapping[str, Observation]) -> None:
        follower, desired = self.config.follower, self.config.desired
        if not c.drift:
            self._sig = None  # gone (merged, corrected): the same drift again is new
            return
        if follower is None or desired is None or not desired.source.commit:
            return
        if not all(o.ok for o in observed.values()):
            # What an element that cannot be read holds is unknown: the
            # analysis would miss it. Proposed once every element answers.
            self.log.info(
                "drift_proposal_waiting", down=sorted(n for n, o in observed.items() if not o.ok)
            )
            return
        sig: Signature = frozenset(
            (el, op.collection, op.key, op.action, op.if_revision)
            for el, ops in c.drift.items()
            for op in ops
        )
        if sig == self._sig:
            return
        try:
            proposal = await asyncio.to_thread(
                propose_drift,
                follower.repo,
                desired.source.commit,
                follower.reader.subdir or ".",
                desired.state,
                desired.source,
                observed,
            )
        except Exception as e:  # git refused, a file unwritable, …: never fatal
            # The drift stays held as in report mode; the next resync tries again.
            what = str(e) if isinstance(e, DriftError) else f"{type(e).__name__}: {e}"
            self.log.warning("drift_proposal_failed", error=what)
            return
        self._sig = sig
        if proposal.branch is None:
            self.log.info("drift_not_proposed", reason=proposal.why)
            return
        pushed = await asyncio.to_thread(push_drift_branch, follower.repo, proposal.branch)
        self._note_push(proposal.branch, pushed)
        await asyncio.to_thread(record_proposal, self.journals.apply, proposal, pushed)
        self.log.info(
            "drift_proposed",
            branch=proposal.branch,
            created=proposal.created,
            commit=proposal.commit,
            elements=proposal.elements,
            records=proposal.records[:PROPOSAL_SHOWN],
            pushed=pushed.remote is not None and pushed.error is None,
        )
        self.live.note_proposal(proposal.branch, proposal.created, pushed.remote, pushed.error)
        self.refresh_metrics()

    async def close_rejected(self) -> set[Ref]:
        """Proposals a person closed without merging are rejected (the config
        wins: the run overwrites their records); returns every record whose
        drift is rejected and not yet overwritten."""
        follower = self.config.follower
        if follower is None:
            return set()
        items = self.journals.loop.drift_items()
        journal = self.journals.loop
        for branch in sorted({d.note for d in items if d.state == "captured" and d.note}):
            pushed = journal.meta(PUSHED + branch) is not None
            if branch in self._unpushed or not await asyncio.to_thread(
                proposal_closed, follower.repo, branch, pushed
            ):
                continue
            closed = await asyncio.to_thread(close_proposal, self.journals.apply, branch)
            self.log.info(
                "drift_proposal_closed",
                branch=branch,
                elements=sorted({d.element for d in closed}),
                records=[f"{d.collection}/{d.key}" for d in closed][:PROPOSAL_SHOWN],
                outcome="rejected: the config wins, the records are overwritten",
            )
            if follower.remote:
                # The watcher's own clone: the same drift made again is proposed anew.
                await asyncio.to_thread(drop_local_branch, follower.repo, branch)
            self._sig = None
            self.refresh_metrics()
        return {
            (d.element, d.collection, d.key)
            for d in self.journals.loop.drift_items()
            if d.state == "rejected"
        }

    async def retry_pushes(self) -> None:
        follower = self.config.follower
        if follower is None:
            return
        for branch in sorted(self._unpushed):
            pushed = await asyncio.to_thread(push_drift_branch, follower.repo, branch)
            self._note_push(branch, pushed)

    def _note_push(self, branch: str, pushed: Pushed) -> None:
        if pushed.error is None:
            if pushed.remote is not None:
                self.journals.loop.set_meta(PUSHED + branch, "1")
            if branch in self._unpushed:
                self.log.info("drift_branch_pushed", branch=branch, remote=pushed.remote)
            self._unpushed.discard(branch)
            return
        self._unpushed.add(branch)
        self.log.warning(
            "drift_push_failed", branch=branch, remote=pushed.remote, error=pushed.error
        )

    def refresh_metrics(self) -> None:
        """The proposed drift records per element, from the journal."""
        counts: dict[str, int] = {}
        for d in self.journals.loop.drift_items():
            if d.state == "captured":
                counts[d.element] = counts.get(d.element, 0) + 1
        self.live.metrics.proposed(counts)
