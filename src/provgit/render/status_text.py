"""The status document as plain text for a terminal (`provgit status`)."""

from __future__ import annotations

import calendar
import time

from provgit.apply.status import IVR_DOWN
from provgit.report.document import Document, worst_line

MAX_ROWS = 50  # per list; `--format json` has everything


def _table(rows: list[list[str]], indent: str = "  ") -> list[str]:
    if not rows:
        return []
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        (indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True))).rstrip()
        for r in rows
    ]


def _more(n: int, what: str) -> list[str]:
    return [f"  … and {n} more {what} (--format json lists all)"] if n > 0 else []


def _where(r: Document) -> str:
    """Where a derived resource is not completed, and what it is there."""
    per = r.get("elements") or {}
    return ", ".join(
        f"{name}: {e['status']}" for name, e in per.items() if e["state"] != "completed"
    )


def render(doc: Document) -> str:
    lines = _header(doc)
    lines += _elements(doc["elements"], doc.get("generated"))
    lines += _read_only(doc["elements"])
    lines += _open_resources(doc)
    lines += _errors(doc["distribution_errors"])
    lines += _pending(doc["pending_updates"])
    return "\n".join(lines) + "\n"


def _header(doc: Document) -> list[str]:
    """The summary line, alarms, the worst line, the last run and any filter."""
    c = doc["counts"]
    level = doc["alarm"]["level"]
    lines = [
        f"{doc['network'] or 'network'}: {doc['status']} — "
        f"{c['distribution_errors']} distribution error(s), "
        f"{c['pending_updates']} pending update(s), " + (f"{level} alarm" if level else "no alarm")
    ]
    ivr = doc["alarm"].get("ivr_service")
    if ivr:
        lines.append(f"IVR service alarm: {IVR_DOWN} ({', '.join(ivr)})")
    worst = worst_line(doc)
    if worst and worst != doc["status"]:
        lines.append(f"Worst: {worst}")
    run = doc.get("run")
    if run:
        lines.append(
            f"Last run {run['id']}"
            + (f" ({run['command']})" if run.get("command") else "")
            + (f", finished {run['finished']}" if run.get("finished") else "")
            + (f": {run['outcome']}" if run.get("outcome") else "")
        )
    secrets = doc.get("secrets_unavailable")
    if secrets:
        lines.append(f"Note: {secrets['note']}")
    flt = doc.get("filter")
    if flt:
        shown = [f"{k} {v}" for k, v in flt.items() if v]
        lines.append(f"Showing {', '.join(shown)} only")
    return lines


def verified(e: Document, generated: str | None) -> str:
    """What the element's records rest on: "verified in full 3 h ago" (its
    last full read), "" when the document does not say."""
    at = e.get("full_read_at")
    if not at or not generated:
        return ""
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    try:
        seconds = calendar.timegm(time.strptime(generated, fmt)) - calendar.timegm(
            time.strptime(at, fmt)
        )
    except ValueError:
        return ""
    if seconds < 60:
        return "verified in full just now"
    if seconds < 3600:
        return f"verified in full {seconds // 60} min ago"
    if seconds < 48 * 3600:
        return f"verified in full {seconds // 3600} h ago"
    return f"verified in full {seconds // 86400} days ago"


def _elements(elements: Document, generated: str | None = None) -> list[str]:
    lines = ["", "Elements:"]
    if elements:
        lines += _table(
            [["ELEMENT", "STATUS", "REVISION", "DETAIL"]]
            + [
                [
                    name,
                    e["status"],
                    "" if e["revision"] is None else str(e["revision"]),
                    "; ".join(x for x in (e["detail"], verified(e, generated)) if x),
                ]
                for name, e in elements.items()
            ]
        )
    else:
        lines.append("  none yet")
    return lines


def _read_only(elements: Document) -> list[str]:
    """How read-only elements differ from the config: information, counted nowhere."""
    lines: list[str] = []
    for name, e in elements.items():
        ro = e.get("read_only")
        if not ro or not ro["differences"]:
            continue
        lines += ["", f"Read-only {name}: differs from the config (information, not written):"]
        lines += _table(
            [
                [f"{d['collection']}/{d['key']}", d["change"], ", ".join(d["fields"])]
                for d in ro["differences"][:20]
            ]
        )
        lines += _more(len(ro["differences"]) - 20 + ro["omitted"], "difference(s)")
    return lines


def _open_resources(doc: Document) -> list[str]:
    open_resources = [r for r in doc["resources"] if r["class"] != "ok"]
    if not open_resources:
        return []
    lines = ["", f"Resources not completed ({doc['counts']['resources_not_completed']}):"]
    lines += _table(
        [
            [
                f"{r['kind']}/{r['resource']}" + (" ⇄" if r["shared"] else ""),
                r["status"],
                f"{r['completed']}/{r['total']}",
                _where(r),
            ]
            for r in open_resources[:MAX_ROWS]
        ]
    )
    return lines + _more(len(open_resources) - MAX_ROWS, "resources")


def _errors(errors: list[Document]) -> list[str]:
    if not errors:
        return []
    lines = ["", f"Distribution errors ({len(errors)}):"]
    lines += _table(
        [["ID", "ELEMENT", "ACTION", "FORM", "KEY", "ERROR", "STATUS", "REASON"]]
        + [
            [
                str(e["action_id"]),
                e["element"],
                e["action"],
                e["form"],
                e["key"],
                e["error_type"],
                e["status"],
                e["reason"],
            ]
            for e in errors[:MAX_ROWS]
        ]
    )
    return lines + _more(len(errors) - MAX_ROWS, "distribution errors")


def _pending(pending: list[Document]) -> list[str]:
    if not pending:
        return []
    lines = ["", f"Pending updates ({len(pending)}):"]
    lines += _table(
        [["ELEMENT", "ACTION", "FORM", "KEY", "ATTEMPTS", "NEXT RETRY", "LAST ERROR"]]
        + [
            [
                p["element"],
                p["action"],
                p["form"],
                p["key"],
                str(p["attempts"]),
                p["next_retry"],
                p["last_error"],
            ]
            for p in pending[:MAX_ROWS]
        ]
    )
    return lines + _more(len(pending) - MAX_ROWS, "pending updates")
