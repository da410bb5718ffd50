"""Parsed documents -> `DesiredState`, collecting every problem on the way.

This checks each record on its own (types, ranges, local rules) and key
uniqueness per kind; rules across records live in `provgit.validate.rules`.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from provgit.load.loader import LoadedFile, gc_frozen
from provgit.model.common import Model
from provgit.model.findings import Finding, Pointer
from provgit.model.kinds import KINDS, Kind
from provgit.model.pydantic_errors import explain
from provgit.model.settings import Settings
from provgit.model.state import DesiredState
from provgit.model.text_chars import may_hold_hidden, text_char_findings
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
    # Records that failed their own checks, salvaged (see `salvage`) so that
    # the rules across records still see their names, DNs and references.
    partial: dict[str, list[tuple[Pointer, Any]]] = field(default_factory=dict)


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
    scan = may_hold_hidden(f.data)
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
                ptr = Pointer(f.path, (di, kind_name, i))
                bucket.append((ptr, item))
                if scan:
                    key = item.get(kind.key_field) if isinstance(item, dict) else None
                    findings += text_char_findings(kind_name, _key(key), ptr, item)
    models: dict[str, list[_Item]] = {}
    partial: dict[str, list[_Item]] = {}
    for name, items in per_kind.items():
        models[name] = _validate(KINDS[name], items, findings, partial.setdefault(name, []))
    return FileModels(f.path, settings, models, findings, partial)


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
    partial: dict[str, dict[str, Any]] = {}
    origins: dict[tuple[str, str], Pointer] = {}
    for name, kind in KINDS.items():
        models: list[tuple[Pointer, Any, bool]] = []
        for b in built:
            ours = [(p, m, False) for p, m in b.models.get(name, ())]
            broken = b.partial.get(name, ())
            if broken:
                # In the file's order, so "already defined at" names the first one written.
                ours = sorted(ours + [(p, m, True) for p, m in broken], key=lambda t: t[0].path)
            models.extend(ours)
        resources[name], partial[name] = _index(kind, models, origins, findings)
    state = DesiredState(
        settings=settings,
        resources=resources,
        partial=partial,
        origins=origins,
        sources={f.path: f.data for f in files},
        commit=commit,
        root=root,
    )
    return state, findings


# One file's models by kind: key -> model, and (kind, key) -> where it is written.
Keyed = dict[str, tuple[dict[str, Any], dict[tuple[str, str], Pointer]]]


def keyed(b: FileModels) -> Keyed:
    """`b`'s models by kind and key, as `assemble_state` indexes them (kept per
    file by the watcher, so a new commit indexes only the files it changed)."""
    out: Keyed = {}
    for name, items in b.models.items():
        key_of = KINDS[name].key
        models: dict[str, Any] = {}
        origins: dict[tuple[str, str], Pointer] = {}
        for ptr, model in items:
            key = key_of(model)
            models[key] = model
            origins[(name, key)] = ptr
        out[name] = (models, origins)
    return out


def assemble_unique(
    files: Sequence[LoadedFile],
    built: Sequence[FileModels],
    by_file: Sequence[Keyed],
    commit: str | None = None,
    root: str = ".",
) -> DesiredState:
    """What `assemble_state` builds when it finds nothing: for files already
    known to hold no finding, no salvaged record and no key twice (folded where
    the kind folds case), which the caller has checked. Dict merges in the
    same order as `_index` (kind, then file), instead of a key at a time."""
    settings = next(b.settings for b in built if b.settings is not None)
    resources: dict[str, dict[str, Any]] = {}
    origins: dict[tuple[str, str], Pointer] = {}
    for name in KINDS:
        merged: dict[str, Any] = {}
        for k in by_file:
            found = k.get(name)
            if found is not None:
                merged.update(found[0])
                origins.update(found[1])
        resources[name] = merged
    return DesiredState(
        settings=settings,
        resources=resources,
        partial={name: {} for name in KINDS},
        origins=origins,
        sources={f.path: f.data for f in files},
        commit=commit,
        root=root,
    )


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


def _validate(
    kind: Kind, items: list[_Item], findings: list[Finding], partial: list[_Item]
) -> list[tuple[Pointer, Any]]:
    if not items:
        return []
    raw = [item for _, item in items]
    try:
        # One call into pydantic-core for the whole kind: the fast path.
        models = kind.adapter().validate_python(raw)
        _share_fields_sets(models)
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
        if isinstance(item, dict):
            keep = (kind.key_field, "language") if kind.plural == "prompts" else (kind.key_field,)
            salvaged = salvage(kind.model, item, [e["loc"][1:] for e in bad[i]], keep)
            if all(getattr(salvaged, k, None) is not None for k in keep):
                partial.append((ptr, salvaged))
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


# One `model_fields_set` per distinct set of fields written: pydantic gives
# each model a set of its own (728 bytes for a user's six fields), ~100 MB that
# a watcher keeps for 100,000 users (#16). Sharing equal ones changes nothing:
# the models are frozen (nothing adds to the set), a copy copies it first, and
# equality does not read it.
_FIELDS_SETS: dict[frozenset[str], set[str]] = {}
# The fields of each model class that may hold models.
_NESTED: dict[type[BaseModel], tuple[str, ...]] = {}


def _share_fields_sets(models: Sequence[Any]) -> None:
    """`_FIELDS_SETS`' set for each of `models` and every model nested in them,
    a class at a time: the models of a kind, then all their nested ones of a
    class, and so on (one loop per class and depth, not a call per model)."""
    by_class: dict[type[BaseModel], list[Any]] = {}
    for model in models:
        if isinstance(model, BaseModel):
            of_class = by_class.get(type(model))
            if of_class is None:
                of_class = by_class[type(model)] = []
            of_class.append(model)
    for cls, of_class in by_class.items():
        # Most models of a class write the same fields: one comparison with the
        # last set shared, no frozenset built.
        shared: set[str] | None = None
        for model in of_class:
            own = model.__pydantic_fields_set__
            if shared is None or shared != own:
                shared = _FIELDS_SETS.setdefault(frozenset(own), own)
            if shared is not own:
                object.__setattr__(model, "__pydantic_fields_set__", shared)
        nested = _NESTED.get(cls)
        if nested is None:
            fields = cls.model_fields.items()
            nested = _NESTED[cls] = tuple(n for n, f in fields if _holds_model(f.annotation))
        inner: list[Any] = []
        for name in nested:
            for model in of_class:
                value = model.__dict__.get(name)
                if type(value) is list or type(value) is tuple:
                    inner += value
                elif value is not None:
                    inner.append(value)
        if inner:
            _share_fields_sets(inner)


def _holds_model(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(_holds_model(a) for a in get_args(annotation))


def _index(
    kind: Kind,
    models: list[tuple[Pointer, Any, bool]],
    origins: dict[tuple[str, str], Pointer],
    findings: list[Finding],
) -> tuple[dict[str, Any], dict[str, Any]]:
    out: dict[str, Any] = {}
    broken: dict[str, Any] = {}
    seen: dict[str, str] = {}  # folded key -> key
    for ptr, model, is_partial in models:
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
        (broken if is_partial else out)[key] = model
        origins[(kind.plural, key)] = ptr
    return out, broken


def salvage(
    model: type[Model], data: dict[Any, Any], bad: Sequence[tuple[Any, ...]], keep: Sequence[str]
) -> Any:
    """What can be kept of a record that failed its own checks, unvalidated.

    Fields without an error keep their (valid) values, nested records are
    salvaged the same way, and a field with an error becomes None: the rules
    across records skip a None, so a bad value is reported once, by the record's
    own check, while its other references and its key are still checked and its
    dependents see it as defined. `keep` fields (the key) keep their raw text.
    """
    values: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        sub = [loc[1:] for loc in bad if loc and loc[0] == name]
        if name not in data:
            if info.is_required():
                values[name] = None
            continue
        raw = data[name]
        if name in keep:
            values[name] = str(raw) if isinstance(raw, str | int | float) else None
            continue
        values[name] = _salvage_value(info.annotation, raw, sub)
    return model.model_construct(**values)


def _salvage_value(annotation: Any, raw: Any, bad: list[tuple[Any, ...]]) -> Any:
    if raw is None:
        return None
    inner = _model_in(annotation)
    if inner is not None:
        is_list = get_origin(_strip_optional(annotation)) is list
        if isinstance(raw, dict) and not is_list:
            return salvage(inner, raw, bad, ())
        if isinstance(raw, list) and is_list:
            out = []
            for i, item in enumerate(raw):
                item_bad = [loc[1:] for loc in bad if loc and loc[0] == i]
                out.append(salvage(inner, item, item_bad, ()) if isinstance(item, dict) else None)
            return out
        return None
    if () in bad or any(len(loc) > 0 and not isinstance(loc[0], str | int) for loc in bad):
        return None
    if bad and isinstance(raw, dict):
        wrong = {loc[0] for loc in bad if loc}
        return {k: v for k, v in raw.items() if k not in wrong}
    if bad and isinstance(raw, list):
        wrong = {loc[0] for loc in bad if loc}
        return [v for i, v in enumerate(raw) if i not in wrong]
    return None if bad else raw


def _strip_optional(tp: Any) -> Any:
    if get_origin(tp) in (Union, UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else tp
    return tp


def _model_in(tp: Any) -> type[Model] | None:
    tp = _strip_optional(tp)
    if get_origin(tp) is list:
        tp = _strip_optional(get_args(tp)[0])
    if get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    return tp if isinstance(tp, type) and issubclass(tp, Model) else None


def _key(value: Any) -> str | None:
    return None if value is None else str(value)
