"""The one registry of resource kinds and the record collections they become.

Every table that names kinds or collections (which collections an element type
holds and the admin form users know each by, the order operations run in,
what is deleted first, which kinds the IVR seed calls IVR content, where
import writes a new record, ...) is derived from the entries here. Adding a
resource kind means its model (`model/`, bound in `model/kinds.py`), its
projection (`projection/`) and one `KindEntry` below; nothing else.

This module imports nothing from provgit, so every stage (the drivers and the
simulator included) can read it. The derived tables are plain containers kept
up to date in place by `register`/`unregister`: read them, never mutate them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

# Element types (re-exported by `records`).
MIVB = "mivb"
MICOLLAB = "micollab"
IVR = "ivr"
# An LDAP directory (an OU) MiCollab reads its users from through IDS.
DIRECTORY = "directory"


@dataclass(frozen=True)
class CollectionEntry:
    """One record collection on the elements."""

    name: str
    # element type -> the admin form name users know the collection by there
    # (SDS distribution errors name the form).
    forms: Mapping[str, str]
    # Reference order: a collection's adds and modifies run after those of
    # every collection with a lower number (the records it names exist first).
    order: int
    # Nothing references its records: their deletes run first, freeing DNs and names.
    delete_first: bool = False
    # Set when a record's key is not its resource's key: the field that names
    # the resource's key (a remote directory entry is keyed by DN and names its
    # user's login_id).
    resource_field: str | None = None


@dataclass(frozen=True)
class KindEntry:
    """One resource kind: the YAML key and everything the stages know about it."""

    plural: str  # the YAML key and the kind's name in messages, plans and `show`
    collections: tuple[CollectionEntry, ...] = ()
    # Other names users reach for in `provgit show KIND/KEY`.
    aliases: tuple[str, ...] = ()
    # The IVR seed's "IVR" content: resource status reads `Syncing IVRs X/Y Completed`.
    ivr_content: bool = False
    # Nothing else refers to it: a change to one changes only its own records,
    # so it can be re-projected alone.
    leaf: bool = False
    # Provisioned centrally on MiCollab: import lets MiCollab win under
    # `import.rules.central: micollab`.
    central: bool = False
    # Import reads one record back into one resource (users have their own views).
    one_record_each: bool = True
    # Where import puts a new record when no file holds its kind yet, relative
    # to the config root; None: import's own rule (users: people/<department>.yaml).
    layout: str | None = None
    # How import reads one stored record (key, fields without bookkeeping)
    # back into the resource's YAML data: the inverse of the kind's
    # projection. None for a built-in kind (importing/reverse.py knows them);
    # for a kind added at run time, None means the record's fields are the
    # resource's fields, which holds for a projection that copies the model.
    reverse: Callable[[str, Mapping[str, Any]], dict[str, Any]] | None = None


def _one(
    name: str,
    forms: Mapping[str, str],
    order: int,
    delete_first: bool = False,
) -> tuple[CollectionEntry, ...]:
    return (CollectionEntry(name, forms, order, delete_first),)


_CALL_SERVER_AND_MICOLLAB = (MICOLLAB, MIVB)

BUILTIN: tuple[KindEntry, ...] = (
    KindEntry("elements", aliases=("element",)),
    KindEntry(
        "classes_of_service",
        _one("cos", {MIVB: "Class of Service Options"}, 30),
        aliases=("cos", "class_of_service"),
        layout="network/classes-of-service.yaml",
    ),
    KindEntry(
        "cor_groups",
        _one("cor_groups", {MIVB: "Class of Restriction Group"}, 40),
        aliases=("cor", "cor_group"),
        layout="network/classes-of-service.yaml",
    ),
    KindEntry(
        "departments",
        _one("departments", dict.fromkeys(_CALL_SERVER_AND_MICOLLAB, "Department"), 10),
        aliases=("department",),
        central=True,
        layout="organization.yaml",
    ),
    KindEntry(
        "locations",
        _one("locations", dict.fromkeys(_CALL_SERVER_AND_MICOLLAB, "Location"), 20),
        aliases=("location",),
        central=True,
        layout="organization.yaml",
    ),
    KindEntry(
        "templates",
        _one("templates", dict.fromkeys(_CALL_SERVER_AND_MICOLLAB, "User Template"), 50),
        aliases=("template",),
        central=True,
        layout="roles-and-templates.yaml",
    ),
    KindEntry(
        "roles",
        _one("roles", dict.fromkeys(_CALL_SERVER_AND_MICOLLAB, "Role"), 60),
        aliases=("role",),
        central=True,
        layout="roles-and-templates.yaml",
    ),
    KindEntry(
        "users",
        (
            CollectionEntry(
                "users",
                {
                    MICOLLAB: "User and Services",
                    MIVB: "User and Device Configuration",
                    DIRECTORY: "User (directory entry read by MiCollab IDS)",
                },
                70,
                delete_first=True,
            ),
            CollectionEntry(
                "remote_directory",
                {MIVB: "Remote Directory Number Assignment"},
                80,
                delete_first=True,
                resource_field="login_id",
            ),
        ),
        aliases=("user",),
        leaf=True,
        one_record_each=False,
    ),
    KindEntry(
        "ivr_media_servers",
        _one("media_servers", {IVR: "Media Server"}, 90),
        aliases=("media_server", "media_servers", "ivr_media_server"),
        ivr_content=True,
        layout="ivr/media-servers.yaml",
    ),
    KindEntry(
        "prompts",
        _one("prompts", {IVR: "Prompt"}, 100),
        aliases=("prompt",),
        ivr_content=True,
        layout="ivr/prompts.yaml",
    ),
    KindEntry(
        "subroutines",
        _one("subroutines", {IVR: "Subroutine"}, 110),
        aliases=("subroutine",),
        ivr_content=True,
        layout="ivr/subroutines.yaml",
    ),
    KindEntry(
        "workflows",
        _one("workflows", {IVR: "Workflow"}, 120, delete_first=True),
        aliases=("workflow",),
        ivr_content=True,
        leaf=True,
        layout="ivr/workflows.yaml",
    ),
)

# Element types in the order tables list them (others follow in registry order).
_TYPE_ORDER = (MICOLLAB, MIVB, DIRECTORY, IVR)

# ---- the registry and the tables derived from it ------------------------------

ENTRIES: dict[str, KindEntry] = {}
# element type -> collection -> admin form name
COLLECTIONS: dict[str, dict[str, str]] = {}
# collection -> the resource kind its records come from
COLLECTION_KIND: dict[str, str] = {}
# collections in reference order (what others name first)
COLLECTION_ORDER: list[str] = []
# collections whose records nothing references: deleted first
DELETE_FIRST: set[str] = set()
# collection -> the field naming its resource's key, where a record's key is not it
KEYED_APART: dict[str, str] = {}
# kinds the IVR seed calls "IVR" content
IVR_KINDS: set[str] = set()
# kinds nothing else refers to
LEAF_KINDS: set[str] = set()
# kinds provisioned centrally on MiCollab
CENTRAL_KINDS: set[str] = set()
# kinds import reads back one record per resource, in registry order
SIMPLE_KINDS: list[str] = []
# collection -> kind, for those kinds
SIMPLE_COLLECTIONS: dict[str, str] = {}
# kind -> the file import puts a new record in
LAYOUT: dict[str, str] = {}
# kinds whose records plan shows under a shorter collection name
SHORT_KINDS: dict[str, str] = {}
# alias -> kind
KIND_ALIASES: dict[str, str] = {}


class RegistryError(ValueError):
    """A kind entry that would make the registry ambiguous."""


def _rebuild() -> None:
    entries = list(ENTRIES.values())
    collections = [(e, c) for e in entries for c in e.collections]
    types = list(_TYPE_ORDER) + [t for _, c in collections for t in c.forms if t not in _TYPE_ORDER]
    COLLECTIONS.clear()
    for t in dict.fromkeys(types):
        forms = {c.name: c.forms[t] for _, c in collections if t in c.forms}
        if forms:
            COLLECTIONS[t] = forms
    COLLECTION_KIND.clear()
    COLLECTION_KIND.update((c.name, e.plural) for e, c in collections)
    ranked = sorted(enumerate(collections), key=lambda ic: (ic[1][1].order, ic[0]))
    COLLECTION_ORDER[:] = [c.name for _, (_, c) in ranked]
    _refill(DELETE_FIRST, (c.name for _, c in collections if c.delete_first))
    KEYED_APART.clear()
    KEYED_APART.update((c.name, c.resource_field) for _, c in collections if c.resource_field)
    _refill(IVR_KINDS, (e.plural for e in entries if e.ivr_content))
    _refill(LEAF_KINDS, (e.plural for e in entries if e.leaf))
    _refill(CENTRAL_KINDS, (e.plural for e in entries if e.central))
    SIMPLE_KINDS[:] = [e.plural for e in entries if e.collections and e.one_record_each]
    SIMPLE_COLLECTIONS.clear()
    SIMPLE_COLLECTIONS.update(
        (c.name, e.plural) for e in entries if e.one_record_each for c in e.collections
    )
    LAYOUT.clear()
    LAYOUT.update((e.plural, e.layout) for e in entries if e.layout)
    SHORT_KINDS.clear()
    SHORT_KINDS.update(
        (e.plural, e.collections[0].name)
        for e in entries
        if len(e.collections) == 1 and e.collections[0].name != e.plural
    )
    KIND_ALIASES.clear()
    KIND_ALIASES.update((a, e.plural) for e in entries for a in e.aliases)


def _refill(target: set[str], values: Iterator[str]) -> None:
    target.clear()
    target.update(values)


def register(entry: KindEntry) -> None:
    """Add a kind to the registry; every derived table includes it from now on.

    Refuses (RegistryError, nothing changed) a kind already registered, a
    collection another kind already has, or an alias another kind uses."""
    if entry.plural in ENTRIES:
        raise RegistryError(f"kind {entry.plural!r} is already registered")
    seen: set[str] = set()
    for c in entry.collections:
        owner = COLLECTION_KIND.get(c.name) or (entry.plural if c.name in seen else None)
        if owner is not None:
            raise RegistryError(
                f"kind {entry.plural!r}: collection {c.name!r} already belongs to kind "
                f"{owner!r}; give the collection another name"
            )
        seen.add(c.name)
    clash = [a for a in entry.aliases if a in KIND_ALIASES or a in ENTRIES]
    if clash:
        raise RegistryError(f"kind {entry.plural!r}: alias {clash[0]!r} already names a kind")
    ENTRIES[entry.plural] = entry
    _rebuild()


def unregister(plural: str) -> None:
    """Remove a kind registered with `register` (KeyError if it is not)."""
    del ENTRIES[plural]
    _rebuild()


@contextmanager
def registered(entry: KindEntry) -> Iterator[KindEntry]:
    """The kind is in the registry for the duration of the `with` block."""
    register(entry)
    try:
        yield entry
    finally:
        unregister(entry.plural)


def entry_of(kind: str) -> KindEntry | None:
    return ENTRIES.get(kind)


def collections_of(kind: str) -> tuple[str, ...]:
    """The collections a kind's records go to, the main one first."""
    entry = ENTRIES.get(kind)
    return tuple(c.name for c in entry.collections) if entry else ()


for _entry in BUILTIN:
    register(_entry)
