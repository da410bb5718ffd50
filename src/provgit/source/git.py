"""The config as it is at a git commit, read with plain `git`.

`ls-tree` gives every file's blob id (the content id the loader caches parsed
files by) and one `cat-file --batch` reads the blobs not seen before, so a
commit that changes one file costs one blob read, not the whole tree. Works
on a work tree or a bare repository alike. Used by `provgit diff` and by the
watcher's git follower.
"""

from __future__ import annotations

import os
import posixpath
import subprocess
from dataclasses import replace
from pathlib import Path, PurePosixPath

from provgit.source import (
    IGNORED_DIRS,
    MAX_FILE_BYTES,
    MAX_OTHER_BYTES,
    NESTED_REPOSITORY,
    ConfigSource,
    SourceError,
    SourceFile,
    is_yaml_name,
    may_hold_config,
)

GIT_TIMEOUT = 60.0
_SYMLINK_MODE = "120000"
# Set by git for hooks: they would point every command at that repository,
# not the one asked for (GitPython ignored them for an explicit path too).
_GIT_LOCATION_VARIABLES = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_PREFIX",
    "GIT_COMMON_DIR",
    "GIT_OBJECT_DIRECTORY",
)
# Other files (prompt audio) are read in one batch on the first lookup, up to
# this many bytes in all; past that only the file asked for.
OTHERS_BATCH_BYTES = 64 * 2**20


class GitSourceError(Exception):
    """git cannot answer: no repository, no such revision, git missing (a user-facing message)."""


def run_git(
    cwd: Path | None, *args: str, stdin: bytes | None = None, timeout: float = GIT_TIMEOUT
) -> bytes:
    """`git -C cwd ARGS`; its stdout, or GitSourceError with git's own verdict."""
    env = {k: v for k, v in os.environ.items() if k not in _GIT_LOCATION_VARIABLES}
    env.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    cmd = ["git", *(["-C", str(cwd)] if cwd is not None else []), *args]
    try:
        p = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout, env=env)
    except FileNotFoundError:
        raise GitSourceError("git is not installed") from None
    except subprocess.TimeoutExpired:
        raise GitSourceError(f"`git {args[0]}` took longer than {timeout:.0f} s") from None
    if p.returncode != 0:
        lines = p.stderr.decode(errors="replace").strip().splitlines()
        # git's own verdict is its "fatal:" line; what follows is advice.
        fatal = [x for x in lines if x.startswith(("fatal:", "error:"))]
        message = " ".join(fatal or lines).strip()
        raise GitSourceError(message or f"`git {args[0]}` failed ({p.returncode})")
    return p.stdout


