"""`import --drift`: out-of-band changes found on elements, as a commit on a new branch.

The user's checkout is never touched: the config is read from, and written
into, a temporary git worktree of HEAD; the commit made there becomes the new
branch, and the worktree is removed. Uncommitted changes, the index and the
current branch stay exactly as they were.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provgit.adopt.analysis import Analysis, Item


class DriftError(Exception):
    """Not a git repository, no commit yet, a branch that exists already, …"""


@dataclass(frozen=True)
class Checkout:
    repo: Any  # git.Repo of the user's repository
    worktree: Path  # the temporary worktree's top
    config_root: Path  # the config root inside the worktree


def default_branch() -> str:
    return "provgit/drift-" + time.strftime("%Y%m%d-%H%M%S", time.gmtime())


@contextmanager
def head_checkout(config_root: Path, branch: str) -> Iterator[Checkout]:
    """HEAD of the repository holding `config_root`, checked out somewhere temporary."""
    import git  # GitPython is slow to import; only this path needs it

    try:
        repo = git.Repo(config_root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise DriftError(
            f"{config_root} is not inside a git repository: --drift commits to a new branch"
        ) from None
    if repo.working_tree_dir is None:
        raise DriftError("--drift needs a repository with a working tree")
    try:
        repo.head.commit  # noqa: B018 - raises when there is no commit yet
    except ValueError:
        raise DriftError("the repository has no commit yet: commit the config first") from None
    if branch in {h.name for h in repo.heads}:
        raise DriftError(f"branch {branch} already exists: choose another with --branch")
    try:
        repo.git.check_ref_format("--branch", branch)
    except git.GitCommandError:
        raise DriftError(f"{branch!r} is not a valid branch name") from None
    top = Path(repo.working_tree_dir).resolve()
    rel = config_root.resolve().relative_to(top)
    tmp = Path(tempfile.mkdtemp(prefix="provgit-drift-"))
    wt = tmp / "worktree"
    repo.git.worktree("add", "--detach", str(wt), "HEAD")
    try:
        yield Checkout(repo, wt, wt / rel)
    finally:
        with contextlib.suppress(git.GitCommandError):
            repo.git.worktree("remove", "--force", str(wt))
        with contextlib.suppress(git.GitCommandError):
            repo.git.worktree("prune")
        shutil.rmtree(tmp, ignore_errors=True)


def _line(item: Item) -> str:
    what = "; ".join(
        f"{c.what}: " + ", ".join(f"{s.source} {s.values}" for s in c.sides if s.source != "yaml")
        for c in item.conflicts
    )
    return f"- {item.ref}: {item.action}" + (f" ({what})" if what else "")


def commit_message(analysis: Analysis, elements: list[str]) -> str:
    written = analysis.writes
    lines = [
        f"provgit: capture drift found on {', '.join(elements) or 'the elements'}",
        "",
        f"`provgit import --drift` found {len(written)} out-of-band change(s) on the",
        "elements and wrote them into the YAML for review:",
        "",
        *(_line(i) for i in written),
    ]
    unresolved = analysis.by_category("unresolved")
    if unresolved:
        lines += ["", "Unresolved, not written:", ""]
        lines += [f"- {i.ref}: {i.summary}" for i in unresolved]
    secrets = [s for i in written for s in i.secrets]
    if secrets:
        lines += ["", "Set these secrets:", ""]
        lines += [f"- {s.env} ({s.resource} {s.field})" for s in secrets]
    return "\n".join(lines) + "\n"


def commit_branch(
    checkout: Checkout,
    files: list[str],
    message: str,
    branch: str,
    actor: Callable[[Any], tuple[Any, Any]] | None = None,
) -> str:
    """Commit `files` (relative to the config root) in the worktree; point `branch` at it."""
    import git

    wt = git.Repo(checkout.worktree)
    top = checkout.worktree.resolve()
    paths = [str((checkout.config_root / f).resolve().relative_to(top)) for f in files]
    wt.index.add(paths)
    reader = checkout.repo.config_reader()
    name = reader.get_value("user", "name", "provgit")
    email = reader.get_value("user", "email", "provgit@localhost")
    who = git.Actor(str(name), str(email))
    commit = wt.index.commit(message, author=who, committer=who)
    checkout.repo.create_head(branch, commit.hexsha)
    return str(commit.hexsha)
