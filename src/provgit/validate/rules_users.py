"""Rules across users: references resolve, DNs and login ids unique
network-wide (ignoring case and look-alikes), directory names fit."""

from __future__ import annotations

from collections.abc import Mapping

from provgit.model.login import skeleton
from provgit.model.network import Element
from provgit.model.telephony import User
from provgit.validate.rules_base import RuleBase, Suggest, dn_index, or_suggest, shown

# Call servers accept at most this many characters of a name in their directory.
DIRECTORY_NAME_MAX = 21


def hosting(elements: Mapping[str, Element]) -> set[str]:
    """The elements a user may name as host."""
    # An element whose type failed its own check may well be a call server.
    return {n for n, e in elements.items() if e.type in ("mivb", None)}


def directory_name_too_long(u: User) -> bool:
    """The name a call server would derive (no directory_name given) is too long."""
    return (
        u.directory_name is None
        and u.last_name is not None
        and u.first_name is not None
        and len(u.last_name) + 2 + len(u.first_name) > DIRECTORY_NAME_MAX
    )


class UserRules(RuleBase):
    def check_users(self) -> None:
        users: dict[str, User] = self.state.all_of("users")
        if not users:
            return
        roles = self.state.all_of("roles")
        templates = self.state.all_of("templates")
        departments = self.state.all_of("departments")
        locations = self.state.all_of("locations")
        call_servers = hosting(self.elements)
        s_role, s_template = Suggest(roles), Suggest(templates)
        s_dept, s_loc = Suggest(departments), Suggest(locations)
        s_host = Suggest(sorted(call_servers))
        dns: dict[str, str] = {}  # DN -> login id of its first user
        for login, u in users.items():
            if u.role is not None and u.role not in roles:
                self.dangling(
                    "users", login, ("role",), "role", u.role, s_role, "define it under roles:"
                )
            if u.template is not None and u.template not in templates:
                self.dangling(
                    "users",
                    login,
                    ("template",),
                    "template",
                    u.template,
                    s_template,
                    "define it under templates:",
                )
            if u.department is not None and u.department not in departments:
                self.dangling(
                    "users",
                    login,
                    ("department",),
                    "department",
                    u.department,
                    s_dept,
                    "define it under departments:",
                )
            if u.location is not None and u.location not in locations:
                self.dangling(
                    "users",
                    login,
                    ("location",),
                    "location",
                    u.location,
                    s_loc,
                    "define it under locations:",
                )
            if u.host is not None and u.host not in call_servers:
                self.check_host(login, u.host, s_host)
            if u.services:
                self.check_services(login, u, dns, users)
            if directory_name_too_long(u):
                self.long_directory_name(login, u)
        self.check_logins(users)
        # After all DNs are known, so the order of users does not matter.
        self.logins_equal_to_dns(users, dns)

    def check_services(
        self, login: str, u: User, dns: dict[str, str], users: Mapping[str, User]
    ) -> None:
        """Class of service and COR numbers defined; each DN on one service only
        (`dns`: DN -> login id of its first user, filled as users are checked)."""
        cos, cor = self.cos_numbers, self.cor_numbers
        for i, s in enumerate(u.services or ()):
            if s is None:
                continue
            c = s.cos
            # Fast path first: nearly every number resolves.
            if c is not None and not (
                c.day in cos
                and (c.night1 is None or c.night1 in cos)
                and (c.night2 is None or c.night2 in cos)
            ):
                self.numbers("users", login, ("services", i, "cos"), c, cos)
            r = s.cor
            if r is not None and not (
                r.day in cor
                and (r.night1 is None or r.night1 in cor)
                and (r.night2 is None or r.night2 in cor)
            ):
                self.numbers("users", login, ("services", i, "cor"), r, cor)
            owner = dns.get(s.dn) if s.dn is not None else login
            if s.dn is None:
                pass  # reported by the record's own check
            elif owner is None:
                dns[s.dn] = login
            else:
                self.duplicate_dn(login, i, s.dn, owner, users[owner])

    def long_directory_name(self, login: str, u: User) -> None:
        """The name a call server would derive does not fit its directory."""
        assert u.last_name is not None and u.first_name is not None
        name = u.effective_directory_name()
        short = f"{u.last_name}, {u.first_name[:1]}"[:DIRECTORY_NAME_MAX]
        self.add(
            "users",
            login,
            ("last_name",),
            f"directory name '{name}' (from last_name, first_name) is "
            f"{len(name)} characters; call servers allow {DIRECTORY_NAME_MAX}",
            f'set directory_name, e.g. directory_name: "{short}"',
            "range",
        )

    def logins_equal_to_dns(self, users: Mapping[str, User], dns: Mapping[str, str]) -> None:
        """A login id may not equal another user's directory number."""
        for login in users:
            owner = dns.get(login)
            if owner is not None and owner != login:
                self.add(
                    "users",
                    login,
                    ("login_id",),
                    f"login id '{login}' equals the directory number of user '{owner}' "
                    "at {other}",
                    "a login id may not equal another user's DN; choose another login id",
                    "duplicate",
                    self.at("users", owner, "services", dn_index(users[owner], login), "dn"),
                )

    def check_logins(self, users: Mapping[str, User]) -> None:
        """MiCollab compares login ids ignoring case, and people compare them by eye."""
        folded: dict[str, str] = {}
        looks: dict[str, str] = {}
        for login in users:
            first = folded.setdefault(login.casefold(), login)
            if first != login:
                self.add(
                    "users",
                    login,
                    ("login_id",),
                    f"login id {shown(login)} differs from user {shown(first)} at {{other}} "
                    "only in case",
                    "MiCollab compares login ids ignoring case; choose another login id",
                    "duplicate",
                    self.at("users", first, "login_id"),
                )
                continue
            first = looks.setdefault(skeleton(login), login)
            if first != login:
                self.add(
                    "users",
                    login,
                    ("login_id",),
                    f"login id {shown(login)} looks like the login id {shown(first)} "
                    "of another user at {other}",
                    "look-alike characters (0/O, 1/l/I, rn/m, vv/w, accents, Cyrillic or "
                    "Greek) let one user pass for another; choose a login id that reads "
                    "differently",
                    "confusable",
                    self.at("users", first, "login_id"),
                )

    def duplicate_dn(self, login: str, i: int, dn: str, owner: str, first: User) -> None:
        whose = "this user" if owner == login else f"user '{owner}'"
        self.add(
            "users",
            login,
            ("services", i, "dn"),
            f"directory number {dn} is already used by {whose} at {{other}}",
            "a DN is unique across the whole network; pick a free one",
            "duplicate",
            self.at("users", owner, "services", dn_index(first, dn), "dn"),
        )

    def check_host(self, login: str, host: str, suggest: Suggest) -> None:
        e = self.elements.get(host)
        if e is not None:
            self.add(
                "users",
                login,
                ("host",),
                f"host '{host}' has type {e.type}; users are hosted on a call server (type mivb)",
                or_suggest(suggest(host), "name a call server defined under elements:"),
            )
        else:
            self.dangling(
                "users",
                login,
                ("host",),
                "host element",
                host,
                suggest,
                "name a call server (type mivb) defined under elements:",
            )
