"""Every report file of one status document: file name -> content (pure: no I/O)."""

from __future__ import annotations

import orjson

from provgit.render import status_atom, status_html, status_markdown
from provgit.report.document import Document

STATUS_FILE = "status.json"
MARKDOWN_FILE = "status.md"
HTML_FILE = "index.html"
FEED_FILE = "feed.atom"


def status_json(doc: Document) -> str:
    # orjson, as `provgit status --format json` prints it: the standard
    # encoder's indenting is pure Python (a W100k document: ~0.4 s, most of a
    # report's cost in a reconcile with nothing to do).
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode() + "\n"


def render_all(
    doc: Document,
    feed_doc: Document,
    markdown_max_bytes: int,
    html_resources: str | None = None,
) -> dict[str, str]:
    """File name -> content for every report (pure: no I/O). `html_resources`:
    the page's resource list, when the caller has it (`status_html.resources_section`)."""
    return {
        STATUS_FILE: status_json(doc),
        MARKDOWN_FILE: status_markdown.render(doc, markdown_max_bytes),
        HTML_FILE: status_html.render(doc, resources=html_resources),
        FEED_FILE: status_atom.render(feed_doc),
    }
