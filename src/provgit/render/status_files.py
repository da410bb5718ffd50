"""Every report file of one status document: file name -> content (pure: no I/O)."""

from __future__ import annotations

import json

from provgit.render import status_atom, status_html, status_markdown
from provgit.report.document import Document

STATUS_FILE = "status.json"
MARKDOWN_FILE = "status.md"
HTML_FILE = "index.html"
FEED_FILE = "feed.atom"


def status_json(doc: Document) -> str:
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


def render_all(doc: Document, feed_doc: Document, markdown_max_bytes: int) -> dict[str, str]:
    """File name -> content for every report (pure: no I/O)."""
    return {
        STATUS_FILE: status_json(doc),
        MARKDOWN_FILE: status_markdown.render(doc, markdown_max_bytes),
        HTML_FILE: status_html.render(doc),
        FEED_FILE: status_atom.render(feed_doc),
    }
