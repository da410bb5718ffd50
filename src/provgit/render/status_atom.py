"""The journal's events as an Atom 1.0 feed (`feed.atom`), the seeds' RSS feed.

Entry ids are tag URIs built from the network and the journal's event id,
which SQLite's AUTOINCREMENT never reuses, so a feed reader sees each event
once however often the feed is rewritten.
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

from provgit.report.document import Document

# RFC 4151 tag URIs: a name and a date we control, no registration needed.
_TAG = "tag:provgit.invalid,2025:"

TITLES = {
    "sync_completed": "Sync Completed",
    "sync_failed": "Sync failed",
    "alarm_raised": "Alarm raised",
    "alarm_cleared": "Alarm cleared",
    "drift": "Drift found",
    "drift_proposed": "Drift proposed",
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
    "window_override": "Sync window overridden",
    "element_removed": "Element removed",
}


def _x(value: Any) -> str:
    return escape("" if value is None else str(value), {'"': "&quot;"})


def feed_id(network: str) -> str:
    return f"{_TAG}{network}/events"


def entry_id(network: str, event_id: int) -> str:
    return f"{_TAG}{network}/event/{event_id}"


def entry_title(event: dict[str, Any]) -> str:
    label = TITLES.get(event["type"], event["type"])
    return f"{label}: {event['element']}" if event.get("element") else label


def render(doc: Document) -> str:
    network = doc["network"] or "network"
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
        '  <link rel="alternate" type="text/html" href="index.html"/>',
        "  <generator>provgit</generator>",
    ]
    for ev in events:
        category = f'    <category term="{_x(ev["type"])}"/>'
        out += [
            "  <entry>",
            f"    <id>{_x(entry_id(network, ev['id']))}</id>",
            f"    <title>{_x(entry_title(ev))}</title>",
            f"    <updated>{_x(ev['time'])}</updated>",
            f"    <published>{_x(ev['time'])}</published>",
            category,
            f'    <link rel="alternate" type="text/html" href="index.html#event-{ev["id"]}"/>',
            f'    <content type="text">{_x(ev["message"])}</content>',
            "  </entry>",
        ]
    out.append("</feed>")
    return "\n".join(out) + "\n"
