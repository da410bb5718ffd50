"""The journal's events as an Atom 1.0 feed (`feed.atom`), the seeds' RSS feed.

Entry ids are tag URIs (RFC 4151) built from the network, the event's time
and the journal's event id. SQLite's AUTOINCREMENT never reuses an id within
one journal, so a feed reader sees each event once however often the feed is
rewritten; the time keeps ids apart across journals (another state directory,
a journal started afresh), whose ids start again from 1.

Links depend on where the feed is served: beside `index.html` as a file, or
at `/feed.atom` on the watch server, whose page is `/`. The caller says which.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from provgit.report.document import Document

# RFC 4151 tag URIs: a name and a date we control, no registration needed.
_TAG = "tag:provgit,2026:"
# Where the feed sits beside the status page, as report files.
FILE_PAGE = "index.html"
FILE_SELF = "feed.atom"

TITLES = {
    "sync_completed": "Sync Completed",
    "sync_failed": "Sync failed",
    "alarm_raised": "Alarm raised",
    "alarm_cleared": "Alarm cleared",
    "drift": "Drift found",
    "drift_proposed": "Drift proposed",
    "drift_rejected": "Drift proposal closed: config wins",
    "refused": "Refused",
    "config_refused": "Config refused",
    "interrupted": "Run interrupted",
    "removal_held": "Removal held",
    "removal_withdrawn": "Removal withdrawn",
    "element_down": "Element down",
    "element_up": "Element back",
    "resource_removed": "Resource removed",
    "suspended": "Suspended",
    "resumed": "Resumed",
    "window_held": "Held by sync window",
    "call_load_deferred": "Deferred by call load",
    "call_load_waited_out": "Sent after waiting for the call load",
    "hold_released": "Held work released",
    "feed_missed": "Change feed missed changes",
    "move_held": "Move held until the new element has it",
    "window_override": "Sync window overridden",
    "element_removed": "Element removed",
}


# Characters XML 1.0 does not allow in a document: one of them in an event's
# message made the whole feed malformed (every reader refused it).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _x(value: Any) -> str:
    # `xml.sax.saxutils.escape` with the quote: that module loads urllib.request
    # (http.client, email, ssl ~40 modules) for one replace chain.
    text = "" if value is None else str(value)
    if not text.isprintable():
        text = _NOT_XML.sub(lambda m: f"<U+{ord(m.group()):04X}>", text)
    return (
        text.replace("&", "&amp;").replace(">", "&gt;").replace("<", "&lt;").replace('"', "&quot;")
    )


def _name(network: str) -> str:
    # A tag URI's specific part is URI characters: a network named with spaces
    # or accents still gives a valid id.
    return quote(network, safe="-._~")


def feed_id(network: str) -> str:
    return f"{_TAG}{_name(network)}/events"


def entry_id(network: str, event_id: int, time: str, journal: str | None = None) -> str:
    """`tag:provgit,2026:<network>/event/<journal>/<time>/<id>`, e.g.
    `.../event/3f2a9c0d1e4b5a69/20261130T054222Z/7`: the journal's identity
    keeps two journals of one network (event 7 each, the same second) apart.
    A journal without one (read-only, never opened by a writer since) has
    the older form, without it."""
    stamp = "".join(c for c in time if c.isalnum())
    who = f"{_name(journal)}/" if journal else ""
    return f"{_TAG}{_name(network)}/event/{who}{stamp}/{event_id}"


def entry_title(event: dict[str, Any]) -> str:
    label = TITLES.get(event["type"], event["type"])
    return f"{label}: {event['element']}" if event.get("element") else label


def render(doc: Document, *, page: str = FILE_PAGE, self_href: str = FILE_SELF) -> str:
    """The feed; `page` is the status page's URL and `self_href` the feed's own,
    both as seen from where the feed is served."""
    network = doc["network"] or "network"
    journal = doc.get("journal_id")
    events = list(reversed(doc["events"]))  # newest first, as readers expect
    updated = events[0]["time"] if events else doc["generated"]
    out = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<feed xmlns="http://www.w3.org/2005/Atom">',
        f"  <id>{_x(feed_id(network))}</id>",
        f"  <title>provgit {_x(network)}: sync events</title>",
        f"  <subtitle>{_x(doc['status'])}</subtitle>",
        f"  <updated>{_x(updated)}</updated>",
        "  <author><name>provgit</name></author>",
        f'  <link rel="self" type="application/atom+xml" href="{_x(self_href)}"/>',
        f'  <link rel="alternate" type="text/html" href="{_x(page)}"/>',
        "  <generator>provgit</generator>",
    ]
    for ev in events:
        category = f'    <category term="{_x(ev["type"])}"/>'
        out += [
            "  <entry>",
            f"    <id>{_x(entry_id(network, ev['id'], ev['time'], journal))}</id>",
            f"    <title>{_x(entry_title(ev))}</title>",
            f"    <updated>{_x(ev['time'])}</updated>",
            f"    <published>{_x(ev['time'])}</published>",
            category,
            f'    <link rel="alternate" type="text/html" href="{_x(page)}#event-{ev["id"]}"/>',
            f'    <content type="text">{_x(ev["message"])}</content>',
            "  </entry>",
        ]
    out.append("</feed>")
    return "\n".join(out) + "\n"
