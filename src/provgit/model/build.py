"""Parsed documents -> `DesiredState`, collecting every problem on the way.

This checks each record on its own (types, ranges, local rules) and key
uniqueness per kind; rules across records live in `provgit.validate.rules`.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from provgit.load.loader import LoadedFile, gc_frozen
from provgit.model.findings import Finding, Pointer
from provgit.model.kinds import KINDS, Kind
from provgit.model.pydantic_errors import explain
from provgit.model.settings import Settings
from provgit.model.state import DesiredState
from provgit.source import SETTINGS_FILE

_Item = tuple[Pointer, Any]


@dataclass(frozen=True)
class FileModels:
    """One file's records, each checked on its own: reusable while its bytes
    are the same (the watcher keeps these by blob id)."""

    path: str
    settings: Settings | None
    models: dict[str, list[tuple[Pointer, Any]]]
    findings: list[Finding]


def build_state(
    files: Sequence[LoadedFile], commit: str | None = None, root: str = "."
) -> tuple[DesiredState, list[Finding]]:
    # Validation allocates a few million objects (models, their dicts, pointers)
    # that all survive: with the collector running, CPython walks the growing
    # heap again and again (3.1 s -> 1.2 s for 100,000 users without it).
    with gc_frozen():
        return assemble_state(files, [build_file(f) for f in files], commit, root)


def build_file(f: LoadedFile) -> FileModels:
    findings: list[Finding] = []
    settings: Settings | None = None
    per_kind: dict[str, list[_Item]] = {}
    for di, doc in enumerate(f.docs):
        if doc is None:
            continue
        at = Pointer(f.path, (di,))
        if f.path == SETTINGS_FILE:
            if settings is not None:
                findings.append(Finding(at, "only one settings document is allowed"))
                continue
            settings = _settings(doc, at, findings)
            continue
        if not isinstance(doc, dict):
            findings.append(
                Finding(
                    at,
                    "a config document must be a mapping of kinds to lists, "
                    f"e.g. 'users:' (got {type(doc).__name__})",
                    code="layout",
                )
            )
            continue
        for kind_name, items in doc.items():
            kat = Pointer(f.path, (di, kind_name))
            kind = KINDS.get(kind_name) if isinstance(kind_name, str) else None
            if kind is None:
                close = difflib.get_close_matches(str(kind_name), list(KINDS), n=1)
                findings.append(
                    Finding(
                        kat,
                        f"unknown kind '{kind_name}'",
                        hint=f"did you mean '{close[0]}'?"
                        if close
                        else f"known kinds: {', '.join(KINDS)}",
                        code="layout",
                    )
                )
                continue
            if items is None:
                continue
            if not isinstance(items, list):
                findings.append(
                    Finding(
                        kat,
                        f"'{kind_name}' must be a list of records (start each with '- ')",
                        kind=kind_name,
                        code="layout",
                    )
                )
                continue
            bucket = per_kind.setdefault(kind_name, [])
            for i, item in enumerate(items):
                bucket.append((Pointer(f.path, (di, kind_name, i)), item))
    models = {name: _validate(KINDS[name], items, findings) for name, items in per_kind.items()}
    return FileModels(f.path, settings, models, findings)


def assemble_state(
    files: Sequence[LoadedFile],
    built: Sequence[FileModels],
    commit: str | None = None,
    root: str = ".",
) -> tuple[DesiredState, list[Finding]]:
    """The network from every file's models: keys indexed and unique per kind."""
    findings: list[Finding] = [x for b in built for x in b.findings]
    settings = next((b.settings for b in built if b.settings is not None), None)
    if settings is None:
        # Defaults would silently drop the sharing exclusions, the protected
        # records and the thresholds a network relies on: never assume them.
        findings.append(settings_missing(any(b.path == SETTINGS_FILE for b in built)))
        settings = Settings()
    resources: dict[str, dict[str, Any]] = {}
    origins: dict[tuple[str, str], Pointer] = {}
    for name, kind in KINDS.items():
        models = [m for b in built for m in b.models.get(name, ())]
        resources[name] = _index(kind, models, origins, findings)
    state = DesiredState(
        settings=settings,
        resources=resources,
        origins=origins,
        sources={f.path: f.data for f in files},
        commit=commit,
        root=root,
    )
    return state, findings


SETTINGS_HOW = (
    "create it at the config root with at least 'version: 1' and 'network: NAME' "
    "(see sample-config/provgit.yaml)"
)


def settings_missing(present: bool) -> Finding:
    """provgit.yaml is missing from the config root, or holds no settings."""
    if present:
        return Finding(
            Pointer(SETTINGS_FILE, ()),
            f"{SETTINGS_FILE} is empty; the network's settings are required",
            hint="write at least 'version: 1' and 'network: NAME' in it "
            "(see sample-config/provgit.yaml)",
            code="settings",
        )
    return Finding(
        Pointer(SETTINGS_FILE, ()),
        f"no {SETTINGS_FILE} at the config root: is this the config directory?",
        hint=SETTINGS_HOW,
        code="settings",
    )


def _settings(doc: Any, at: Pointer, findings: list[Finding]) -> Settings:
    try:
        return Settings.model_validate(doc)
    except ValidationError as e:
        for err in e.errors():
            loc, msg, hint = explain(Settings, err)
            findings.append(
                Finding(Pointer(at.file, at.path + loc), msg, hint=hint, code="settings")
            )
    return Settings()


def _validate(kind: Kind, items: list[_Item], findings: list[Finding]) -> list[tuple[Pointer, Any]]:
    if not items:
        return []
    raw = [item for _, item in items]
    try:
        # One call into pydantic-core for the whole kind: the fast path.
        models = kind.adapter().validate_python(raw)
        return list(zip((p for p, _ in items), models, strict=True))
    except ValidationError as e:
        bad: dict[int, list[Any]] = {}
        for err in e.errors():
            bad.setdefault(int(err["loc"][0]), []).append(err)
    ok: list[tuple[Pointer, Any]] = []
    for i, (ptr, item) in enumerate(items):
        if i not in bad:
            ok.append((ptr, kind.model.model_validate(item)))
            continue
        key = item.get(kind.key_field) if isinstance(item, dict) else None
        for err in bad[i]:
            loc, msg, hint = explain(kind.model, dict(err, loc=err["loc"][1:]))
            if not isinstance(item, dict) and not loc:
                msg = f"each {kind.singular} must be a mapping of fields, got {type(item).__name__}"
            findings.append(
                Finding(
                    Pointer(ptr.file, ptr.path + loc),
                    msg,
                    kind=kind.plural,
                    key=None if key is None else str(key),
                    hint=hint,
                )
            )
    return ok


def _index(
    kind: Kind,
    models: list[tuple[Pointer, Any]],
    origins: dict[tuple[str, str], Pointer],
    findings: list[Finding],
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    seen: dict[str, str] = {}  # folded key -> key
    for ptr, model in models:
        key = kind.key(model)
        folded = key.casefold() if kind.fold_case else key
        if folded in seen:
            first = seen[folded]
            same = "" if first == key else f" (as '{first}'; {kind.singular} names ignore case)"
            findings.append(
                Finding(
                    Pointer(ptr.file, (*ptr.path, kind.key_field)),
                    f"duplicate {kind.singular} '{key}': already defined at {{other}}{same}",
                    kind=kind.plural,
                    key=key,
                    hint=f"each {kind.singular} is defined once; remove or rename one",
                    code="duplicate",
                    other=origins[(kind.plural, first)],
                )
            )
            continue
        seen[folded] = key
        out[key] = model
        origins[(kind.plural, key)] = ptr
    return out
