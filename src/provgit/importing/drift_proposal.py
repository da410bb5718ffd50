"""Drift as a commit on a drift branch, for review (`watch --drift propose`).

The drifted records stay as the element holds them (held, as in `report`
mode) and what the elements hold is written into the YAML the way
`import --drift` writes it (importing/analysis.py decides, importing/writer.py
keeps every byte it does not change), committed in a temporary worktree of the
applied commit (importing/drift_branch.py: the followed ref and any checkout
are left alone) onto the new branch `provgit/drift/<element>-<hash>`, and
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

import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from provgit.apply import drift_detect
from provgit.importing import drift_branch as branches
from provgit.importing.analysis import Options, analyse
from provgit.importing.writer import WriteError, check, commit, render
from provgit.journal import DriftItem, Journal
from provgit.model.state import DesiredState
from provgit.observe import Observation
from provgit.source import ConfigSource

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


def propose_drift(
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


def push_drift_branch(repo_dir: Path, branch: str) -> Pushed:
    """Push `branch` to `origin`, if the repository has one; never raises."""
    import git

    try:
        repo = git.Repo(repo_dir)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError) as e:
        return Pushed("origin", f"not a git repository: {e}")
    if not branches.has_remote(repo):
        return Pushed(None)
    return Pushed("origin", branches.push_branch(repo, branch))


def proposal_closed(repo_dir: Path, branch: str, pushed: bool) -> bool:
    """Whether a person closed the proposal on `branch` without merging it:
    deleted from `origin` after it was pushed there (`pushed`), or from the
    repository itself when it has no remote. False when that cannot be told
    (git failed, the push never landed): a proposal is never dropped on a doubt."""
    import git

    try:
        repo = git.Repo(repo_dir)
        if not branches.has_remote(repo):
            return not branches.branch_exists(repo, branch)
        if not pushed:
            return False
        out = repo.git.ls_remote("--heads", "origin", f"refs/heads/{branch}", kill_after_timeout=60)
    except (git.GitCommandError, git.InvalidGitRepositoryError, git.NoSuchPathError):
        return False
    return not str(out).strip()


def drop_local_branch(repo_dir: Path, branch: str) -> None:
    """Delete `branch` from the repository (the watcher's own clone); never raises."""
    import git

    # Already gone, or no repository: nothing to drop.
    with contextlib.suppress(
        git.GitCommandError, git.InvalidGitRepositoryError, git.NoSuchPathError
    ):
        git.Repo(repo_dir).git.branch("-D", "--", branch)


def close_proposal(journal: Journal, branch: str) -> list[DriftItem]:
    """The proposal on `branch` was closed unmerged: rejected. The config wins:
    its drift items are no longer held and the next run overwrites the records;
    a `drift_rejected` event per element says so. Returns the items."""
    with journal.transaction():
        items = journal.reject_drift(branch)
        for element, mine in sorted(drift_detect.by_element(items).items()):
            shown = ", ".join(f"{d.collection}/{d.key}" for d in mine[:SHOWN])
            more = f", and {len(mine) - SHOWN} more" if len(mine) > SHOWN else ""
            journal.add_event(
                "drift_rejected",
                f"drift proposal branch {branch} closed without merging: drift on {element} "
                f"rejected, the config wins and the next run overwrites it: {shown}{more}",
                element=element,
            )
    return items


def record_proposal(journal: Journal, proposal: Proposal, pushed: Pushed) -> bool:
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
