"""The generic shape every stage after `target` speaks.

`target` turns resources into records; observe, plan, apply, the drivers and the
journal only ever see `(element, collection, key, fields)`.
"""

from __future__ import annotations

from typing import Any

# Element types and the collections each holds (with the admin form name users
# know them by) come from the registry of kinds.
from provgit.registry import COLLECTIONS as COLLECTIONS
from provgit.registry import DIRECTORY as DIRECTORY
from provgit.registry import IVR as IVR
from provgit.registry import MICOLLAB as MICOLLAB
from provgit.registry import MIVB as MIVB

# A record's fields: a JSON object (str keys, JSON values).
Fields = dict[str, Any]
# collection -> key -> fields
Records = dict[str, dict[str, Fields]]

# Field names that start with this prefix are bookkeeping kept by provgit on the
# element (e.g. who created the record); they are never compared as desired data.
META_PREFIX = "_"
# Marks a record as created by provgit, so pruning only touches what we own.
MANAGED_BY = "_managed_by"
MANAGED_BY_VALUE = "provgit"

# Types the element store and simulator serve (a directory is a real LDAP server).
ELEMENT_TYPES = (MIVB, MICOLLAB, IVR)


def form_name(element_type: str, collection: str) -> str:
    """The admin form name for a collection, or the collection itself if unknown."""
    return COLLECTIONS.get(element_type, {}).get(collection, collection)


def form_name_of(collection: str, element_type: str | None = None) -> str:
    """The form name when the element's type may not be known (a journal read
    without the config): the one name every element type gives the collection,
    e.g. `cos` is "Class of Service Options"; the collection itself when the
    types disagree (`users`) and no type is given."""
    if element_type:
        return form_name(element_type, collection)
    names = {forms[collection] for forms in COLLECTIONS.values() if collection in forms}
    return names.pop() if len(names) == 1 else collection