class CommitReader:
    """Reads the config directory `subdir` of `repo` at any commit, keeping the
    blobs of the last commit read so the next one reads only what changed."""

    def __init__(self, repo: Path, subdir: str, label: str) -> None:
        self.repo = repo
        self.subdir = PurePosixPath(subdir).as_posix().strip("/") if subdir not in ("", ".") else ""
        self.label = label
        # blob id -> bytes: unchanged files of the next commit are never read again.
        self.blobs: dict[str, bytes] = {}

    def read(self, commit: str) -> ConfigSource:
        """The YAML files of the config directory at `commit` (a full object id)."""
        treeish = f"{commit}:{self.subdir}" if self.subdir else f"{commit}^{{tree}}"
        root = f"{self.label}@{commit[:12]}:{self.subdir or '.'}"
        try:
            listing = run_git(
                self.repo,
                *("ls-tree", "--full-tree", "-r", "-z", "--long", "--end-of-options", treeish),
            )
        except GitSourceError:
            return ConfigSource(
                root, [], [SourceError(self.subdir or ".", f"not present at {commit[:12]}")], commit
            )
        wanted: list[tuple[str, str]] = []
        errors: list[SourceError] = []
        # Other files (prompt audio): path -> mode, oid, size.
        others: dict[str, tuple[str, str, int]] = {}
        entries: dict[str, tuple[str, str, int]] = {}
        for entry in listing.split(b"\0"):
            if not entry:
                continue
            meta, _, raw_path = entry.partition(b"\t")
            mode, kind, oid, size_text = meta.decode().split()
            name = raw_path.decode("utf-8", errors="surrogateescape")
            if kind == "commit" and not _ignored(name):
                errors.append(SourceError(name, NESTED_REPOSITORY))
            if kind != "blob":
                continue
            entries[name] = (mode, oid, int(size_text))
        links = {n: e[1] for n, e in entries.items() if e[0] == _SYMLINK_MODE}
        self.load_blobs([oid for oid in links.values() if oid not in self.blobs])
        expanded = _follow_links(entries, {n: self.blobs.get(o, b"") for n, o in links.items()})
        seen: dict[str, str] = {}  # path read -> the path it was read as first
        # Plain files first: a link to one is the second way to the same file.
        for name, (target, mode, oid, size, problem) in sorted(
            expanded.items(), key=lambda x: (x[0] != x[1][0], x[0])
        ):
            if problem is not None:
                if may_hold_config(name):
                    errors.append(SourceError(name, problem))
                continue
            if not is_yaml_name(PurePosixPath(name).name):
                others[name] = (mode, oid, size)
                continue
            if target in seen:
                errors.append(
                    SourceError(
                        name,
                        f"the same file as {seen[target]} (through a symlink): it would "
                        "define every record twice; remove one of the two",
                    )
                )
                continue
            seen[target] = name
            if size > MAX_FILE_BYTES:
                errors.append(
                    SourceError(
                        name, f"file is over the {MAX_FILE_BYTES // 2**20} MiB limit per file"
                    )
                )
                continue
            wanted.append((name, oid))
        for name, listed in entries.items():
            # Hidden other files (audio under .prompts/) stay readable, as from a directory.
            if _hidden(name) and listed[0] != _SYMLINK_MODE:
                others.setdefault(name, listed)
        self.load_blobs([oid for _, oid in wanted if oid not in self.blobs])
        live = {oid for _, oid in wanted} | {o[1] for o in others.values() if o[1] in self.blobs}
        live |= set(links.values())  # link targets are read again on every commit
        for oid in [o for o in self.blobs if o not in live]:
            del self.blobs[oid]  # keep only the current tree's blobs in memory
        files = [
            SourceFile(name, self.blobs[oid], oid, f"{commit[:12]}:{name}")
            for name, oid in sorted(wanted)
        ]
        other = ReadOther(self, others)
        return ConfigSource(root, files, errors, commit, other, oversize=other.oversize)

    def load_blobs(self, oids: list[str]) -> None:
        if not oids:
            return
        out = run_git(self.repo, "cat-file", "--batch", stdin=("\n".join(oids) + "\n").encode())
        at = 0
        for oid in oids:
            end = out.index(b"\n", at)
            header = out[at:end].split()
            if header[-1] == b"missing":  # not in this repository (a shallow clone)
                at = end + 1
                continue
            size = int(header[2])
            self.blobs[oid] = out[end + 1 : end + 1 + size]
            at = end + 1 + size + 1


class ReadOther:
    """Any other file of the commit (prompt audio), by path relative to the config
    root: looked up in the commit's listing, contents read once per blob (all
    the missing ones in one `git cat-file --batch`), so a new commit costs no
    git process per prompt."""

    def __init__(self, reader: CommitReader, others: dict[str, tuple[str, str, int]]) -> None:
        self.reader, self.others = reader, others
        # Files past MAX_OTHER_BYTES, never read (ConfigSource.oversize).
        self.oversize: dict[str, int] = {}

    def __call__(self, rel: str) -> bytes | None:
        if ".." in PurePosixPath(rel).parts:
            return None
        found = self.others.get(PurePosixPath(rel).as_posix())
        if found is None or found[0] == _SYMLINK_MODE:
            return None
        if found[2] > MAX_OTHER_BYTES:
            self.oversize[rel] = found[2]
            return None
        blobs = self.reader.blobs
        if found[1] not in blobs:
            missing = {
                oid: size
                for _, oid, size in self.others.values()
                if oid not in blobs and size <= MAX_OTHER_BYTES
            }
            batch = sorted(missing) if sum(missing.values()) <= OTHERS_BATCH_BYTES else [found[1]]
            try:
                self.reader.load_blobs(batch)
            except GitSourceError:
                return None
        return blobs.get(found[1])


# Links followed one after another before the chain counts as a loop (as the OS does).
MAX_LINK_HOPS = 40
# path -> (path of the blob it reads, mode, blob id, size, problem or None)
_Expanded = dict[str, tuple[str, str, str, int, str | None]]


