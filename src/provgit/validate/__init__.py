"""The validation stage: source -> load -> model -> cross-record rules."""

from __future__ import annotations

import os
from dataclasses import dataclass

from provgit.diagnostics import Diagnostic
from provgit.load.loader import load_files
from provgit.model.build import build_state
from provgit.model.findings import Finding, resolve
from provgit.model.state import DesiredState
from provgit.source import SETTINGS_FILE, ConfigSource
from provgit.validate.element_files import check_element_files
from provgit.validate.rules import check_rules
from provgit.validate.secret_files import check_secret_files
from provgit.validate.secret_reuse import check_secret_reuse


@dataclass(frozen=True)
class Validated:
    state: DesiredState
    diagnostics: list[Diagnostic]
    files: int
    parsed: int
    cached: int

    @property
    def ok(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)


def check_network(
    state: DesiredState, source: ConfigSource, findings: list[Finding]
) -> list[Finding]:
    """Each record's own findings plus the checks across records and files
    (shared with the watcher's incremental validation)."""
    if any(e.path == SETTINGS_FILE for e in source.errors):
        # provgit.yaml could not be read: that error says it, not a second one.
        findings = [f for f in findings if not (f.code == "settings" and not f.at.path)]
    return [
        *findings,
        *check_rules(state, source),
        *check_secret_files(state, source),
        *check_secret_reuse(state),
        *check_element_files(state),
    ]


def validate_source(
    source: ConfigSource, cache_dir: str | os.PathLike[str] | None, workers: int | None = None
) -> Validated:
    loaded = load_files(source, cache_dir, workers)
    state, findings = build_state(loaded.files, commit=source.commit, root=source.root)
    findings = check_network(state, source, findings)
    diags = sorted(loaded.diagnostics + resolve(findings, state.sources), key=Diagnostic.sort_key)
    return Validated(state, diags, len(source.files), loaded.parsed, loaded.cached)
