"""Which resources a change to shared records reaches: what must be projected
again so a partial projection equals the full one.

A projection reads, besides its own resource, only these other records
(`telephony.py`, `ivr.py`, `context.py`):

- a user reads its role (by name, case-folded) and its template (its own
  `template`, else its role's); a role reads its template (its admin group
  places the role's records);
- subroutines and workflows read the prompts (a step names a prompt by its
  name, and a renamed prompt no longer matches: every step is re-read);
- a user reads the elements: its host's resilient partner (`Topology.pair`),
  and the clusters, admin groups and types that place every record.

Everything else is read by nobody: classes of service, COR groups,
departments, locations, media servers and subroutines are named by number or
name in the records that use them, never looked up, so a change to one reaches
only its own records (a user's phone carries the COS *number* its template
gives; editing COS 10's options changes no user record).

`DependencyIndex` keeps the reverse edges by name (template -> users and roles,
role -> users, host -> users), so the closure of a change costs what it
reaches, not the size of the network; the watcher updates it per change
instead of rebuilding it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from provgit.registry import LEAF_KINDS

if TYPE_CHECKING:  # the models (pydantic): a status in sync builds none
    from provgit.model.network import Element
    from provgit.model.state import DesiredState
    from provgit.model.telephony import Role, User

# Kinds no projection looks up (see the module docstring).
READ_BY_NONE = frozenset(
    {
        "classes_of_service",
        "cor_groups",
        "departments",
        "locations",
        "ivr_media_servers",
        "subroutines",
        "users",
        "workflows",
    }
)
# Element fields no projection reads (the report's links, the validator's CEID check).
_UNREAD_ELEMENT_FIELDS = frozenset({"ceid", "description", "reach_through"})
# Element fields read only for the users the element hosts (`Topology.pair`).
_HOST_FIELDS = frozenset({"partner"})
# Element fields that only say how to reach it: no projection reads them.
CONNECTION_FIELDS = frozenset({"driver", "connection"})

Reach = dict[str, set[str]]  # kind -> keys


def element_reach(old: Mapping[str, Element], new: Mapping[str, Element]) -> set[str] | None:
    """The elements whose changed settings reach only the users they host; None
    when a change reaches further: an element added or removed, or its type,
    cluster, admin group, directory mapping or read-only flag changed, moves the
    targeting scope of records of every kind (a cluster's COS, remote directory
    entries, templates per admin group), which only a full projection bounds."""
    if old.keys() != new.keys():
        return None
    hosts: set[str] = set()
    for name, before in old.items():
        after = new[name]
        if before == after:
            continue
        differ = {f for f in type(after).model_fields if getattr(before, f) != getattr(after, f)}
        if not differ <= _UNREAD_ELEMENT_FIELDS | _HOST_FIELDS | CONNECTION_FIELDS:
            return None
        if differ & _HOST_FIELDS:
            hosts.add(name)
    return hosts


class DependencyIndex:
    """Who reads which shared record, by name, for one desired state."""

    def __init__(self) -> None:
        self.users_of_template: dict[str, set[str]] = {}  # the user's own `template`
        self.untemplated_users_of_role: dict[str, set[str]] = {}  # folded role -> users
        self.users_of_role: dict[str, set[str]] = {}  # folded role -> users
        self.roles_of_template: dict[str, set[str]] = {}
        self.users_on_host: dict[str, set[str]] = {}

    @classmethod
    def of(cls, state: DesiredState) -> DependencyIndex:
        index = cls()
        for key, user in state.of("users").items():
            index._user(key, user, True)
        for key, role in state.of("roles").items():
            index.roles_of_template.setdefault(role.template, set()).add(key)
        return index

    @classmethod
    def of_edges(
        cls, users: Iterable[tuple[str, str | None, str | None, str]], roles: Mapping[str, Role]
    ) -> DependencyIndex:
        """The index from each user's (key, template, role, host), without its model."""
        index = cls()
        # `_edges` inlined: for 100,000 users its call and list per user were
        # half of building the index.
        on_host, of_template = index.users_on_host, index.users_of_template
        of_role, untemplated = index.users_of_role, index.untemplated_users_of_role
        for key, template, role, host in users:
            on_host.setdefault(host, set()).add(key)
            if template:
                of_template.setdefault(template, set()).add(key)
            if role:
                folded = role.casefold()
                of_role.setdefault(folded, set()).add(key)
                if not template:
                    untemplated.setdefault(folded, set()).add(key)
        for key, r in roles.items():
            index.roles_of_template.setdefault(r.template, set()).add(key)
        return index

    def _user(self, key: str, user: User, add: bool) -> None:
        self._edges(key, user.template, user.role, user.host, add)

    def _edges(
        self, key: str, template: str | None, role: str | None, host: str, add: bool
    ) -> None:
        edges: list[tuple[dict[str, set[str]], str]] = [(self.users_on_host, host)]
        if template:
            edges.append((self.users_of_template, template))
        if role:
            folded = role.casefold()
            edges.append((self.users_of_role, folded))
            if not template:
                edges.append((self.untemplated_users_of_role, folded))
        for table, name in edges:
            if add:
                table.setdefault(name, set()).add(key)
            else:
                table.get(name, set()).discard(key)

    def update(self, old: DesiredState, new: DesiredState, changed: Mapping[str, set[str]]) -> None:
        """Move the edges of the changed users and roles from `old` to `new`."""
        for kind in ("users", "roles"):
            for key in changed.get(kind, ()):
                before, after = old.of(kind).get(key), new.of(kind).get(key)
                if kind == "users":
                    if before is not None:
                        self._user(key, before, False)
                    if after is not None:
                        self._user(key, after, True)
                    continue
                if before is not None:
                    self.roles_of_template.get(before.template, set()).discard(key)
                if after is not None:
                    self.roles_of_template.setdefault(after.template, set()).add(key)

    def reach(
        self, changed: Mapping[str, Iterable[str]], hosts: Iterable[str], state: DesiredState
    ) -> Reach | None:
        """The changed resources and every resource whose projection reads one
        of them (kind -> keys), for the index's state; None when a changed kind
        is one this index does not know the readers of (a plugin kind that is
        not a leaf)."""
        out: Reach = {}

        def add(kind: str, keys: Iterable[str]) -> None:
            out.setdefault(kind, set()).update(keys)

        for kind, keys in changed.items():
            keys = set(keys)
            if kind == "elements":
                continue  # `element_reach` answers for them (`hosts`)
            if kind not in READ_BY_NONE | LEAF_KINDS | {"templates", "roles", "prompts"}:
                return None
            add(kind, keys)
            if kind == "prompts" and keys:
                add("subroutines", state.of("subroutines"))
                add("workflows", state.of("workflows"))
            elif kind == "templates":
                for name in keys:
                    add("users", self.users_of_template.get(name, ()))
                    roles = self.roles_of_template.get(name, set())
                    add("roles", roles)
                    for role in roles:
                        add("users", self.untemplated_users_of_role.get(role.casefold(), ()))
            elif kind == "roles":
                for name in keys:
                    add("users", self.users_of_role.get(name.casefold(), ()))
        for host in hosts:
            add("users", self.users_on_host.get(host, ()))
        return {k: v for k, v in out.items() if v}


def secret_refs(state: DesiredState) -> list[str]:
    """Every secret reference a full projection of `state` fingerprints (what
    `project`'s fingerprinter has `seen`), read off the models: a user's
    voicemail PIN and hot-desk PINs (`telephony.user`), unless the user is
    excluded from sharing."""
    sharing = state.settings.sharing.get("users")
    excluded = set(sharing.exclude) if sharing else set()
    refs: dict[str, None] = {}
    for key, user in state.of("users").items():
        if key in excluded:
            continue
        for service in user.services:
            if service.hot_desk_pin:
                refs[service.hot_desk_pin.describe()] = None
        if user.voicemail_pin:
            refs[user.voicemail_pin.describe()] = None
    return list(refs)
