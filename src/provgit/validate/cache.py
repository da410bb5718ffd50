"""The last answer of `provgit validate`, reused while nothing it depends on changed.

A warm `validate` of 100,000 users still spends ~2 s after the parse cache:
loading the cached data, building a few hundred thousand pydantic models and
running the cross-record rules. None of that can change the answer unless an
input changed, so the CLI stores its answer (diagnostics and counts, not the
models) with a key over everything the answer depends on:

- every config file's path and git blob id, and the files that could not be read;
- every other file the rules read through `ConfigSource.read_other` (prompt
  audio), recorded while validating and re-checked on lookup, so deleting or
  editing a WAV file is noticed although it is not part of the key;
- the code: provgit's own source files (size and mtime, so editing a rule
  during development invalidates it) and the versions of pydantic and ruamel.

Rules must stay a function of these inputs: one that starts reading anything
else (environment variables, the clock, the network) has to add it to the key.

Only the CLI's `validate` answers from here. `validate_source` always builds
a full `DesiredState`, because plan, diff and apply need the models themselves;
they still get the parse cache.

One entry per state directory (the latest answer): a warm run is "nothing
changed since last time", and older answers would only pile up.
"""

from __future__ import annotations

import dataclasses
import hashlib
import marshal
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provgit.diagnostics import Diagnostic, Location
from provgit.fsutil import read_state_file
from provgit.load.cache import put_raw
from provgit.source import ConfigSource, other_key

FORMAT = "verdict-1"
_DEPENDENCIES = ("pydantic", "pydantic-core", "ruamel.yaml", "ruamel.yaml.clib")

# path -> blob id of what read_other returned, or None for "absent"
Reads = dict[str, str | None]


@dataclass(frozen=True)
class Verdict:
    """What `provgit validate` reports, without the models behind it."""

    diagnostics: list[Diagnostic]
    counts: dict[str, int]
    files: int
    parsed: int
    cached: int

    @property
    def ok(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)


def recording_reads(source: ConfigSource) -> tuple[ConfigSource, Reads]:
    """A copy of `source` that notes every other file the rules read."""
    reads: Reads = {}
    inner: Callable[[str], bytes | None] = source.read_other

    def read(rel: str) -> bytes | None:
        data = inner(rel)
        reads[rel] = other_key(source, rel, data)
        return data

    return dataclasses.replace(source, read_other=read), reads


class VerdictStore:
    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.path = Path(directory) / "verdict.marshal"

    def get(self, source: ConfigSource) -> Verdict | None:
        try:
            stored = marshal.loads(read_state_file(self.path))
            fmt, key, reads, payload = stored
            if fmt != FORMAT or key != tree_key(source):
                return None
            for rel, expected in reads.items():
                if other_key(source, rel, source.read_other(rel)) != expected:
                    return None
            diags, counts, files = payload
            return Verdict(
                [_diagnostic(d) for d in diags], dict(counts), files, 0, len(source.files)
            )
        except (OSError, EOFError, ValueError, TypeError, KeyError):
            return None  # missing, corrupt or from another version: not an answer

    def put(self, source: ConfigSource, verdict: Verdict, reads: Reads) -> None:
        payload = (
            [_plain(d) for d in verdict.diagnostics],
            dict(verdict.counts),
            verdict.files,
        )
        put_raw(self.path, marshal.dumps((FORMAT, tree_key(source), dict(reads), payload)))


def tree_key(source: ConfigSource) -> str:
    return files_key(
        {f.path: f.blob_id for f in source.files}, [(e.path, e.message) for e in source.errors]
    )


def files_key(files: dict[str, str], errors: list[tuple[str, str]]) -> str:
    """`tree_key` of a tree with these files (path -> blob id) and read errors."""
    h = hashlib.sha256(code_fingerprint().encode())
    for path in sorted(files):
        h.update(f"\0{path}\0{files[path]}".encode())
    for path, message in sorted(errors):
        h.update(f"\0!{path}\0{message}".encode())
    return h.hexdigest()


_CODE: list[str] = []


def code_fingerprint() -> str:
    """Changes whenever provgit's code or a parsing/validation dependency changes."""
    if not _CODE:
        h = hashlib.sha256(sys.version.encode())
        for dist in _DEPENDENCIES:
            h.update(f"\0{dist}={_installed(dist)}".encode())
        package = Path(__file__).resolve().parent.parent
        for p in sorted(package.rglob("*.py")):
            st = p.stat()
            h.update(f"\0{p.relative_to(package)}:{st.st_size}:{st.st_mtime_ns}".encode())
        _CODE.append(h.hexdigest())
    return _CODE[0]


def _installed(dist: str) -> str:
    """The names of the metadata directories installing `dist` on sys.path
    (they carry the version: a change of version changes them; not where
    they are, so two environments with the same versions agree), "?" when none.

    Not `importlib.metadata.version`: importing it (email, zipfile, csv) was
    ~40 ms of every status and no-op reconcile, which read no other metadata."""
    want = dist.replace("-", "_").replace(".", "_").lower()
    found = []
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            stem, dot, ext = name.rpartition(".")
            if not dot or ext not in ("dist-info", "egg-info"):
                continue
            project = stem.split("-", 1)[0].replace(".", "_").replace("-", "_").lower()
            if project == want:
                found.append(name)
    return "|".join(found) or "?"


def _plain(d: Diagnostic) -> dict[str, Any]:
    out = {f.name: getattr(d, f.name) for f in dataclasses.fields(d)}
    loc = d.location
    out["location"] = (loc.file, loc.line, loc.column)
    return out


def _diagnostic(fields: dict[str, Any]) -> Diagnostic:
    return Diagnostic(**{**fields, "location": Location(*fields["location"])})
