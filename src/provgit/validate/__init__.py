"""The validation stage: source -> load -> model -> cross-record rules."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from provgit.diagnostics import Diagnostic
from provgit.source import SETTINGS_FILE, ConfigSource

if TYPE_CHECKING:
    from provgit.load.loader import LoadedFile
    from provgit.model.build import FileModels
    from provgit.model.findings import Finding
    from provgit.model.state import DesiredState

# The loader and the models (pydantic) are imported by the functions that run
# them: `provgit status` and the plan memo read `validate.cache` (this package)
# and, in sync, never validate.


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
    # The rules are loaded here, not with the package: `provgit status` and the
    # plan memo read `validate.cache` and never run them.
    from provgit.validate.element_files import check_element_files
    from provgit.validate.rules import check_rules
    from provgit.validate.secret_files import check_secret_files
    from provgit.validate.secret_reuse import check_secret_reuse

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
    from provgit.load.loader import gc_frozen, load_files
    from provgit.model.build import assemble_state, build_file

    loaded = load_files(source, cache_dir, workers)
    # Validation allocates a few million objects that all survive: without the
    # collector walking them again and again (see model.build.build_state).
    with gc_frozen():
        built = [build_file(f) for f in loaded.files]
        state, findings = assemble_state(
            loaded.files, built, commit=source.commit, root=source.root
        )
    return _checked(source, state, findings, loaded.diagnostics, loaded.parsed)


def validate_built(
    source: ConfigSource,
    files: Sequence[LoadedFile],
    built: Sequence[FileModels],
    load_diagnostics: Sequence[Diagnostic],
    parsed: int,
) -> Validated:
    """The rest of validation once every file is parsed and its models built:
    one network, its checks across records, and the counts. The watcher's
    incremental validation (`provgit.api.incremental`), which keeps parsed
    files and built models between runs, finishes through here as
    `validate_source` does, so both find and count alike: `parsed` is how many
    files were parsed this time, every other file counts as cached (the disk
    cache or the watcher's memory)."""
    from provgit.model.build import assemble_state

    state, findings = assemble_state(files, built, commit=source.commit, root=source.root)
    return _checked(source, state, findings, load_diagnostics, parsed)


def _checked(
    source: ConfigSource,
    state: DesiredState,
    findings: list[Finding],
    load_diagnostics: Sequence[Diagnostic],
    parsed: int,
) -> Validated:
    from provgit.model.findings import resolve

    findings = check_network(state, source, findings)
    diags = sorted([*load_diagnostics, *resolve(findings, state.sources)], key=Diagnostic.sort_key)
    return Validated(state, diags, len(source.files), parsed, len(source.files) - parsed)
