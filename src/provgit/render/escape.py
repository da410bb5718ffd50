"""The one way user-supplied text enters markdown (plans, status.md, PR comments).

Login ids, keys, field values, element messages and commands come from YAML
authors and from elements: none of them may close a code span, start a link,
break a table row or carry HTML into a pull request comment. GitHub renders
entities as text, so `<` becomes `&lt;` and no tag survives; invisible and
control characters are shown as their code point, so a reviewer sees them.
"""

from __future__ import annotations

import html
import re
import unicodedata
from typing import Any

# Backslash-escaped in text: what markdown (CommonMark + GFM) reads as syntax
# anywhere in a line (emphasis, code, links, images, tables, strikethrough,
# headings). `<`, `>` and `&` become entities instead: a backslash does not stop
# an HTML tag in every renderer, an entity does.
_MARKDOWN_PUNCT = re.compile(r"([\\`*_\[\]|~!#])")
_LINE_BREAK = re.compile(r"[\r\n\u2028\u2029\x85]+")


def visible(value: Any) -> str:
    """`value` as one line, with control and invisible characters shown as U+XXXX."""
    text = "" if value is None else str(value)
    text = _LINE_BREAK.sub(" ", text)
    if text.isprintable():
        return text
    return "".join(
        f"<U+{ord(c):04X}>" if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn") else c
        for c in text
    )


def md_text(value: Any) -> str:
    """Plain text inside markdown (a table cell, a list item, a heading)."""
    text = html.escape(visible(value), quote=False)
    return _MARKDOWN_PUNCT.sub(r"\\\1", text)


def md_code(value: Any) -> str:
    """`value` as an inline code span that nothing inside can close.

    A code span ends at a run of backticks as long as the one that opened it,
    so the fence is one longer than the longest run inside; `|` is escaped
    because GitHub splits table cells on it even inside code.
    """
    text = visible(value).replace("|", "\\|")
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def md_html(value: Any) -> str:
    """Text inside an HTML block of a markdown document (`<summary>…</summary>`)."""
    return html.escape(visible(value), quote=True)
