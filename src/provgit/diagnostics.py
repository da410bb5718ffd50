"""Problems found in the input, each pinned to where it is.

Every stage that judges user input returns `Diagnostic`s instead of raising on
the first problem, so an admin sees every problem of a pull request at once.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any, Literal

from provgit.registry import SHORT_KINDS as SHORT_KINDS

Severity = Literal["error", "warning"]


# SHORT_KINDS: kinds whose records plan shows under a shorter collection name
# (the registry derives it from each kind's collections).


@dataclass(frozen=True, order=True)
class Location:
    file: str  # path relative to the config root, with forward slashes
    line: int = 0  # 1-based; 0 when unknown
    column: int = 0  # 1-based; 0 when unknown

    @property
    def shown_file(self) -> str:
        """`file` safe to print: a file's name is the repository's (anyone's
        pull request), and control or invisible characters in it reached the
        terminal of whoever ran validate, and every status event after."""
        name = self.file
        if name.isprintable():
            return name
        return "".join(
            f"<U+{ord(c):04X}>" if unicodedata.category(c)[0] in "CZ" and c != " " else c
            for c in name
        )

    def __str__(self) -> str:
        if self.line:
            return f"{self.shown_file}:{self.line}:{self.column}"
        return self.shown_file


@dataclass(frozen=True)
class Diagnostic:
    location: Location
    message: str
    kind: str | None = None  # resource kind (plural key), e.g. "users"
    key: str | None = None  # the resource's key, e.g. a login id
    hint: str | None = None  # how to fix it, where we know
    code: str = "invalid"  # stable machine-readable category
    severity: Severity = "error"

    def subject(self) -> str:
        """The resource as plan names its records (`cos/12`, not `classes_of_service/12`),
        so a message from validate and a line of the plan read alike."""
        kind = SHORT_KINDS.get(self.kind, self.kind) if self.kind else self.kind
        if kind and self.key is not None:
            return f"{kind}/{self.key}"
        return kind or ""

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.location.file,
            "line": self.location.line,
            "column": self.location.column,
            "severity": self.severity,
            "code": self.code,
            "kind": self.kind,
            "key": self.key,
            "message": self.message,
            "hint": self.hint,
        }

    def sort_key(self) -> tuple[str, int, int, str]:
        loc = self.location
        return (loc.file, loc.line, loc.column, self.message)
