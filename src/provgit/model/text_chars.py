"""No control or invisible characters in any text of a record.

A double-quoted YAML string can hold any character through an escape (`"\\e"`,
`"\\u202e"`): an escape sequence in a department name cleared the terminal of
whoever ran `provgit plan`, and reached the call servers' directories; a
right-to-left override or a zero-width space makes a name read as another in
a review. Login ids have their own check (model/login.py, with MiCollab's
rules); every other string of a record, keys of mappings included, is held to
this one. Tabs and line breaks stay allowed (multi-line descriptions).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from typing import Any

from provgit.load.yaml_events import Path
from provgit.model.findings import Finding, Pointer

_ALLOWED = {"\t", "\n"}
# Checked by model/login.py with MiCollab's own rules.
_OWN_CHECK = {("users", "login_id")}


def may_hold_hidden(data: bytes) -> bool:
    """False when no string of a file with these bytes can hold such a character:
    plain ASCII without a backslash (YAML itself refuses control bytes written
    as they are). The fast path: most files are, and scanning 100,000 records
    would cost a second."""
    return b"\\" in data or not data.isascii()


def text_char_findings(kind: str, key: str | None, at: Pointer, item: Any) -> list[Finding]:
    out = []
    for path, text in _strings(item, ()):
        if len(path) == 1 and (kind, path[0]) in _OWN_CHECK:
            continue
        bad = _bad(text)
        if bad:
            out.append(
                Finding(
                    Pointer(at.file, at.path + path),
                    f"{_shown(text)} contains {bad}",
                    kind=kind,
                    key=key,
                    hint="retype it: control and invisible characters reach the elements "
                    "and terminals unseen, and let one name read as another in a review",
                )
            )
    return out


def _strings(value: Any, path: Path) -> Iterator[tuple[Path, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            if isinstance(k, str):
                yield (*path, k), k
            yield from _strings(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, (*path, i))


def _bad(text: str) -> str | None:
    if text.isprintable():  # the fast path: no Cc, Cf, Zl, Zp (nor any space but ' ')
        return None
    for c in text:
        if c in _ALLOWED:
            continue
        cat = unicodedata.category(c)
        if cat == "Cc":
            return f"a control character ({_code(c)})"
        if cat in ("Cf", "Zl", "Zp", "Co", "Cn", "Cs"):
            return f"an invisible character ({_code(c)})"
    return None


def _shown(text: str) -> str:
    r = repr(text)
    return r if len(r) <= 60 else r[:59] + "…"


def _code(c: str) -> str:
    name = unicodedata.name(c, "")
    return f"U+{ord(c):04X} {name}" if name else f"U+{ord(c):04X}"
