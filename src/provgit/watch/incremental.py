"""What a long-running watcher keeps between runs, so a small change costs little.

A batch command starts from nothing each time; the watcher holds, in memory:

- the parsed documents of every file, by blob id: a run re-parses only the
  files whose content changed (the on-disk parse cache still serves a fresh
  start);
- the last validated config and its projection, reused as they are while the
  tree (every path and blob id) is the same, which is every resync and retry;
- the last observation of every element, refreshed through the change feed.

Only composition: the stages themselves are called as the CLI calls them.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from provgit.compose import desired_target
from provgit.diagnostics import Diagnostic
from provgit.load.loader import LoadedFile, load_files
from provgit.model.build import build_state
from provgit.model.findings import resolve
from provgit.model.state import DesiredState
from provgit.observe import Observation
from provgit.source import ConfigSource
from provgit.target import Target
from provgit.validate import Validated
from provgit.validate.rules import check_rules


def tree_key(source: ConfigSource) -> str:
    """Every config file's path and content id, and what could not be read."""
    h = hashlib.sha256()
    for f in source.files:
        h.update(f"\0{f.path}\0{f.blob_id}".encode())
    for e in source.errors:
        h.update(f"\0!{e.path}\0{e.message}".encode())
    return h.hexdigest()


@dataclasses.dataclass(frozen=True)
class Desired:
    """A validated config and what it projects to: the state the watcher keeps applying."""

    key: str
    source: ConfigSource
    validated: Validated
    target: Target

    @property
    def state(self) -> DesiredState:
        return self.validated.state


class StageCache:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self._docs: dict[str, list[Any]] = {}
        self._last: tuple[str, Validated] | None = None
        self._target: tuple[str, Target] | None = None
        self.observations: dict[str, Observation] = {}

    def clear(self) -> None:
        """Forget everything (SIGHUP): the next run reads and parses from the disk cache."""
        self._docs.clear()
        self._last = None
        self._target = None
        self.observations.clear()

    def validate(self, source: ConfigSource) -> tuple[str, Validated]:
        """`validate_source`, re-parsing only files not parsed before."""
        key = tree_key(source)
        if self._last is not None and self._last[0] == key:
            return self._last
        changed = [f for f in source.files if f.blob_id not in self._docs]
        loaded = load_files(dataclasses.replace(source, files=changed), self.state_dir / "cache")
        for lf in loaded.files:
            self._docs[lf.blob_id] = lf.docs
        files = [
            LoadedFile(f.path, f.blob_id, f.data, self._docs[f.blob_id])
            for f in source.files
            if f.blob_id in self._docs
        ]
        live = {f.blob_id for f in source.files}
        for blob in [b for b in self._docs if b not in live]:
            del self._docs[blob]
        state, findings = build_state(files, commit=source.commit, root=source.root)
        findings.extend(check_rules(state, source))
        diags = sorted(
            loaded.diagnostics + resolve(findings, state.sources), key=Diagnostic.sort_key
        )
        validated = Validated(
            state, diags, len(source.files), loaded.parsed, len(source.files) - loaded.parsed
        )
        if validated.ok:
            self._last = (key, validated)
        return key, validated

    def desired(self, key: str, source: ConfigSource, validated: Validated) -> Desired:
        if self._target is None or self._target[0] != key:
            target = desired_target(validated.state, source.read_other, self.state_dir)
            self._target = (key, target)
        return Desired(key, source, validated, self._target[1])


def reader_for(source: ConfigSource) -> Callable[[str], bytes | None]:
    return source.read_other
