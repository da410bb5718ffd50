"""Reach-through links: a record's page in its element's own admin form."""

from __future__ import annotations

from urllib.parse import quote


def reach_through(
    template: str | None, element: str, form: str, collection: str, key: str
) -> str | None:
    """A link into the element's own admin form for one record."""
    if not template:
        return None
    try:
        return template.format(
            element=element, form=quote(form), collection=collection, key=quote(key, safe="")
        )
    except (KeyError, IndexError, ValueError):
        return None
