"""Problems pinned to a data path; turned into file:line:col only when reported.

Locations are looked up lazily (see `load.yaml_locate.locate`) so the fast path
of a valid config never pays for them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from provgit.diagnostics import Diagnostic, Location

if TYPE_CHECKING:
    # The YAML reader (ruamel) loads only when a finding is located: an apply
    # builds findings' types (secret_refs) but reports none.
    from provgit.load.yaml_events import Path


@dataclass(frozen=True)
class Pointer:
    file: str
    path: Path  # (document index, kind, item index, field, ...)


@dataclass(frozen=True)
class Finding:
    at: Pointer
    message: str
    kind: str | None = None
    key: str | None = None
    hint: str | None = None
    code: str = "invalid"
    # Another place the message refers to; "{other}" in the message becomes its location.
    other: Pointer | None = None


def resolve(findings: Iterable[Finding], sources: Mapping[str, bytes]) -> list[Diagnostic]:
    from provgit.load.yaml_locate import locate

    findings = list(findings)
    wanted: dict[str, set[Path]] = defaultdict(set)
    for f in findings:
        for p in (f.at, f.other):
            if p is not None:
                wanted[p.file].add(p.path)
    positions: dict[tuple[str, Path], tuple[int, int]] = {}
    for file, paths in wanted.items():
        data = sources.get(file)
        found = locate(data, paths) if data is not None else {}
        for path in paths:
            positions[(file, path)] = found.get(path, (0, 0))

    def where(p: Pointer) -> Location:
        line, col = positions.get((p.file, p.path), (0, 0))
        return Location(p.file, line, col)

    out = []
    for f in findings:
        msg = f.message
        if f.other is not None:
            msg = msg.replace("{other}", str(where(f.other)))
        out.append(Diagnostic(where(f.at), msg, f.kind, f.key, f.hint, f.code))
    out.sort(key=Diagnostic.sort_key)
    return out
