"""The git follower: where the watched config comes from when it lives in git.

A URL is cloned (bare) into the state directory once and fetched on demand; a
local path is used as it is (a bare repository or a work tree) and only its
ref is re-read. Commits are read by `git_source.CommitReader`, which reads
only the blobs a new commit changed.

Which commit was last applied is the loop's business (it keeps it in the
journal); this module only answers "what is the ref now" and "what is in it".
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from provgit.api.watching import (
    CommitReader,
    ConfigSource,
    GitSourceError,
    resolve_commit,
    run_git,
)

# The follower's failures are git's: one exception type, one message style.
FollowError = GitSourceError


def is_url(spec: str) -> bool:
    return "://" in spec or (":" in spec and not Path(spec).exists() and "@" in spec)


class GitFollower:
    def __init__(self, spec: str, ref: str, subdir: str, state_dir: Path) -> None:
        for what, value in (("repository", spec), ("ref", ref)):
            if value.startswith("-"):
                # git would read it as an option (--upload-pack=... runs a command).
                raise FollowError(f"{what} {value!r} cannot start with '-'")
        self.spec = spec
        self.ref = ref
        self.remote = is_url(spec) or not Path(spec).exists()
        self.repo = (state_dir / "repo.git") if self.remote else Path(spec).resolve()
        self.reader = CommitReader(self.repo, subdir, self.display)
        self.disk_root: str | None = None

    @property
    def display(self) -> str:
        return f"{self.spec}@{self.ref}"

    def prepare(self) -> None:
        """Clone a URL (once); check a local path is a git repository."""
        if self.remote:
            if not (self.repo / "HEAD").exists():
                self.repo.parent.mkdir(parents=True, exist_ok=True)
                run_git(
                    None, "clone", "--bare", "--quiet", "--", self.spec, str(self.repo), timeout=600
                )
            return
        if not self.repo.exists():
            raise FollowError(f"{self.spec}: no such repository")
        try:
            run_git(self.repo, "rev-parse", "--git-dir")
            bare = run_git(self.repo, "rev-parse", "--is-bare-repository").strip() == b"true"
        except FollowError:
            raise FollowError(f"{self.spec} is not a git repository") from None
        if not bare:
            # A work tree: its config folder is where secret files must not be.
            self.disk_root = str(self.repo / self.reader.subdir)

    def check_ref(self) -> None:
        """Refuse to start on a ref the repository does not have (a typo would
        otherwise leave a watcher running that never applies anything)."""
        try:
            self.head()
            return
        except FollowError:
            if not self.remote:
                raise FollowError(self._no_ref()) from None
        try:
            self.fetch()  # a branch made on the remote since it was cloned
        except FollowError as e:
            # git says "couldn't find remote ref" for a typo; a network failure says so too.
            raise FollowError(f"{self._no_ref()} ({e})") from None
        try:
            self.head()
        except FollowError:
            raise FollowError(self._no_ref()) from None

    def _no_ref(self) -> str:
        try:
            out = run_git(self.repo, "for-each-ref", "--format=%(refname:short)", "refs/heads")
            branches = ", ".join(out.decode().split()) or "none"
        except FollowError:
            branches = "unknown"
        return (
            f"{self.spec} has no branch or revision {self.ref!r} (branches: {branches}); "
            "pass --ref with one of them"
        )

    def fetch(self) -> None:
        """Bring the ref up to date from the remote (a local path needs nothing)."""
        if self.remote:
            run_git(
                self.repo,
                "fetch",
                "--quiet",
                "--no-tags",
                "--",
                "origin",
                f"+refs/heads/{self.ref}:refs/heads/{self.ref}",
                timeout=300,
            )

    def has(self, commit: str) -> bool:
        """Whether the repository holds `commit` (a replica may not have fetched it yet)."""
        try:
            run_git(self.repo, "cat-file", "-e", f"{commit}^{{commit}}")
        except FollowError:
            return False
        return True

    def git_dirs(self) -> list[Path]:
        """Where a local repository's refs live: its git directory and, for a
        linked worktree, the common one (refs/, packed-refs); none for a URL."""
        if self.remote:
            return []
        out = run_git(
            self.repo, "rev-parse", "--path-format=absolute", "--git-dir", "--git-common-dir"
        )
        dirs = list(dict.fromkeys(Path(x).resolve() for x in out.decode().splitlines() if x))
        # A linked worktree's own directory lies inside the common one: watched once.
        return [d for d in dirs if not any(d != o and d.is_relative_to(o) for o in dirs)]

    def head(self) -> str:
        try:
            return resolve_commit(self.repo, self.ref)
        except FollowError:
            raise FollowError(f"{self.display}: no such branch or revision") from None

    def read(self, commit: str) -> ConfigSource:
        """The YAML files of the config directory at `commit`."""
        return dataclasses.replace(self.reader.read(commit), disk_root=self.disk_root)
