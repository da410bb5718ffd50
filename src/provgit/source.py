"""Where the config comes from: a plain directory or a commit of a git repository.

A source yields the bytes of every `*.yaml` file under the config root, with a
content id (the git blob id; for a directory, the same SHA-1 git would compute)
that the loader uses as a cache key.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

# A file this big is not a config file someone wrote by hand; refuse it clearly
# rather than spending minutes and gigabytes on it.
MAX_FILE_BYTES = 64 * 1024 * 1024
SETTINGS_FILE = "provgit.yaml"
IGNORED_DIRS = {".git", ".provgit", ".venv", "node_modules", "__pycache__"}


@dataclass(frozen=True)
class SourceFile:
    path: str  # relative to the config root, forward slashes
    data: bytes
    blob_id: str
    origin: str  # absolute path, or "<commit>:<path>"


@dataclass(frozen=True)
class SourceError:
    path: str
    message: str


@dataclass(frozen=True)
class ConfigSource:
    """The YAML files of one config tree, plus what could not be read."""

    root: str  # a directory, or "<repo>@<commit>"
    files: list[SourceFile]
    errors: list[SourceError]
    commit: str | None = None
    # Reads any other file of the tree (prompt audio) by relative path; None if absent.
    read_other: Callable[[str], bytes | None] = field(default=lambda rel: None, compare=False)


def blob_id(data: bytes) -> str:
    """The id git gives these bytes; a directory and a commit share cache entries."""
    h = hashlib.sha1(b"blob %d\0" % len(data), usedforsecurity=False)
    h.update(data)
    return h.hexdigest()


def _walk_yaml(root: Path, errors: list[SourceError]) -> Iterator[Path]:
    def unreadable(e: OSError) -> None:
        # A folder we cannot list must fail loudly: skipping it would plan the
        # deletion of everything it holds.
        where = Path(e.filename or root)
        rel = where.relative_to(root).as_posix() if where.is_relative_to(root) else str(where)
        errors.append(SourceError(rel, f"cannot read directory: {e.strerror or e}"))

    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in IGNORED_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            if name.endswith((".yaml", ".yml")) and not name.startswith("."):
                yield Path(dirpath) / name


def read_directory(root: str | os.PathLike[str]) -> ConfigSource:
    base = Path(root)
    files: list[SourceFile] = []
    errors: list[SourceError] = []
    if not base.is_dir():
        return ConfigSource(
            str(base), [], [SourceError(str(base), "config directory does not exist")]
        )
    for p in _walk_yaml(base, errors):
        rel = PurePosixPath(p.relative_to(base).as_posix()).as_posix()
        try:
            if p.is_symlink():
                target = p.resolve()
                if not target.is_relative_to(base.resolve()):
                    errors.append(SourceError(rel, "symlink points outside the config root"))
                    continue
            size = p.stat().st_size
            if size > MAX_FILE_BYTES:
                errors.append(
                    SourceError(
                        rel,
                        f"file is {size / 1e6:.1f} MB, over the {MAX_FILE_BYTES // 2**20} MiB "
                        "limit per file; split it into several files",
                    )
                )
                continue
            data = p.read_bytes()
        except OSError as e:
            errors.append(SourceError(rel, f"cannot read file: {e.strerror or e}"))
            continue
        files.append(SourceFile(rel, data, blob_id(data), str(p)))
    return ConfigSource(str(base), files, errors, read_other=_directory_reader(base))


def _directory_reader(base: Path) -> Callable[[str], bytes | None]:
    root = base.resolve()

    def read(rel: str) -> bytes | None:
        # Only plain files inside the root: a symlink out of the tree counts as
        # absent, and so does a file we may not read (the rules report it).
        try:
            p = (base / rel).resolve()
            if not p.is_relative_to(root) or not p.is_file():
                return None
            return p.read_bytes()
        except OSError:
            return None

    return read
