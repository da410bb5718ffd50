"""Where a config's secret references are, and whether they resolve here.

Three stages ask the same question of secret references and must answer it
in the same words: `validate --secrets` (every reference in the config, each
at its file:line:col), `plan` (a new or changed resource whose reference did
not resolve when it was projected) and apply's admission (every reference a
resource's writes need, before the first of them goes out). Only the
reference is ever named, never a value.
"""

from __future__ import annotations

import dataclasses
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from provgit.diagnostics import Diagnostic
from provgit.model.common import SecretRef
from provgit.model.findings import Finding, Pointer
from provgit.model.findings import resolve as resolve_findings
from provgit.model.state import DesiredState
from provgit.secrets import (
    OWN_CREDENTIAL,
    SENSITIVE,
    NotInFleetSecrets,
    OwnCredential,
    SecretUnavailable,
    parse_ref,
    resolve,
)
from provgit.source import SETTINGS_FILE


def shown(described: str) -> str:
    """A reference as the config spells it: "env:PIN_JDOE" -> "{env: PIN_JDOE}"."""
    kind, _, name = described.partition(":")
    if kind == "key":
        key, _, path = name.partition("@")
        return f"{{file: {path}, key: {key}}}"
    return f"{{{kind}: {name}}}"


def missing(described: str) -> str:
    """Why a reference that did not resolve is missing (from the reference alone)."""
    if described.startswith("env:"):
        # Set but blank counts as missing too (secrets.resolve); say which it is.
        if os.environ.get(described[4:]) is not None:
            return f"secret {shown(described)} is empty"
        return f"secret {shown(described)} is not set"
    return f"secret {shown(described)} cannot be read"


def unresolvable(described: str) -> str | None:
    """None when the reference resolves here; else why not (no value, ever)."""
    try:
        resolve(parse_ref(described))
    except OwnCredential:
        return f"secret {shown(described)} {OWN_CREDENTIAL}"
    except NotInFleetSecrets:
        return (
            f"secret {shown(described)} is not mapped for this network under secrets: in "
            "the fleet file (a network of a fleet reads only its own secrets)"
        )
    except SecretUnavailable as e:
        if described.startswith("env:"):
            return missing(described)
        # "cannot read secret file X: FileNotFoundError": the error type only.
        return f"{missing(described)} ({str(e).rsplit(': ', 1)[-1]})"
    return None


def has_reference(value: Any) -> bool:
    """Whether a record holds a secret field (most do not): plain loops, it runs per write."""
    if type(value) is dict:
        if SENSITIVE in value:
            return True
        for v in value.values():
            if (type(v) is dict or type(v) is list) and has_reference(v):
                return True
    elif type(value) is list:
        for v in value:
            if (type(v) is dict or type(v) is list) and has_reference(v):
                return True
    return False


def references(fields: Any) -> Iterator[dict[str, Any]]:
    """Every secret field (`{"$sensitive": ..., "ref": ...}`) in a record's fields."""
    if isinstance(fields, dict):
        if SENSITIVE in fields:
            yield fields
            return
        for v in fields.values():
            if isinstance(v, (dict, list)):
                yield from references(v)
    elif isinstance(fields, list):
        for v in fields:
            if isinstance(v, (dict, list)):
                yield from references(v)


# ---- the config: every reference, where it is written --------------------------


@dataclass(frozen=True)
class LocatedRef:
    at: Pointer
    ref: SecretRef
    kind: str | None
    key: str | None


def _walk(
    value: Any, path: tuple[str | int, ...]
) -> Iterator[tuple[tuple[str | int, ...], SecretRef]]:
    if isinstance(value, SecretRef):
        yield path, value
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _walk(getattr(value, name), (*path, name))
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _walk(v, (*path, i))
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, (*path, str(k)))


def located_references(state: DesiredState) -> list[LocatedRef]:
    """Every secret reference of the config (settings, elements, resources)."""
    found = [
        LocatedRef(Pointer(SETTINGS_FILE, (0, *path)), ref, None, None)
        for path, ref in _walk(state.settings, ())
    ]
    for kind, key, model in state.items():
        origin = state.origins.get((kind, key))
        if origin is None or not isinstance(model, BaseModel):
            continue
        for path, ref in _walk(model, ()):
            found.append(LocatedRef(Pointer(origin.file, (*origin.path, *path)), ref, kind, key))
    return found


def reference_diagnostics(state: DesiredState) -> list[Diagnostic]:
    """`check_references` located (file:line:col); a secret file others may
    read is a warning, the rest are errors."""
    return [
        dataclasses.replace(d, severity="warning") if d.code == PERMISSIONS_CODE else d
        for d in resolve_findings(check_references(state), state.sources)
    ]


def check_references(state: DesiredState) -> list[Finding]:
    """A finding for every reference that does not resolve here (`validate --secrets`)."""
    out: list[Finding] = []
    verdicts: dict[str, str | None] = {}
    modes: dict[str, int | None] = {}  # each file looked at once
    for r in located_references(state):
        described = r.ref.describe()
        if described not in verdicts:
            verdicts[described] = unresolvable(described)
        why = verdicts[described]
        if why is None:
            if r.ref.file is not None:
                out.extend(_shared_with_others(r, modes))
            continue
        if r.ref.env:
            hint = (
                f"set the environment variable {r.ref.env} where provgit applies (the deploy job)"
            )
        elif r.ref.key is not None:
            hint = (
                f"add a line {r.ref.key}=VALUE to {r.ref.file} where provgit applies "
                "(a key file: NAME=value lines)"
            )
        else:
            hint = f"make {r.ref.file} readable where provgit applies; its first line is the value"
        out.append(Finding(r.at, why, r.kind, r.key, hint, code="secret"))
    return out


# A warning, not an error: the value is still secret from the config, but any
# account on the machine (a web server, a build user) may read it.
PERMISSIONS_CODE = "secret-permissions"


def _shared_with_others(r: LocatedRef, modes: dict[str, int | None]) -> list[Finding]:
    assert r.ref.file is not None
    if r.ref.file not in modes:
        try:
            modes[r.ref.file] = stat.S_IMODE(Path(r.ref.file).expanduser().stat().st_mode)
        except OSError:
            modes[r.ref.file] = None
    mode = modes[r.ref.file]
    if mode is None or not mode & stat.S_IROTH:
        return []
    return [
        Finding(
            r.at,
            f"secret file {r.ref.file} is readable by every user of this machine (mode {mode:04o})",
            r.kind,
            r.key,
            f"chmod o-r {r.ref.file} (600, or 640 with a group provgit runs in)",
            code=PERMISSIONS_CODE,
        )
    ]
