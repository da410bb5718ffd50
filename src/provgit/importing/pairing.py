"""Views from several elements -> one group per resource, as the Reconcile wizard pairs them.

- Templates, roles (names ignore case), departments, locations, classes of
  service and COR groups (by number), IVR content: by key.
- Users: MiCollab users by login id, then directory entries (MiCollab IDS's
  source) by login id, a directory standing in for the MiCollab where the
  network has none; then each call server's phone record
  joins the MiCollab user with its login id, or, when MiCollab has no such
  login, the one MiCollab user holding its DNs (paired by DN, the login on the
  call server differs); what is left groups by login id.
- Two groups claiming one DN are a conflict nobody can settle automatically:
  both become Unresolved in the analysis.
- A user whose login matches existing YAML but whose email there differs is
  not assumed to be the same person (login id *plus* email).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from provgit.importing.reverse import ElementViews, RemoteEntry, Seen, UserView
from provgit.model.kinds import KINDS
from provgit.model.telephony import User
from provgit.records import DIRECTORY, MICOLLAB


@dataclass
class Group:
    """Every element's view of one resource (any kind but users)."""

    kind: str
    key: str
    views: list[Seen] = field(default_factory=list)


@dataclass
class UserGroup:
    login: str
    micollab: UserView | None = None
    # directory element -> its entry for this user (MiCollab IDS's source)
    directory: dict[str, UserView] = field(default_factory=dict)
    phones: dict[str, UserView] = field(default_factory=dict)  # call server -> phone record
    remote: list[RemoteEntry] = field(default_factory=list)
    # call server -> its login id, where it was paired by DN under another login
    paired_by_dn: dict[str, str] = field(default_factory=dict)
    conflicts: list[str] = field(default_factory=list)

    @property
    def central(self) -> UserView | None:
        """Where the user's own data is mastered: the MiCollab, else a directory
        (which MiCollab IDS creates its users from)."""
        return self.micollab or next(iter(self.directory.values()), None)

    @property
    def sources(self) -> list[UserView]:
        """Every view of this user but the call servers' phone records."""
        return ([self.micollab] if self.micollab else []) + list(self.directory.values())

    @property
    def dns(self) -> set[str]:
        out: set[str] = set()
        for v in [*self.sources, *self.phones.values()]:
            out.update(v.dns)
        return out

    def where(self) -> str:
        return ", ".join(self.elements())

    def elements(self) -> list[str]:
        return [v.element for v in self.sources] + list(self.phones)


@dataclass
class Paired:
    groups: dict[str, dict[str, Group]]  # kind -> key -> group
    users: dict[str, UserGroup]


def fold(kind: str, key: str) -> str:
    return key.casefold() if KINDS[kind].fold_case else key


def pair(views: Mapping[str, ElementViews], existing_users: Mapping[str, User]) -> Paired:
    return Paired(_pair_simple(views), _pair_users(views, existing_users))


def _pair_simple(views: Mapping[str, ElementViews]) -> dict[str, dict[str, Group]]:
    by_fold: dict[str, dict[str, Group]] = defaultdict(dict)
    # MiCollab first, so its spelling of a role name becomes the key.
    ordered = sorted(views.values(), key=lambda v: v.element_type != MICOLLAB)
    for ev in ordered:
        for s in ev.seen:
            folded = fold(s.kind, s.key)
            group = by_fold[s.kind].get(folded)
            if group is None:
                group = by_fold[s.kind][folded] = Group(s.kind, s.key)
            group.views.append(s)
    return {kind: {g.key: g for g in groups.values()} for kind, groups in by_fold.items()}


def names_only_dropped(group: Group, existing: Mapping[str, str]) -> bool:
    """Drop the views of a department or location that only a directory entry
    names (a name is all it knows): they count only where no other element
    and no YAML (`existing`: folded key -> key) has it. False: nothing is
    left to import."""
    if not any(v.element_type == DIRECTORY for v in group.views):
        return True
    others = [v for v in group.views if v.element_type != DIRECTORY]
    if others:
        group.views = others
        return True
    return fold(group.kind, group.key) not in existing


def _pair_users(
    views: Mapping[str, ElementViews], existing: Mapping[str, User]
) -> dict[str, UserGroup]:
    groups: dict[str, UserGroup] = {}
    mcl_dn: dict[str, str] = {}  # DN -> MiCollab login
    for ev in views.values():
        if ev.element_type != MICOLLAB:
            continue
        for u in ev.users:
            groups[u.login_id] = UserGroup(u.login_id, micollab=u)
            for dn in u.dns:
                mcl_dn.setdefault(dn, u.login_id)
    for ev in views.values():
        if ev.element_type != DIRECTORY:
            continue
        for u in ev.users:
            group = groups.get(u.login_id)
            if group is None:
                group = groups[u.login_id] = UserGroup(u.login_id)
            group.directory.setdefault(ev.element, u)
            for dn in u.dns:
                mcl_dn.setdefault(dn, u.login_id)
    mcl_logins = set(groups)
    for ev in views.values():
        if ev.element_type in (MICOLLAB, DIRECTORY):
            continue
        for u in ev.users:
            target = _phone_group(u, ev.element, groups, mcl_logins, mcl_dn)
            if target is None:
                target = groups.setdefault(u.login_id, UserGroup(u.login_id))
            elif target.login != u.login_id:
                target.paired_by_dn[ev.element] = u.login_id
            target.phones[ev.element] = u
        for r in ev.remote:
            owner = groups.get(r.login_id or "")
            if owner is not None:
                owner.remote.append(r)
    _dn_conflicts(groups, existing)
    _email_conflicts(groups, existing)
    return groups


def _phone_group(
    u: UserView,
    element: str,
    groups: dict[str, UserGroup],
    mcl_logins: set[str],
    mcl_dn: dict[str, str],
) -> UserGroup | None:
    if u.login_id in mcl_logins:
        return groups[u.login_id]
    # A login MiCollab does not know: the MiCollab user with the same phone (DN)
    # is the same person under another login on this call server.
    owners = {mcl_dn[dn] for dn in u.dns if dn in mcl_dn}
    if len(owners) == 1:
        g = groups[owners.pop()]
        if element not in g.phones:
            return g
    return groups.get(u.login_id)


def _dn_conflicts(groups: dict[str, UserGroup], existing: Mapping[str, User]) -> None:
    claims: dict[str, list[tuple[str, str]]] = defaultdict(list)  # DN -> [(login, where)]
    for g in groups.values():
        for dn in sorted(g.dns):
            claims[dn].append((g.login, g.where()))
    for login, user in existing.items():
        if login in groups:
            continue  # the same user: its YAML DNs are compared, not competing
        for s in user.services:
            if s.dn in claims:
                claims[s.dn].append((login, "the existing YAML"))
    for dn, who in claims.items():
        logins = {login for login, _ in who}
        if len(logins) < 2:
            continue
        text = " and ".join(f"{login} ({where})" for login, where in who)
        for login in logins:
            if login in groups:
                groups[login].conflicts.append(f"DN {dn} is claimed by two users: {text}")


def _email_conflicts(groups: dict[str, UserGroup], existing: Mapping[str, User]) -> None:
    for login, g in groups.items():
        yaml_user = existing.get(login)
        central = g.central
        if yaml_user is None or central is None:
            continue
        theirs = central.fields.get("email")
        if yaml_user.email and theirs and yaml_user.email.casefold() != str(theirs).casefold():
            g.conflicts.append(
                f"login {login} has email {yaml_user.email} in the YAML but {theirs} on "
                f"{central.element}: login id and email must both match to pair a user"
            )
