"""Short, safe text for field values (secrets already redacted upstream)."""

from __future__ import annotations

import json
from typing import Any

from provgit.secrets import redact


def short(value: Any, limit: int = 80) -> str:
    text = json.dumps(redact(value), ensure_ascii=False, separators=(", ", ": "))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def reach_through(
    template: str | None, element: str, form: str, collection: str, key: str
) -> str | None:
    """A link into the element's own admin form for one record."""
    if not template:
        return None
    from urllib.parse import quote

    try:
        return template.format(
            element=element, form=quote(form), collection=collection, key=quote(key, safe="")
        )
    except (KeyError, IndexError, ValueError):
        return None