def _follow_links(entries: dict[str, tuple[str, str, int]], links: dict[str, bytes]) -> _Expanded:
    """Every file of a commit's config tree with its symlinks followed, the way a
    checkout would read them: a link to a file or folder inside the config root
    reads its target; one pointing outside it, to nothing, or round in a loop is
    a problem of that path (never silently left out)."""
    folders = {str(PurePosixPath(n).parent) for n in entries} | {
        p.as_posix() for n in entries for p in PurePosixPath(n).parents
    }
    out: _Expanded = {}

    def resolve(name: str, hops: int) -> tuple[str | None, str | None]:
        """(target path inside the root, or None with a problem)."""
        raw = links[name].decode("utf-8", errors="replace")
        joined = posixpath.normpath(posixpath.join(posixpath.dirname(name), raw))
        if raw.startswith("/") or joined == ".." or joined.startswith("../"):
            return None, (
                f"symlink points outside the config root (to {raw!r}); only links to files "
                "and folders inside the config root are followed: move the target into "
                "the config or copy it"
            )
        joined = "" if joined == "." else joined
        if joined in links:
            if hops >= MAX_LINK_HOPS:
                return None, f"symlink loop: {raw!r} leads back to itself; remove the link"
            return resolve(joined, hops + 1)
        if joined in entries or joined in folders or joined == "":
            return joined, None
        return None, f"symlink to {raw!r} points to nothing (broken link); fix or remove it"

    def add_tree(prefix: str, target: str, hops: int) -> None:
        """The files under folder `target`, as if they were under `prefix`."""
        under = f"{target}/" if target else ""
        for n in entries:
            if n.startswith(under) and n not in links:
                out[f"{prefix}/{n[len(under) :]}"] = (n, *entries[n], None)
        for n in links:
            if n.startswith(under):
                add_link(f"{prefix}/{n[len(under) :]}", n, hops + 1)

    def add_link(as_name: str, link: str, hops: int) -> None:
        target, problem = resolve(link, 0)
        if target is None or hops > MAX_LINK_HOPS:
            out[as_name] = (link, "", "", 0, problem or "symlink loop; remove the link")
        elif target in entries:
            out[as_name] = (target, *entries[target], None)
        elif target == "" or link.startswith(f"{target}/"):
            out[as_name] = (
                link,
                "",
                "",
                0,
                f"symlink loop: {links[link].decode(errors='replace')!r} is a folder that "
                "contains this link; remove the link",
            )
        else:
            add_tree(as_name, target, hops)

    for name, entry in entries.items():
        if not _hidden(name) and name not in links:
            out[name] = (name, *entry, None)
    for name in links:
        if not _hidden(name):
            add_link(name, name, 0)
    return out


def _ignored(name: str) -> bool:
    # The folders a directory walk skips (hidden ones, node_modules, ...).
    return any(p.startswith(".") or p in IGNORED_DIRS for p in PurePosixPath(name).parts)


def _hidden(name: str) -> bool:
    # .github/, .gitlab-ci.yml are not config, but a link may lead into .shared/.
    return any(p.startswith(".") for p in PurePosixPath(name).parts)


def resolve_commit(repo: Path, ref: str) -> str:
    """The full commit id `ref` names in `repo`."""
    try:
        # --end-of-options: a ref named like an option is a name, never an option.
        out = run_git(repo, "rev-parse", "--verify", "-q", "--end-of-options", f"{ref}^{{commit}}")
    except GitSourceError:
        raise GitSourceError(f"unknown git revision {ref!r}") from None
    return out.decode().strip()


def read_commit(path: str | Path, ref: str) -> ConfigSource:
    """The YAML files under `path` (a directory of a work tree, or a bare
    repository for its root) at commit `ref`."""
    where = Path(path)
    if not where.exists():
        raise GitSourceError(f"{path}: no such directory")
    if not where.is_dir():
        raise GitSourceError(f"{path} is a file; give the config directory")
    try:
        prefix = run_git(where, "rev-parse", "--show-prefix").decode().strip()
    except GitSourceError:
        raise GitSourceError(f"{path} is not inside a git repository") from None
    commit = resolve_commit(where, ref)
    source = CommitReader(where, prefix, ref).read(commit)
    # A work tree's config folder is where secret files must not be; a bare
    # repository has none.
    bare = run_git(where, "rev-parse", "--is-bare-repository").decode().strip() == "true"
    return source if bare else replace(source, disk_root=str(where))
