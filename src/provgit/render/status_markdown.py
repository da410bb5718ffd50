"""The status document as markdown for a pull request or a chat message.

Summary first, then the problems, then the rest, cut to `max_bytes` (UTF-8)
with a closing line that says exactly what was left out, so a bounded comment
is never mistaken for a complete one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from provgit.render.escape import md_code, md_text
from provgit.report.document import Document

_ERROR_COLUMNS = ["Action ID", "Element", "Action", "Form", "Key", "Error", "Reason", "Status"]
# Room kept for the closing "cut" note, so adding it never breaks the bound.
_NOTE_RESERVE = 600


def _cell(value: Any) -> str:
    # Keys, reasons and messages come from YAML authors and from elements.
    return md_text(value)


def _link(text: Any, url: str | None) -> str:
    label = _cell(text)
    # A reach-through template is config text: only web links become links.
    if not url or not url.lower().startswith(("http://", "https://")):
        return label
    # Percent-encoded: what would end the link, split the table cell (`|`) or
    # the row (any space or line break, control characters too).
    safe = "".join(
        "".join(f"%{b:02X}" for b in c.encode())
        if c in "()<>`|" or c.isspace() or not c.isprintable()
        else c
        for c in url
    )
    return f"[{label}]({safe})"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


@dataclass
class _Section:
    title: str  # what a cut note calls the rows ("distribution errors")
    head: list[str]
    rows: list[str] = field(default_factory=list)


def _sections(doc: Document) -> list[_Section]:
    """Problems first, then the elements, what is not completed, and events."""
    found = (
        _errors_section(doc["distribution_errors"]),
        _pending_section(doc["pending_updates"]),
        _elements_section(doc["elements"]),
        _resources_section(doc),
        _events_section(doc["events"]),
    )
    return [s for s in found if s is not None]


def _errors_section(errors: list[Document]) -> _Section | None:
    if not errors:
        return None
    s = _Section(
        "distribution errors",
        [
            f"### Distribution errors ({len(errors)})",
            "",
            _row(["Action ID", "Element", "Action", "Form", "Key", "Error", "Reason", "Status"]),
            _row(["---"] * 8),
        ],
    )
    for e in errors:
        s.rows.append(
            _row(
                [
                    str(e["action_id"]),
                    _cell(e["element"]),
                    _cell(e["action"]),
                    _cell(e["form"]),
                    _link(e["key"], e.get("url")),
                    _cell(e["error_type"]),
                    _cell(e["reason"]),
                    _cell(e["status"]),
                ]
            )
        )
    return s


def _pending_section(pending: list[Document]) -> _Section | None:
    if not pending:
        return None
    s = _Section(
        "pending updates",
        [
            f"### Pending updates ({len(pending)})",
            "",
            _row(["Element", "Action", "Form", "Key", "Attempts", "Next retry", "Last error"]),
            _row(["---"] * 7),
        ],
    )
    for p in pending:
        s.rows.append(
            _row(
                [
                    _cell(p["element"]),
                    _cell(p["action"]),
                    _cell(p["form"]),
                    _link(p["key"], p.get("url")),
                    str(p["attempts"]),
                    _cell(p["next_retry"]),
                    _cell(p["last_error"]),
                ]
            )
        )
    return s


def _elements_section(elements: Document) -> _Section | None:
    if not elements:
        return None
    s = _Section(
        "elements",
        [
            "### Elements",
            "",
            _row(["Element", "Status", "Revision", "Detail"]),
            _row(["---"] * 4),
        ],
    )
    for name, e in elements.items():
        rev = "" if e["revision"] is None else str(e["revision"])
        s.rows.append(_row([_cell(name), _cell(e["status"]), rev, _cell(e["detail"])]))
    return s


def _resources_section(doc: Document) -> _Section | None:
    open_resources = [r for r in doc["resources"] if r["class"] != "ok"]
    if not open_resources:
        return None
    s = _Section(
        "resources not completed",
        [
            f"### Resources not completed ({doc['counts']['resources_not_completed']})",
            "",
            _row(["Resource", "Status", "Elements"]),
            _row(["---"] * 3),
        ],
    )
    for r in open_resources:
        shared = " ⇄" if r["shared"] else ""
        links = ", ".join(_link(x["element"], x.get("url")) for x in r["links"])
        s.rows.append(
            _row([_cell(f"{r['kind']}/{r['resource']}") + shared, _cell(r["status"]), links])
        )
    return s


def _events_section(events: list[Document]) -> _Section | None:
    if not events:
        return None
    s = _Section("events", ["### Recent events", ""])
    for ev in reversed(events):  # newest first: a chat reader wants the latest
        s.rows.append(f"- {md_code(ev['time'])} **{_cell(ev['type'])}** {_cell(ev['message'])}")
    return s


def summary_lines(doc: Document) -> list[str]:
    c = doc["counts"]
    network = doc["network"] or "network"
    lines = [f"## provgit: {_cell(doc['status'])} — {_cell(network)}", ""]
    facts = [
        f"{c['distribution_errors']} distribution error(s)",
        f"{c['pending_updates']} pending update(s)",
        f"{c['elements_not_completed']} of {c['elements']} element(s) not completed",
        f"{c['resources_not_completed']} resource(s) not completed",
    ]
    level = doc["alarm"]["level"]
    facts.append(f"**{level} alarm**" if level else "no alarm")
    ivr = doc["alarm"].get("ivr_service")
    if ivr:
        facts.append(f"**IVR service alarm** ({_cell(', '.join(ivr))})")
    lines.append("**" + _cell(doc["status"]) + "**: " + ", ".join(facts) + ".")
    run = doc.get("run")
    where = []
    if run:
        command = f" ({_cell(run['command'])})" if run.get("command") else ""
        where.append(f"run {_cell(run['id'])}{command}")
        if run.get("finished"):
            where.append(f"finished {_cell(run['finished'])}")
    source = doc.get("source")
    if source:
        dirty = " with uncommitted changes" if source["dirty"] else ""
        where.append(f"commit {md_code(source['commit'][:12])}{dirty}")
    if where:
        text = ", ".join(where)
        lines += ["", text[:1].upper() + text[1:] + "."]
    secrets = doc.get("secrets_unavailable")
    if secrets:
        lines += ["", f"**Note:** {_cell(secrets['note'])}"]
    return lines


def render(doc: Document, max_bytes: int = 60_000) -> str:
    """Markdown of at most `max_bytes` UTF-8 bytes."""
    budget = max(max_bytes - _NOTE_RESERVE, 0)
    out: list[str] = []
    size = 0

    def fits(line: str) -> bool:
        return size + len(line.encode()) + 1 <= budget

    def add(line: str) -> None:
        nonlocal size
        out.append(line)
        size += len(line.encode()) + 1

    # The summary always goes in (it is a few hundred bytes).
    for line in summary_lines(doc):
        add(line)
    cut: list[str] = []
    full = True
    for section in _sections(doc):
        if (
            not full
            or not all(fits(h) for h in ["", *section.head])
            or (section.rows and not fits(section.rows[0]))
        ):
            full = False
            cut.append(f"{len(section.rows)} {section.title}")
            continue
        add("")
        for h in section.head:
            add(h)
        for i, row in enumerate(section.rows):
            if not fits(row):
                full = False
                cut.append(f"{len(section.rows) - i} {section.title}")
                break
            add(row)
    omitted = doc["counts"].get("resources_omitted", 0)
    text = "\n".join(out) + "\n"
    if cut:
        note = (
            f"\n_Cut to fit {max_bytes} bytes: {', '.join(cut)} not shown. "
            "The full state is in status.json and `provgit status`._\n"
        )
        text += note
    elif omitted:
        text += f"\n_{omitted} completed resource(s) not listed._\n"
    encoded = text.encode()
    if len(encoded) > max_bytes:  # only with a tiny bound and a huge summary
        text = encoded[: max_bytes - 4].decode(errors="ignore") + "\n…\n"
    return text
