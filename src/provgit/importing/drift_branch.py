"""`import --drift`: out-of-band changes found on elements, as a commit on a new branch.

The user's checkout is never touched: the config is read from, and written
into, a temporary git worktree of HEAD; the commit made there becomes the new
branch, and the worktree is removed. Uncommitted changes, the index and the
current branch stay exactly as they were.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provgit.importing.analysis import Analysis, Item


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
    _check_branch(repo, branch)
    top = Path(repo.working_tree_dir).resolve()
    rel = config_root.resolve().relative_to(top)
    with _worktree(repo, "HEAD", str(rel)) as checkout:
        yield checkout


@contextmanager
def commit_checkout(repo_dir: Path, commit: str, subdir: str) -> Iterator[Checkout]:
    """`commit` of the repository at `repo_dir` (bare or not), checked out somewhere
    temporary; the config root is `subdir` inside it (`watch --drift propose`)."""
    import git

    try:
        repo = git.Repo(repo_dir)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise DriftError(f"{repo_dir} is not a git repository") from None
    with _worktree(repo, commit, subdir) as checkout:
        yield checkout


def _check_branch(repo: Any, branch: str) -> None:
    import git

    if branch_exists(repo, branch):
        raise DriftError(f"branch {branch} already exists: choose another with --branch")
    try:
        repo.git.check_ref_format("--branch", branch)
    except git.GitCommandError:
        raise DriftError(f"{branch!r} is not a valid branch name") from None


def branch_exists(repo: Any, branch: str) -> bool:
    return branch in {h.name for h in repo.heads}


@contextmanager
def _worktree(repo: Any, commit: str, subdir: str) -> Iterator[Checkout]:
    import git

    tmp = Path(tempfile.mkdtemp(prefix="provgit-drift-"))
    wt = tmp / "worktree"
    try:
        repo.git.worktree("add", "--detach", str(wt), commit)
    except git.GitCommandError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DriftError(f"cannot check out {commit}: {e.stderr.strip()}") from None
    try:
        yield Checkout(repo, wt, wt / subdir)
    finally:
        with contextlib.suppress(git.GitCommandError):
            repo.git.worktree("remove", "--force", str(wt))
        with contextlib.suppress(git.GitCommandError):
            repo.git.worktree("prune")
        shutil.rmtree(tmp, ignore_errors=True)


VALUE_MAX = 80


def _value(v: Any) -> str:
    if v is None:
        return "(none)"
    text = json.dumps(v, ensure_ascii=False, default=str)
    return text if len(text) <= VALUE_MAX else text[: VALUE_MAX - 1] + "…"


def drifted_elements(analysis: Analysis) -> list[str]:
    """The elements that hold something the YAML does not say, in config order."""
    found = {d.element for i in analysis.writes for d in i.drifted}
    return [e for e in analysis.elements if e in found]


def _lines(item: Item) -> list[str]:
    out: list[str] = []
    for d in item.drifted:
        where = f"{d.element} {d.form} {d.key}"
        if d.op == "added":
            out.append(f"- {where}: added (not in the YAML)")
        elif d.op == "missing":
            out.append(f"- {where}: missing on the element")
        else:
            out += [
                f"- {where}, {path}: {_value(before)} -> {_value(after)}"
                for path, (before, after) in d.fields.items()
            ]
    return out or [f"- {item.ref}: {item.action}"]


def commit_message(
    analysis: Analysis, elements: list[str] | None = None, by: str = "provgit import --drift"
) -> str:
    """What a reviewer reads: per written record, element, form, record, field: before -> after."""
    written = analysis.writes
    where = elements if elements is not None else drifted_elements(analysis)
    refs = [i.ref for i in written]
    subject = f"provgit: drift on {', '.join(where) or 'the elements'}: " + ", ".join(refs[:3])
    if len(refs) > 3:
        subject += f" and {len(refs) - 3} more"
    lines = [
        subject,
        "",
        f"`{by}` found {len(written)} record(s) changed outside provgit",
        "and wrote them into the YAML for review (the YAML's value -> the element's):",
        "",
    ]
    for item in written:
        lines += [f"{item.ref}:", *_lines(item), ""]
    unresolved = analysis.by_category("unresolved")
    if unresolved:
        lines += ["Unresolved, not written:", ""]
        lines += [f"- {i.ref}: {i.summary}" for i in unresolved]
        lines.append("")
    secrets = [s for i in written for s in i.secrets]
    if secrets:
        lines += ["Set these secrets:", ""]
        lines += [f"- {s.env} ({s.resource} {s.field})" for s in secrets]
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def commit_branch(
    checkout: Checkout,
    files: list[str],
    message: str,
    branch: str,
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


# `watch --drift propose`: one branch per batch of drift, named after it.
PROPOSAL_PREFIX = "provgit/drift/"
# user:password@ in a URL git echoes back.
_USERINFO = re.compile(r"(\w+://)[^/@\s]+@")
NAMED = 3  # elements named in a proposal branch; more are counted


def drift_digest(analysis: Analysis) -> str:
    """A hash of the drift itself (records, fields, the YAML's and the element's
    values), not of the commit it is based on: the same drift found again, after
    a restart or an unrelated config commit, names the same branch."""
    entries = sorted(
        json.dumps(
            [item.ref, d.element, d.collection, d.key, d.op, sorted(d.fields.items())],
            default=str,
            sort_keys=True,
        )
        for item in analysis.writes
        for d in item.drifted
    )
    entries += sorted(
        json.dumps([i.ref, i.data], default=str, sort_keys=True) for i in analysis.writes
    )
    return hashlib.sha256("\n".join(entries).encode()).hexdigest()


def proposal_branch(analysis: Analysis) -> str:
    """`provgit/drift/<element>-<short hash>` (`a+b-…` for a few elements,
    `a+3more-…` for many): predictable, and the same for the same drift."""
    elements = drifted_elements(analysis) or sorted(
        {e for i in analysis.writes for e in i.elements}
    )
    names = [_ref_safe(e) for e in elements]
    who = "+".join(names) if len(names) <= NAMED else f"{names[0]}+{len(names) - 1}more"
    return f"{PROPOSAL_PREFIX}{who or 'elements'}-{drift_digest(analysis)[:10]}"


def _ref_safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip(".") or "_"


def has_remote(repo: Any, name: str = "origin") -> bool:
    return name in {r.name for r in repo.remotes}


def push_branch(repo: Any, branch: str, remote: str = "origin", timeout: float = 120) -> str | None:
    """Push `branch` to `remote`; None when it landed, else why not (never raises)."""
    import git

    try:
        repo.git.push(
            "--quiet",
            "--",
            remote,
            f"refs/heads/{branch}:refs/heads/{branch}",
            kill_after_timeout=timeout,
        )
    except git.GitCommandError as e:
        text = str(e.stderr or e).strip()
        # git may echo the remote's URL, credentials included: never log them.
        return _USERINFO.sub(r"\1***@", text.splitlines()[-1]) if text else "git push failed"
    return None
