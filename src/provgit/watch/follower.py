"""The git follower: where the watched config comes from when it lives in git.

A URL is cloned (bare) into the state directory once and fetched on demand; a
local path is used as it is (a bare repository or a work tree) and only its
ref is re-read. Commits are read with plain `git` (`ls-tree` for blob ids,
one `cat-file --batch` for the blobs not seen before), so a commit that
changes one file costs one blob read, not the whole tree: the blob id is the
same content id the loader caches parsed files by.

Which commit was last applied is the loop's business (it keeps it in the
journal); this module only answers "what is the ref now" and "what is in it".
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path, PurePosixPath

from provgit.source import MAX_FILE_BYTES, ConfigSource, SourceError, SourceFile

GIT_TIMEOUT = 60.0
_SYMLINK_MODE = "120000"


class FollowError(Exception):
    """The repository cannot be cloned, fetched or read (a user-facing message)."""


def _git(
    cwd: Path | None, *args: str, stdin: bytes | None = None, timeout: float = GIT_TIMEOUT
) -> bytes:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    cmd = ["git", *(["-C", str(cwd)] if cwd is not None else []), *args]
    try:
        p = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout, env=env)
    except FileNotFoundError:
        raise FollowError("git is not installed") from None
    except subprocess.TimeoutExpired:
        raise FollowError(f"`git {args[0]}` took longer than {timeout:.0f} s") from None
    if p.returncode != 0:
        lines = p.stderr.decode(errors="replace").strip().splitlines()
        # git's own verdict is its "fatal:" line; what follows is advice.
        fatal = [x for x in lines if x.startswith(("fatal:", "error:"))]
        message = " ".join(fatal or lines).strip()
        raise FollowError(message or f"`git {args[0]}` failed ({p.returncode})")
    return p.stdout


def is_url(spec: str) -> bool:
    return "://" in spec or (":" in spec and not Path(spec).exists() and "@" in spec)


class GitFollower:
    def __init__(self, spec: str, ref: str, subdir: str, state_dir: Path) -> None:
        self.spec = spec
        self.ref = ref
        self.subdir = PurePosixPath(subdir).as_posix().strip("/") if subdir not in ("", ".") else ""
        self.remote = is_url(spec) or not Path(spec).exists()
        self.repo = (state_dir / "repo.git") if self.remote else Path(spec).resolve()
        # blob id -> bytes: unchanged files of the next commit are never read again.
        self._blobs: dict[str, bytes] = {}

    @property
    def display(self) -> str:
        return f"{self.spec}@{self.ref}"

    def prepare(self) -> None:
        """Clone a URL (once); check a local path is a git repository."""
        if self.remote:
            if not (self.repo / "HEAD").exists():
                self.repo.parent.mkdir(parents=True, exist_ok=True)
                _git(None, "clone", "--bare", "--quiet", self.spec, str(self.repo), timeout=600)
            return
        if not self.repo.exists():
            raise FollowError(f"{self.spec}: no such repository")
        try:
            _git(self.repo, "rev-parse", "--git-dir")
        except FollowError:
            raise FollowError(f"{self.spec} is not a git repository") from None

    def fetch(self) -> None:
        """Bring the ref up to date from the remote (a local path needs nothing)."""
        if self.remote:
            _git(
                self.repo,
                "fetch",
                "--quiet",
                "--no-tags",
                "origin",
                f"+refs/heads/{self.ref}:refs/heads/{self.ref}",
                timeout=300,
            )

    def head(self) -> str:
        try:
            out = _git(self.repo, "rev-parse", "--verify", "-q", f"{self.ref}^{{commit}}")
        except FollowError:
            raise FollowError(f"{self.display}: no such branch or revision") from None
        return out.decode().strip()

    def read(self, commit: str) -> ConfigSource:
        """The YAML files of the config directory at `commit`."""
        treeish = f"{commit}:{self.subdir}" if self.subdir else f"{commit}^{{tree}}"
        root = f"{self.display}@{commit[:12]}:{self.subdir or '.'}"
        try:
            listing = _git(self.repo, "ls-tree", "-r", "-z", "--long", treeish)
        except FollowError:
            return ConfigSource(
                root, [], [SourceError(self.subdir or ".", f"not present at {commit[:12]}")], commit
            )
        wanted: list[tuple[str, str]] = []
        errors: list[SourceError] = []
        others: dict[str, tuple[str, str]] = {}  # other files (prompt audio): path -> mode, oid
        for entry in listing.split(b"\0"):
            if not entry:
                continue
            meta, _, raw_path = entry.partition(b"\t")
            mode, kind, oid, size = meta.decode().split()
            name = raw_path.decode("utf-8", errors="surrogateescape")
            parts = PurePosixPath(name).parts
            if kind == "blob" and not name.endswith((".yaml", ".yml")):
                others[name] = (mode, oid)
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
        self._load_blobs([oid for _, oid in wanted if oid not in self._blobs])
        live = {oid for _, oid in wanted} | {
            oid for _, oid in others.values() if oid in self._blobs
        }
        for oid in [o for o in self._blobs if o not in live]:
            del self._blobs[oid]  # keep only the current tree's blobs in memory
        files = [
            SourceFile(name, self._blobs[oid], oid, f"{commit[:12]}:{name}")
            for name, oid in sorted(wanted)
        ]
        return ConfigSource(root, files, errors, commit, ReadOther(self, others))

    def _load_blobs(self, oids: list[str]) -> None:
        if not oids:
            return
        out = _git(self.repo, "cat-file", "--batch", stdin=("\n".join(oids) + "\n").encode())
        at = 0
        for oid in oids:
            end = out.index(b"\n", at)
            header = out[at:end].split()
            size = int(header[2])
            self._blobs[oid] = out[end + 1 : end + 1 + size]
            at = end + 1 + size + 1


class ReadOther:
    """Any other file of the commit (prompt audio), by path relative to the config
    root: looked up in the commit's listing, contents read once per blob (all
    the missing ones in one `git cat-file --batch`), so a new commit costs no
    git process per prompt."""

    def __init__(self, follower: GitFollower, others: dict[str, tuple[str, str]]) -> None:
        self.follower, self.others = follower, others

    def __call__(self, rel: str) -> bytes | None:
        if ".." in PurePosixPath(rel).parts:
            return None
        found = self.others.get(PurePosixPath(rel).as_posix())
        if found is None or found[0] == _SYMLINK_MODE:
            return None
        blobs = self.follower._blobs
        if found[1] not in blobs:
            try:
                self.follower._load_blobs(
                    sorted({oid for mode, oid in self.others.values() if oid not in blobs})
                )
            except FollowError:
                return None
        return blobs.get(found[1])
