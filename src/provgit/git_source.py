"""The config as it is at a git commit (GitPython); blob ids come free from git."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path, PurePosixPath

from provgit.source import MAX_FILE_BYTES, ConfigSource, SourceError, SourceFile

_SYMLINK_MODE = 0o120000


class GitSourceError(Exception):
    pass


def read_commit(path: str | Path, ref: str) -> ConfigSource:
    """The YAML files under `path` (a directory inside a git work tree) at commit `ref`."""
    import git  # GitPython is slow to import; only `diff` and the watcher need it

    try:
        repo = git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise GitSourceError(f"{path} is not inside a git repository") from None
    try:
        commit = repo.commit(ref)
    except (git.BadName, ValueError):
        raise GitSourceError(f"unknown git revision {ref!r}") from None
    workdir = Path(repo.working_tree_dir or ".").resolve()
    rel = Path(path).resolve().relative_to(workdir).as_posix()
    tree = commit.tree
    if rel not in ("", "."):
        try:
            tree = tree / rel
        except KeyError:
            return ConfigSource(
                f"{ref}:{rel}", [], [SourceError(rel, f"not present at {ref}")], commit.hexsha
            )
    files: list[SourceFile] = []
    errors: list[SourceError] = []
    for item in tree.traverse():
        if not isinstance(item, git.Blob):
            continue
        full = str(item.path)
        name = PurePosixPath(full).relative_to(tree.path).as_posix() if tree.path else full
        parts = PurePosixPath(name).parts
        if not name.endswith((".yaml", ".yml")) or any(p.startswith(".") for p in parts):
            continue
        if item.mode == _SYMLINK_MODE:
            errors.append(SourceError(name, "symlinked config files are not read from git"))
            continue
        if item.size > MAX_FILE_BYTES:
            errors.append(
                SourceError(name, f"file is over the {MAX_FILE_BYTES // 2**20} MiB limit per file")
            )
            continue
        data = item.data_stream.read()
        files.append(SourceFile(name, data, item.hexsha, f"{commit.hexsha[:12]}:{name}"))
    files.sort(key=lambda f: f.path)
    return ConfigSource(f"{ref}:{rel or '.'}", files, errors, commit.hexsha, _tree_reader(tree))


def _tree_reader(tree: object) -> Callable[[str], bytes | None]:
    def read(rel: str) -> bytes | None:
        try:
            item = tree / rel  # type: ignore[operator]
        except (KeyError, TypeError):
            return None
        if getattr(item, "type", None) != "blob" or item.mode == _SYMLINK_MODE:
            return None
        data: bytes = item.data_stream.read()
        return data

    return read
