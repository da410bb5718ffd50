"""`watch --drift propose`: drift a resync finds, as a commit on a drift branch.

The drifted records stay as the element holds them (held, as in `report`
mode) and what the elements hold is written into the YAML the way
`import --drift` writes it (importing/analysis.py decides, importing/writer.py
keeps every byte it does not change), committed in a temporary worktree of the
applied commit (importing/drift_branch.py: the followed repository's refs and
any checkout are left alone) onto `provgit/drift/<element>-<hash>`, and
pushed to `origin` when the repository has one. A person merges the branch
into the followed ref (the change then reaches every element sharing the
record through the normal config run) or closes it.

The hash is of the drift itself, so the same drift is proposed once: found
again by a later resync, after an unrelated commit or after a restart, it
names a branch that exists already. Drift that changes on top of a proposal
(another record, or the same record edited again) is a new batch: a new
branch holding all the drift open then; the older one is left for a person
to close.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from provgit.apply import drift_detect
from provgit.importing import drift_branch as branches
from provgit.importing.analysis import Options, analyse
from provgit.importing.writer import WriteError, check, commit, render
from provgit.journal import Journal
from provgit.model.state import DesiredState
from provgit.observe import Observation
from provgit.source import ConfigSource
from provgit.watch.config_tracker import ConfigTracker
from provgit.watch.drift_policy import Classified
from provgit.watch.journals import Journals
from provgit.watch.live import LiveStatus
from provgit.watch.logs import Log
from provgit.watch.options import WatchOptions

BY = "provgit watch --drift propose"
SHOWN = 5


@dataclass(frozen=True)
class Proposal:
    # None: nothing to propose (the drift is nothing the YAML can say), see `why`.
    branch: str | None
    created: bool = False  # False with a branch: the same drift was proposed already
    commit: str | None = None
    elements: list[str] = field(default_factory=list)
    records: list[str] = field(default_factory=list)  # kind/key of the records written
    why: str | None = None


@dataclass(frozen=True)
class Pushed:
    remote: str | None  # None: the repository has no `origin`, nothing to push to
    error: str | None = None


def propose(
    repo_dir: Path,
    base: str,
    subdir: str,
    state: DesiredState,
    source: ConfigSource,
    observed: Mapping[str, Observation],
) -> Proposal:
    """Write what the elements hold into the config of commit `base` and commit
    it onto a new drift branch (or name the branch that holds it already)."""
    analysis = analyse(state, source, observed, Options(prefer_element=True, drift=True))
    if not analysis.writes:
        return Proposal(None, why="the YAML already says what the elements hold")
    branch = branches.proposal_branch(analysis)
    elements = branches.drifted_elements(analysis)
    records = [i.ref for i in analysis.writes]
    with branches.commit_checkout(repo_dir, base, subdir) as checkout:
        if branches.branch_exists(checkout.repo, branch):
            return Proposal(branch, False, None, elements, records)
        try:
            rendered = render(checkout.config_root, state, analysis.items, _header(observed))
        except WriteError as e:
            return Proposal(None, why=f"cannot write the YAML: {e}")
        if not rendered:
            return Proposal(None, why="the YAML already says what the elements hold")
        refused = check(source, rendered)
        if refused:
            return Proposal(None, why=f"the config would not validate: {refused[0]}")
        files = commit(checkout.config_root, rendered)
        message = branches.commit_message(analysis, elements, by=BY)
        sha = branches.commit_branch(checkout, files, message, branch)
    return Proposal(branch, True, sha, elements, records)


def push(repo_dir: Path, branch: str) -> Pushed:
    """Push `branch` to `origin`, if the repository has one; never raises."""
    import git

    try:
        repo = git.Repo(repo_dir)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError) as e:
        return Pushed("origin", f"not a git repository: {e}")
    if not branches.has_remote(repo):
        return Pushed(None)
    return Pushed("origin", branches.push_branch(repo, branch))


def record(journal: Journal, proposal: Proposal, pushed: Pushed) -> bool:
    """Mark the drift items of the proposal's elements as proposed on its
    branch, with a `drift_proposed` event per element (the feed's entry); only
    what is not marked so already. True when anything changed."""
    branch = proposal.branch
    assert branch is not None
    mine = [
        d
        for d in journal.drift_items()
        if d.element in proposal.elements and (d.state != "captured" or d.note != branch)
    ]
    if not mine:
        return False
    where = (
        "not pushed: the repository has no remote"
        if pushed.remote is None
        else f"pushed to {pushed.remote}"
        if pushed.error is None
        else f"push to {pushed.remote} failed, retried on the next run: {pushed.error}"
    )
    with journal.transaction():
        journal.capture_drift(proposal.elements, branch)
        for element, items in sorted(drift_detect.by_element(mine).items()):
            shown = ", ".join(f"{d.collection}/{d.key}" for d in items[:SHOWN])
            more = f", and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
            journal.add_event(
                "drift_proposed",
                f"drift on {element} proposed on branch {branch} ({where}): {shown}{more}; "
                "held until the branch is merged (the change then reaches every element "
                "sharing the record) or closed",
                element=element,
            )
    return True


def _header(observed: Mapping[str, Observation]) -> str:
    when = time.strftime("%Y-%m-%d", time.gmtime())
    return f"Proposed by `{BY}` from {', '.join(observed)} on {when}."


Signature = frozenset[tuple[str, str, str, str, int | None]]


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

    async def review(self, c: Classified, observed: Mapping[str, Observation]) -> None:
        """A resync's drift (propose mode): proposed on a branch, once."""
        await self.retry_pushes()
        follower, desired = self.config.follower, self.config.desired
        if not c.drift or follower is None or desired is None or not desired.source.commit:
            self._sig = None if not c.drift else self._sig
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
                propose,
                follower.repo,
                desired.source.commit,
                follower.reader.subdir or ".",
                desired.state,
                desired.source,
                observed,
            )
        except (branches.DriftError, OSError) as e:
            self.log.warning("drift_proposal_failed", error=f"{type(e).__name__}: {e}")
            return  # tried again on the next resync
        self._sig = sig
        if proposal.branch is None:
            self.log.info("drift_not_proposed", reason=proposal.why)
            return
        pushed = await asyncio.to_thread(push, follower.repo, proposal.branch)
        self._note_push(proposal.branch, pushed)
        await asyncio.to_thread(record, self.journals.apply, proposal, pushed)
        self.log.info(
            "drift_proposed",
            branch=proposal.branch,
            created=proposal.created,
            commit=proposal.commit,
            elements=proposal.elements,
            records=proposal.records[:SHOWN],
            pushed=pushed.remote is not None and pushed.error is None,
        )
        self.live.note_proposal(proposal.branch, proposal.created, pushed.remote, pushed.error)
        self.refresh_metrics()

    async def retry_pushes(self) -> None:
        follower = self.config.follower
        if follower is None:
            return
        for branch in sorted(self._unpushed):
            self._note_push(branch, await asyncio.to_thread(push, follower.repo, branch))

    def _note_push(self, branch: str, pushed: Pushed) -> None:
        if pushed.error is None:
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
