"""Rules across elements, templates and roles: one MiCollab (or a directory),
CEIDs unique, resilient partners mutual, references resolve."""

from __future__ import annotations

from provgit.model.network import Element
from provgit.model.telephony import Role, Template
from provgit.validate.rules_base import RuleBase, Suggest, free_ceid


class NetworkRules(RuleBase):
    def check_elements(self) -> None:
        elements = self.elements
        micollab: str | None = None
        ceids: dict[int, str] = {}
        suggest = Suggest(n for n, e in elements.items() if e.type == "mivb")
        for name, e in elements.items():
            if e.type == "micollab":
                if micollab is None:
                    micollab = name
                else:
                    self.add(
                        "elements",
                        name,
                        ("type",),
                        f"a second MiCollab '{name}': the network already has "
                        f"'{micollab}' at {{other}}",
                        "a network has at most one MiCollab; change the type or remove one",
                        "duplicate",
                        self.at("elements", micollab, "type"),
                    )
            first = ceids.setdefault(e.ceid, name) if e.ceid is not None else name
            if first != name:
                self.add(
                    "elements",
                    name,
                    ("ceid",),
                    f"CEID {e.ceid} is already used by element '{first}' at {{other}}",
                    f"give each element its own CEID (1-999); {free_ceid(ceids)}",
                    "duplicate",
                    self.at("elements", first, "ceid"),
                )
            if e.partner is not None:
                self.check_partner(name, e, suggest)
        self.check_directory(micollab)
        # An element whose type is wrong may be the MiCollab: say nothing more then.
        has_directory = any(e.type == "directory" for e in elements.values())
        if (
            micollab is None
            and not has_directory
            and all(e.type is not None for e in elements.values())
        ):
            for kind in ("users", "roles", "templates"):
                records = self.state.all_of(kind)
                if records:
                    first_key = next(iter(records))
                    self.add(
                        kind,
                        first_key,
                        (),
                        f"{kind} live on the MiCollab, but no element has type micollab",
                        "add an element with type: micollab",
                        "missing",
                    )
                    break

    def check_directory(self, micollab: str | None) -> None:
        """A directory element beside the MiCollab: MiCollab IDS creates its users from
        the directory, so provgit writing users to both is two writers of one user.
        It makes sense only with one of them read_only: the MiCollab observed (IDS
        fills it from the directory provgit writes), or the directory observed (a
        corporate directory provgit imports from, the MiCollab written)."""
        if micollab is None:
            return
        m = self.elements[micollab]
        for name, e in self.elements.items():
            if e.type != "directory" or e.read_only or m.read_only:
                continue
            self.add(
                "elements",
                name,
                ("type",),
                f"directory element '{name}' and MiCollab '{micollab}' at {{other}} "
                "would both receive the users: MiCollab IDS creates its users from the "
                "directory, so provgit must write them to one of the two",
                f"mark one read_only: true: the MiCollab (provgit writes '{name}', IDS "
                f"carries the users on, provgit observes '{micollab}'), or the directory "
                f"(provgit reads '{name}' and writes '{micollab}'); or remove one",
                "duplicate",
                self.at("elements", micollab, "type"),
            )

    def check_partner(self, name: str, e: Element, suggest: Suggest) -> None:
        assert e.partner is not None
        p = self.elements.get(e.partner)
        if p is None:
            self.dangling(
                "elements",
                name,
                ("partner",),
                "partner element",
                e.partner,
                suggest,
                "the resilient partner must be a call server defined under elements:",
            )
        elif p.type is None or e.cluster is None:
            pass  # reported by that record's own check
        elif p.type != "mivb":
            self.add(
                "elements",
                name,
                ("partner",),
                f"partner '{p.name}' has type {p.type}; "
                "a partner must be a call server (type mivb)",
                "only two call servers form a resilient pair",
            )
        elif p.cluster != e.cluster:
            self.add(
                "elements",
                name,
                ("partner",),
                f"partner '{p.name}' is in cluster '{p.cluster}', not '{e.cluster}'",
                "resilient partners must be members of the same cluster",
            )
        elif p.partner != name:
            now = f"names '{p.partner}'" if p.partner else "names no partner"
            self.add(
                "elements",
                name,
                ("partner",),
                f"the pairing is not mutual: partner '{p.name}' {now}",
                f"set partner: {name} on element '{p.name}'",
                other=self.at("elements", p.name),
            )

    def check_templates(self) -> None:
        groups = {e.admin_group for e in self.elements.values() if e.admin_group is not None}
        suggest = Suggest(sorted(groups))
        t: Template
        for name, t in self.state.all_of("templates").items():
            if t.admin_group is not None and t.admin_group not in groups:
                self.dangling(
                    "templates",
                    name,
                    ("admin_group",),
                    "admin group",
                    t.admin_group,
                    suggest,
                    "no element has this admin_group; set it on an element or "
                    "remove admin_group to share with every admin group",
                )
            self.numbers("templates", name, ("cos",), t.cos, self.cos_numbers)
            self.numbers("templates", name, ("cor",), t.cor, self.cor_numbers)

    def check_roles(self) -> None:
        templates = self.state.all_of("templates")
        suggest = Suggest(templates)
        r: Role
        for name, r in self.state.all_of("roles").items():
            if r.template is not None and r.template not in templates:
                self.dangling(
                    "roles",
                    name,
                    ("template",),
                    "template",
                    r.template,
                    suggest,
                    "define it under templates:",
                )
