"""The status page of a fleet (`provgit fleet watch`): its networks, grouped,
with the replica holding each network and each element."""

from __future__ import annotations

from html import escape
from typing import Any

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:1.5em}table{border-collapse:collapse}"
    "td,th{padding:.2em .8em;text-align:left;border-bottom:1px solid #ddd}"
    ".ok{color:#070}.bad{color:#a00}h2{margin-top:1.5em}"
)


def _text(value: Any) -> str:
    return "—" if value is None else escape(str(value))


def _network(n: dict[str, Any], as_of: str | None) -> list[str]:
    """`as_of`: when the document was built, for one served from memory
    (`fresh: false`): what it says is not vouched for now, so not green, and
    the statuses shown are its last known ones (`last_known`), as of then."""
    last = n.get("last_known") if as_of is not None else None
    known: dict[str, Any] = last if isinstance(last, dict) else n
    status = known.get("status")
    cls = "ok" if status == "Sync Completed" and as_of is None else "bad"
    said = f"{status} (as of {as_of})" if status and as_of is not None else status
    statuses = known.get("elements") if known is not n else None
    out = [
        f'<h2 id="net-{escape(n["name"])}">{escape(n["name"])}</h2>',
        f"<p>held by <code>{_text(n.get('holder'))}</code> · {_text(n.get('state'))}"
        + (f' · <span class="{cls}">{_text(said)}</span>' if status else "")
        + (f' · <span class="bad">{_text(n.get("error"))}</span>' if n.get("error") else "")
        + "</p>",
        "<table><tr><th>element</th><th>held by</th><th>status</th></tr>",
    ]
    for e in n.get("elements", []):
        shown = e.get("status")
        if isinstance(statuses, dict) and statuses.get(e["name"]) is not None:
            shown = f"{statuses[e['name']]} (last known)"
        out.append(
            f"<tr><td>{_text(e['name'])}</td><td><code>{_text(e.get('holder'))}</code></td>"
            f"<td>{_text(shown)}</td></tr>"
        )
    out.append("</table>")
    return out


def render_fleet_html(doc: dict[str, Any], refresh_seconds: int) -> str:
    replica = doc.get("replica", {})
    body = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="refresh" content="{int(refresh_seconds)}">',
        f"<title>provgit fleet · {len(doc.get('networks', []))} networks</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>provgit fleet</h1>",
        f"<p>this replica <code>{_text(replica.get('id'))}</code> runs "
        f"{len(replica.get('holds', []))} networks; live replicas: "
        + ", ".join(f"<code>{escape(r)}</code>" for r in replica.get("replicas", []))
        + "</p>",
    ]
    # A document served from memory: the last one built, a newer one not
    # ready in time (a network's journal locked or slow). It may be hours old.
    as_of = None if doc.get("fresh", True) is not False else str(doc.get("generated"))
    if as_of is not None:
        body.append(
            f'<p class="bad">Not fresh: the last status built, at {_text(as_of)}; a newer '
            "one was not ready in time (a network's journal locked or slow?). What it says "
            "may have changed since.</p>"
        )
    for n in doc.get("networks", []):
        body += _network(n, as_of)
    body.append("</body></html>")
    return "\n".join(body) + "\n"
