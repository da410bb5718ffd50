"""Where the config comes from: a plain directory or a commit of a git repository.

A source yields the bytes of every `*.yaml`/`*.yml` file (any case) under the
config root, following symlinks that stay inside it, with a
content id (the git blob id; for a directory, the same SHA-1 git would compute)
that the loader uses as a cache key.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from provgit.fsutil import NotRegularFile, StateFileTooLarge, read_state_file

# A file this big is not a config file someone wrote by hand; refuse it clearly
# rather than spending minutes and gigabytes on it.
MAX_FILE_BYTES = 64 * 1024 * 1024
# Any other file the config names (prompt audio) is read whole into memory, so
# it is bounded too: at 8 kHz, 16-bit mono, 64 MiB is over half an hour.
MAX_OTHER_BYTES = MAX_FILE_BYTES
SETTINGS_FILE = "provgit.yaml"
IGNORED_DIRS = {".git", ".provgit", ".venv", "node_modules", "__pycache__"}
# A checkout reads a submodule's files but a commit holds only its id: read the
# first way, the config would differ from what `diff` and `watch --repo` read.
NESTED_REPOSITORY = (
    "a git submodule or nested repository: its files are not in this repository's "
    "commits, so a checkout and a commit (diff, watch --repo) would define different "
    "networks; copy its files into this repository instead"
)


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
    # Reads any other file of the tree (prompt audio) by relative path; None if
    # absent, or over MAX_OTHER_BYTES (then its size is in `oversize`).
    read_other: Callable[[str], bytes | None] = field(default=lambda rel: None, compare=False)
    # The config root as a folder on this machine, where there is one (not for
    # a bare repository): secret files must lie outside it.
    disk_root: str | None = None
    # Other files read_other left unread for their size: path -> size (at least).
    oversize: dict[str, int] = field(default_factory=dict, compare=False)


def other_key(source: ConfigSource, rel: str, data: bytes | None) -> str | None:
    """What `source.read_other(rel)` gave (`data`), as a cache compares it: its
    blob id, None when absent, or `over:<size>` when past MAX_OTHER_BYTES."""
    if data is not None:
        return blob_id(data)
    size = source.oversize.get(rel)
    return None if size is None else f"over:{size}"


def blob_id(data: bytes) -> str:
    """The id git gives these bytes; a directory and a commit share cache entries."""
    h = hashlib.sha1(b"blob %d\0" % len(data), usedforsecurity=False)
    h.update(data)
    return h.hexdigest()


def is_yaml_name(name: str) -> bool:
    """A config file: `.yaml` or `.yml` in any case (`.YAML` from a Windows editor too)."""
    return name.lower().endswith((".yaml", ".yml")) and not name.startswith(".")


def may_hold_config(rel: str) -> bool:
    """A path that is, or may be a folder of, config files: a YAML name, or no suffix."""
    name = rel.rsplit("/", 1)[-1]
    return is_yaml_name(name) or "." not in name


def _skipped_dir(name: str) -> bool:
    # Hidden folders (.git, .provgit, .github) and tool folders are never config.
    return name in IGNORED_DIRS or name.startswith(".")


class _Walk:
    """Every config file under a root, following symlinks that stay inside it.

    A symlink whose target is outside the root, missing, or part of a loop is
    an error, as is a folder that cannot be listed: leaving its files out would
    plan the deletion of everything they define.
    """

    def __init__(self, root: Path, errors: list[SourceError]) -> None:
        self.root = root
        self.real_root = root.resolve()
        self.errors = errors
        self.files: list[tuple[str, Path]] = []  # (relative path, real path)
        self.seen_files: dict[Path, str] = {}
        self.seen_dirs: dict[Path, str] = {self.real_root: "."}

    def error(self, rel: str, message: str) -> None:
        self.errors.append(SourceError(rel, message))

    def link_error(self, rel: str, message: str) -> None:
        # A link that may be a config file or folder; a bad link named like
        # other content (`bye.wav`) is the business of whatever refers to it.
        if may_hold_config(rel):
            self.error(rel, message)

    def run(self) -> list[tuple[str, Path]]:
        self.visit(self.root, "", (self.real_root,))
        return self.files

    def target(self, path: Path, rel: str) -> Path | None:
        """Where a symlink leads, or None (and an error) if it leads nowhere usable."""
        link = os.readlink(path)
        try:
            real = path.resolve(strict=True)
        except FileNotFoundError:
            self.link_error(
                rel,
                f"symlink to {link!r} points to nothing (broken link); fix or remove it",
            )
            return None
        except (RuntimeError, OSError) as e:
            # Python 3.11 raises RuntimeError for a loop, later versions OSError(ELOOP).
            if isinstance(e, RuntimeError) or getattr(e, "errno", None) == errno.ELOOP:
                self.link_error(
                    rel, f"symlink loop: {link!r} leads back to itself; remove the link"
                )
            else:
                self.link_error(rel, f"cannot follow symlink to {link!r}: {e}")
            return None
        if not real.is_relative_to(self.real_root):
            if real.is_file() and not is_yaml_name(path.name):
                return None  # other content (audio): whatever refers to it says so
            self.error(
                rel,
                f"symlink points outside the config root (to {real}); only links to files "
                "and folders inside the config root are followed: move the target into the "
                "config or copy it",
            )
            return None
        return real

    def visit(self, folder: Path, rel: str, chain: tuple[Path, ...]) -> None:
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            self.error(rel or ".", f"cannot read directory: {e.strerror or e}")
            return
        subdirs: list[tuple[Path, str, Path]] = []
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue  # hidden: .git, .provgit, .gitlab-ci.yml are not config
            path = Path(entry.path)
            child = f"{rel}/{name}" if rel else name
            try:
                if entry.is_symlink():
                    real = self.target(path, child)
                    if real is None:
                        continue
                    if real.is_dir():
                        if real in chain:
                            self.error(
                                child,
                                f"symlink loop: {os.readlink(path)!r} is a folder that "
                                "contains this link; remove the link",
                            )
                        elif not _skipped_dir(name):
                            subdirs.append((path, child, real))
                        continue
                elif entry.is_dir():
                    if not _skipped_dir(name):
                        subdirs.append((path, child, chain[-1] / name))
                    continue
                else:
                    real = chain[-1] / name  # the folder's real path is known
            except OSError as e:
                self.error(child, f"cannot read: {e.strerror or e}")
                continue
            if is_yaml_name(name):
                self.add_file(child, real)
        for path, child, real in subdirs:
            if os.path.lexists(real / ".git"):
                self.error(child, NESTED_REPOSITORY)
                continue
            first = self.seen_dirs.get(real)
            if first is not None:
                self.error(
                    child,
                    f"the same folder as {first} (through a symlink): its files would "
                    "define every record twice; remove one of the two",
                )
                continue
            self.seen_dirs[real] = child
            self.visit(path, child, (*chain, real))

    def add_file(self, rel: str, real: Path) -> None:
        first = self.seen_files.get(real)
        if first is not None:
            self.error(
                rel,
                f"the same file as {first} (through a symlink): it would define every "
                "record twice; remove one of the two",
            )
            return
        self.seen_files[real] = rel
        self.files.append((rel, real))


def read_directory(root: str | os.PathLike[str]) -> ConfigSource:
    base = Path(root)
    files: list[SourceFile] = []
    errors: list[SourceError] = []
    if not base.is_dir():
        return ConfigSource(
            str(base), [], [SourceError(str(base), "config directory does not exist")]
        )
    for rel, real in _Walk(base, errors).run():
        try:
            # Checked on what is opened, not on the name before: a FIFO or
            # device named *.yaml (or put in its place meanwhile) would block
            # or stream forever.
            data = read_config_file(real)
        except NotRegularFile:
            errors.append(SourceError(rel, "not a regular file; a config file must be one"))
            continue
        except StateFileTooLarge as e:
            size = e.size
            errors.append(
                SourceError(
                    rel,
                    f"file is {size / 1e6:.1f} MB, over the {MAX_FILE_BYTES // 2**20} MiB "
                    "limit per file; split it into several files",
                )
            )
            continue
        except OSError as e:
            errors.append(SourceError(rel, f"cannot read file: {e.strerror or e}"))
            continue
        files.append(SourceFile(rel, data, blob_id(data), str(base / rel)))
    oversize: dict[str, int] = {}
    return ConfigSource(
        str(base),
        files,
        errors,
        read_other=_directory_reader(base, oversize),
        disk_root=str(base),
        oversize=oversize,
    )


def read_config_file(path: str | os.PathLike[str]) -> bytes:
    """A config file's bytes (links followed: the walk checks where they lead),
    when it is a regular file of at most MAX_FILE_BYTES; OSError otherwise
    (`NotRegularFile`, `StateFileTooLarge`): never a wait on a named pipe."""
    return read_state_file(path, MAX_FILE_BYTES, follow=True)


_OPEN = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC


def _directory_reader(base: Path, oversize: dict[str, int]) -> Callable[[str], bytes | None]:
    root = os.path.realpath(base)
    inside = os.path.join(root, "")
    # Each folder resolved once, not once per file: a network's prompt audio
    # (hundreds of files, read for every plan memo's digest) shares a few folders.
    folders: dict[str, str] = {}

    def resolved(path: str) -> str:
        head, name = os.path.split(path)
        if name in ("", ".", ".."):
            return os.path.realpath(path)
        found = folders.get(head)
        if found is None:
            found = folders[head] = os.path.realpath(head)
        return os.path.join(found, name)

    def read(rel: str) -> bytes | None:
        # Only plain files inside the root: a symlink out of the tree counts as
        # absent, and so does a file we may not read (the rules report it).
        oversize.pop(rel, None)
        try:
            p = resolved(os.path.join(base, rel))
            if not p.startswith(inside):
                return None
            try:
                # The last step is not followed here (a link is resolved in full
                # below); non-blocking: a FIFO named *.wav must not hang us.
                fd = os.open(p, _OPEN | os.O_NOFOLLOW)
            except OSError as e:
                if e.errno != errno.ELOOP:
                    return None
                p = os.path.realpath(p)
                if not p.startswith(inside):
                    return None
                fd = os.open(p, _OPEN)
            with open(fd, "rb") as f:
                return _bounded(f, rel, oversize)
        except (OSError, ValueError):  # ValueError: a NUL in the name
            return None

    return read


def _bounded(f: BinaryIO, rel: str, oversize: dict[str, int]) -> bytes | None:
    """A regular file's bytes, up to MAX_OTHER_BYTES; past it (a sparse file of
    terabytes, one growing as it is read) None, its size kept in `oversize`."""
    st = os.fstat(f.fileno())
    if not stat.S_ISREG(st.st_mode):
        return None
    if st.st_size > MAX_OTHER_BYTES:
        oversize[rel] = st.st_size
        return None
    # What fstat says and a byte more (a read of the bound would reserve it all).
    data = f.read(st.st_size + 1)
    if len(data) > st.st_size:  # grew since: read on, up to the bound
        data += f.read(MAX_OTHER_BYTES + 1 - len(data))
    if len(data) > MAX_OTHER_BYTES:
        oversize[rel] = len(data)
        return None
    return data
