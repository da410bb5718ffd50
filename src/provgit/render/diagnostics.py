"""Diagnostics as text for people, JSON for tools, annotations for GitHub."""

from __future__ import annotations

import json
from collections.abc import Sequence

from provgit.diagnostics import Diagnostic
from provgit.render.escape import visible

# A key is named beside each of its problems: this much of it says which.
SUBJECT_MAX = 80


def _subject(d: Diagnostic) -> str:
    """The record a problem is about, as written but safe to print: a key is
    YAML text (control characters would reach the terminal, a huge one the log)."""
    text = visible(d.subject())
    return text if len(text) <= SUBJECT_MAX else text[: SUBJECT_MAX - 1] + "…"


def as_text(diags: Sequence[Diagnostic]) -> str:
    lines = []
    for d in diags:
        subject = f" [{_subject(d)}]" if d.subject() else ""
        lines.append(f"{d.location}: {d.severity}:{subject} {d.message}")
        if d.hint:
            lines.append(f"    hint: {d.hint}")
    return "\n".join(lines)


def as_json(diags: Sequence[Diagnostic], extra: dict[str, object] | None = None) -> str:
    doc: dict[str, object] = {
        "format": "provgit.diagnostics/1",
        "valid": not any(d.severity == "error" for d in diags),
        "errors": sum(d.severity == "error" for d in diags),
        "diagnostics": [d.to_json() for d in diags],
    }
    if extra:
        doc.update(extra)
    return json.dumps(doc, indent=2)


def _escape_data(s: str) -> str:
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(s: str) -> str:
    return _escape_data(s).replace(":", "%3A").replace(",", "%2C")


def as_github(diags: Sequence[Diagnostic], root_prefix: str = "") -> str:
    """GitHub Actions workflow commands: one annotation per problem."""
    out = []
    for d in diags:
        props = [f"file={_escape_property(root_prefix + d.location.shown_file)}"]
        if d.location.line:
            props.append(f"line={d.location.line}")
            props.append(f"col={d.location.column}")
        if d.subject():
            props.append(f"title={_escape_property('provgit ' + _subject(d))}")
        msg = d.message + (f" (hint: {d.hint})" if d.hint else "")
        out.append(f"::{d.severity} {','.join(props)}::{_escape_data(msg)}")
    return "\n".join(out)
