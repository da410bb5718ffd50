"""The config as it is at a git commit, read with plain `git`.

`ls-tree` gives every file's blob id (the content id the loader caches parsed
files by) and one `cat-file --batch` reads the blobs not seen before, so a
commit that changes one file costs one blob read, not the whole tree. Works
on a work tree or a bare repository alike. Used by `provgit diff` and by the
watcher's git follower.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path, PurePosixPath

from provgit.source import MAX_FILE_BYTES, ConfigSource, SourceError, SourceFile

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
            listing = run_git(self.repo, "ls-tree", "--full-tree", "-r", "-z", "--long", treeish)
        except GitSourceError:
            return ConfigSource(
                root, [], [SourceError(self.subdir or ".", f"not present at {commit[:12]}")], commit
            )
        wanted: list[tuple[str, str]] = []
        errors: list[SourceError] = []
        # Other files (prompt audio): path -> mode, oid, size.
        others: dict[str, tuple[str, str, int]] = {}
        for entry in listing.split(b"\0"):
            if not entry:
                continue
            meta, _, raw_path = entry.partition(b"\t")
            mode, kind, oid, size = meta.decode().split()
            name = raw_path.decode("utf-8", errors="surrogateescape")
            parts = PurePosixPath(name).parts
            if kind == "blob" and not name.endswith((".yaml", ".yml")):
                others[name] = (mode, oid, int(size))
                continue
            if kind != "blob":
                continue
            if any(p.startswith(".") for p in parts):
                continue
            if mode == _SYMLINK_MODE:
                errors.append(SourceError(name, "symlinked config files are not read from git"))
                continue
            if int(size) > MAX_FILE_BYTES:
                errors.append(
                    SourceError(
                        name, f"file is over the {MAX_FILE_BYTES // 2**20} MiB limit per file"
                    )
                )
                continue
            wanted.append((name, oid))
        self.load_blobs([oid for _, oid in wanted if oid not in self.blobs])
        live = {oid for _, oid in wanted} | {o[1] for o in others.values() if o[1] in self.blobs}
        for oid in [o for o in self.blobs if o not in live]:
            del self.blobs[oid]  # keep only the current tree's blobs in memory
        files = [
            SourceFile(name, self.blobs[oid], oid, f"{commit[:12]}:{name}")
            for name, oid in sorted(wanted)
        ]
        return ConfigSource(root, files, errors, commit, ReadOther(self, others))

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

    def __call__(self, rel: str) -> bytes | None:
        if ".." in PurePosixPath(rel).parts:
            return None
        found = self.others.get(PurePosixPath(rel).as_posix())
        if found is None or found[0] == _SYMLINK_MODE:
            return None
        blobs = self.reader.blobs
        if found[1] not in blobs:
            missing = {oid: size for mode, oid, size in self.others.values() if oid not in blobs}
            batch = sorted(missing) if sum(missing.values()) <= OTHERS_BATCH_BYTES else [found[1]]
            try:
                self.reader.load_blobs(batch)
            except GitSourceError:
                return None
        return blobs.get(found[1])


def resolve_commit(repo: Path, ref: str) -> str:
    """The full commit id `ref` names in `repo`."""
    try:
        out = run_git(repo, "rev-parse", "--verify", "-q", f"{ref}^{{commit}}")
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
    return CommitReader(where, prefix, ref).read(commit)
