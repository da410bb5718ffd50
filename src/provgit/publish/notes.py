"""Git write-back: a note under `refs/notes/provgit` on the applied commit.

`git log --notes=provgit` then shows what each commit did to the network. Plain
`git` is run (not GitPython): three short commands, no slow import, and the
same behaviour users get by hand. Nothing here raises for a git problem: the
run already happened, so a failed note is a warning for the caller to show.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from provgit.environ import environ_store
from provgit.report.document import Document, GitSource

NOTES_REF = "refs/notes/provgit"
NOTE_FORMAT = "provgit.note/1"
REMOTE = "origin"
GIT_TIMEOUT = 30.0
PUSH_TIMEOUT = 60.0
# Notes are commits: without a configured identity git refuses to write one
# (CI runners rarely have one), so provgit signs its own notes then.
_FALLBACK_IDENTITY = ("-c", "user.name=provgit", "-c", "user.email=provgit@localhost")


class GitError(Exception):
    pass


# What a local git command may need of the environment. Not the rest: a
# network's PIN references are often environment variables (20,000 and more),
# and each git process would get them all, copied and exec'd, for nothing.
_LOCAL_ENV = ("PATH", "HOME", "USER", "LOGNAME", "TMPDIR", "TZ", "EMAIL", "GNUPGHOME")
_LOCAL_ENV_PREFIXES = ("GIT_", "XDG_")
_LOCAL_ENV_B = frozenset(os.fsencode(n) for n in _LOCAL_ENV)
_LOCAL_ENV_PREFIXES_B = tuple(os.fsencode(p) for p in _LOCAL_ENV_PREFIXES)


# Within `environment_read_once`: the local git environment, once built.
_LOCAL: ContextVar[list[dict[str, str]] | None] = ContextVar("git_local_env", default=None)


@contextlib.contextmanager
def environment_read_once() -> Iterator[None]:
    """Within: the local git commands (`git_source`'s two, the note's) share one
    reading of the environment. Building it looks at every name (20,000 PIN
    variables: a few ms a command); the environment of one report's commands
    is the same. Scoped, not kept for the process: a watcher or a library
    caller may change the environment between runs."""
    token = _LOCAL.set([])
    try:
        yield
    finally:
        _LOCAL.reset(token)


def _env(full: bool) -> dict[str, str]:
    """The environment of a git command: all of it for a push (credential
    helpers, SSH agents, proxies read what they read), else what git reads."""
    if full:
        env = dict(os.environ)
        env.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C")
        return env
    once = _LOCAL.get()
    if once:
        return dict(once[0])
    env = _local_env()
    if once is not None:
        once.append(env)
    return dict(env)


def _local_env() -> dict[str, str]:
    """What a local git command reads of the environment (`_LOCAL_ENV`)."""
    if (store := environ_store()) is not None:
        # The encoded names, the few kept decoded: iterating `os.environ`
        # decodes every name (20,000 PINs: ~8 ms a git command).
        env = {
            os.fsdecode(k): os.fsdecode(v)
            for k, v in store.items()
            if k in _LOCAL_ENV_B or k.startswith(_LOCAL_ENV_PREFIXES_B)
        }
    else:
        environ = os.environ
        env = {
            k: environ[k] for k in environ if k in _LOCAL_ENV or k.startswith(_LOCAL_ENV_PREFIXES)
        }
    env.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    return env


def _git(
    repo: Path,
    *args: str,
    timeout: float = GIT_TIMEOUT,
    stdin: str | None = None,
    full_env: bool = False,
) -> str:
    env = _env(full_env)
    try:
        p = subprocess.run(
            ["git", "-C", str(repo), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
    except FileNotFoundError:
        raise GitError("git is not installed") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"`git {args[0]}` took longer than {timeout:.0f} s") from None
    if p.returncode != 0:
        msg = (p.stderr or p.stdout).strip().splitlines()
        raise GitError(msg[-1] if msg else f"`git {args[0]}` failed ({p.returncode})")
    return p.stdout


def git_source(config_root: Path, ignore: Sequence[Path] = ()) -> GitSource | None:
    """The HEAD commit of the work tree holding `config_root`, and whether the
    config differs from it; None when the config is not in a git work tree
    (or the repository has no commit yet).

    Dirty means a change git sees under the config directory that the loader
    would read: hidden paths (`.provgit/`, where state and reports live by
    default) and the `ignore` directories (a reports dir inside the config)
    are not the config.
    """
    root = config_root.resolve()
    try:
        # One process for both (no commit yet: it fails, as --verify would).
        top_line, commit = _git(root, "rev-parse", "--show-toplevel", "HEAD^{commit}", "--").split(
            "\n"
        )[:2]
        top = Path(top_line)
        status = _git(root, "status", "--porcelain=v1", "-z", "--untracked-files=normal", "--", ".")
    except GitError:
        return None
    rel = root.relative_to(top.resolve()) if root.is_relative_to(top.resolve()) else Path(".")
    ignored = [p.resolve() for p in ignore]
    entries = status.split("\0")
    dirty = False
    i = 0
    while i < len(entries) and not dirty:
        entry = entries[i]
        i += 1
        if len(entry) < 4:
            continue
        if entry[0] in "RC":
            i += 1  # a rename's source path follows; the new path is the one to judge
        # The changed path itself, not where it leads: a symlink (even a loop)
        # is a change of the link. Its folders are real ones (git does not
        # descend into symlinked folders).
        changed = top / entry[3:]
        path = changed.parent.resolve() / changed.name
        if not path.is_relative_to(root) or any(path.is_relative_to(d) for d in ignored):
            continue
        dirty = not any(part.startswith(".") for part in path.relative_to(root).parts)
    return GitSource(commit=commit, dirty=dirty, path=rel.as_posix() or ".")


def note_body(doc: Document) -> dict[str, Any]:
    """The summary a note holds: counts and statuses, never records or events."""
    run = doc.get("run") or {}
    source = doc.get("source") or {}
    return {
        "format": NOTE_FORMAT,
        "network": doc["network"],
        "status": doc["status"],
        "config": source.get("path"),
        "dirty": bool(source.get("dirty")),
        "note": "the config had uncommitted changes when it was applied; "
        "this commit is the closest one"
        if source.get("dirty")
        else None,
        "run": {
            "id": run.get("id"),
            "command": run.get("command"),
            "finished": run.get("finished"),
            "outcome": run.get("outcome"),
            "exit_code": run.get("exit_code"),
            "counts": run.get("counts"),
        },
        "elements": {name: e["status"] for name, e in doc["elements"].items()},
        "distribution_errors": doc["counts"]["distribution_errors"],
        "pending_updates": doc["counts"]["pending_updates"],
        "resources_not_completed": doc["counts"]["resources_not_completed"],
        "alarm": doc["alarm"]["level"],
    }


def write_note(config_root: Path, doc: Document) -> None:
    """Add (or replace) the provgit note on the document's commit. Raises GitError."""
    source = doc.get("source")
    if not source:
        raise GitError("the status has no git commit")
    repo = config_root.resolve()
    body = json.dumps(note_body(doc), indent=2, sort_keys=True) + "\n"
    # -f replaces an earlier provgit note on the same commit; the notes ref's
    # own history keeps the older one (`git log -p refs/notes/provgit`).
    # --end-of-options: the commit comes from a status document; a value
    # shaped like an option must never be read as one.
    add = ("notes", f"--ref={NOTES_REF}", "add", "-f", "-F", "-", "--end-of-options")
    try:
        # The configured identity only (never one git guesses), as one
        # process; without one, provgit's own.
        _git(repo, "-c", "user.useConfigOnly=true", *add, source["commit"], stdin=body)
    except GitError as e:
        if not _no_identity(str(e)):
            raise
        _git(repo, *_FALLBACK_IDENTITY, *add, source["commit"], stdin=body)


def _no_identity(message: str) -> bool:
    """Whether git refused for want of a configured name or e-mail address."""
    text = message.lower()
    return any(
        s in text
        for s in ("user.useconfigonly", "tell me who you are", "auto-detect", "empty ident")
    )


def push_notes(config_root: Path, remote: str = REMOTE) -> None:
    """Push the notes ref to `remote`. Raises GitError (a rejected or offline push)."""
    _git(
        config_root.resolve(),
        "push",
        "--quiet",
        "--",
        remote,
        f"{NOTES_REF}:{NOTES_REF}",
        timeout=PUSH_TIMEOUT,
        full_env=True,
    )


def write_and_push(repo: Path, doc: Document, push: bool) -> tuple[bool, str | None]:
    """The note on the document's commit, pushed if asked: (written, warning), never a raise."""
    try:
        write_note(repo, doc)
    except GitError as e:
        return False, f"cannot add the git note: {e}"
    if push:
        try:
            push_notes(repo)
        except GitError as e:
            return True, f"cannot push {NOTES_REF} to {REMOTE}: {e}"
    return True, None
