"""Rules across records: references resolve, uniqueness network-wide, one MiCollab.

`build_state` has already checked every record on its own; what is left needs
several records at once. Each rule builds its lookup sets once, so the cost is
linear in the size of the network (100,000 users in a fraction of a second).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from provgit.load.yaml_events import Path
from provgit.model.common import CorSet, CosSet
from provgit.model.findings import Finding, Pointer
from provgit.model.ivr import (
    CHOICE_PLAIN,
    CHOICE_TARGETED,
    MENU_KEYS,
    MediaServer,
    Prompt,
    Step,
    Subroutine,
    Workflow,
)
from provgit.model.kinds import KINDS
from provgit.model.login import skeleton
from provgit.model.network import Element
from provgit.model.settings import Settings
from provgit.model.state import DesiredState
from provgit.model.telephony import Role, Template, User
from provgit.source import SETTINGS_FILE, ConfigSource
from provgit.validate.wav import audio_problem

# Call servers accept at most this many characters of a name in their directory.
DIRECTORY_NAME_MAX = 21
_PERIODS = ("day", "night1", "night2")
# What a menu may transfer to: a number to dial, internal or external.
_DIALABLE = re.compile(r"^[0-9*#]{1,32}$")
_CHOICE_EXAMPLES = {
    "transfer": "transfer:2155",
    "queue": "queue:support-agents",
    "subroutine": "subroutine:Language Select",
}


def check_rules(state: DesiredState, source: ConfigSource) -> list[Finding]:
    out: list[Finding] = []
    _Rules(state, source, out).run()
    return out


class _Suggest:
    """'did you mean' over one set of names, computed once per missing value."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = list(names)
        self._memo: dict[tuple[str, str | None], str | None] = {}

    def __call__(self, value: str, exclude: str | None = None) -> str | None:
        """The closest names, quoted ("'a'" or "'a', 'b' or 'c'" on a tie), or None."""
        memo_key = (value, exclude)
        if memo_key not in self._memo:
            names = [n for n in self.names if n != exclude]
            close = difflib.get_close_matches(value, names, n=4, cutoff=0.6)
            if not close:
                folded = {n.casefold(): n for n in names}
                hit = folded.get(value.casefold())
                close = [hit] if hit else []
            # A tie (cs9 against cs1, cs2, cs3) offers them all rather than one at random.
            scores = [difflib.SequenceMatcher(None, value, c).ratio() for c in close]
            best = sorted(c for c, r in zip(close, scores, strict=True) if r == max(scores))
            self._memo[memo_key] = _quoted(best) if best else None
        return self._memo[memo_key]


class _Rules:
    def __init__(self, state: DesiredState, source: ConfigSource, out: list[Finding]) -> None:
        self.state = state
        self.source = source
        self.out = out
        self.origins = state.origins
        # Records that failed their own checks (partial) are here too: their names
        # are defined, and their other fields are checked (None where unusable).
        self.elements: dict[str, Element] = state.all_of("elements")
        self.cos_numbers = {_int(k) for k in state.all_of("classes_of_service")}
        self.cor_numbers = {_int(k) for k in state.all_of("cor_groups")}
        self.prompt_names: set[str] = set()

    def run(self) -> None:
        self.check_elements()
        self.check_templates()
        self.check_roles()
        self.check_users()
        self.check_ivr()
        self.check_settings()

    # -- helpers -------------------------------------------------------------

    def at(self, kind: str, key: str, *fields: str | int) -> Pointer:
        o = self.origins[(kind, key)]
        return Pointer(o.file, (*o.path, *fields))

    def add(
        self,
        kind: str,
        key: str,
        field: tuple[str | int, ...],
        message: str,
        hint: str | None = None,
        code: str = "reference",
        other: Pointer | None = None,
    ) -> None:
        self.out.append(Finding(self.at(kind, key, *field), message, kind, key, hint, code, other))

    def dangling(
        self,
        kind: str,
        key: str,
        field: tuple[str | int, ...],
        what: str,
        value: str,
        suggest: _Suggest,
        define: str,
    ) -> None:
        close = suggest(value, exclude=key if kind == "elements" else None)
        hint = f"did you mean {close}?" if close else define
        self.add(kind, key, field, f"{what} '{value}' is not defined", hint)

    def numbers(
        self,
        kind: str,
        key: str,
        field: tuple[str | int, ...],
        value: CosSet | CorSet | None,
        known: Collection[int],
    ) -> None:
        if value is None:
            return
        is_cos = isinstance(value, CosSet)
        for period in _PERIODS:
            n = getattr(value, period)
            if n is None or n in known:
                continue
            if is_cos:
                self.add(
                    kind,
                    key,
                    (*field, period),
                    f"class of service {n} ({period}) is not defined",
                    f"define classes_of_service number {n}, or use one of {_few(sorted(known))}"
                    if known
                    else f"define classes_of_service number {n}",
                )
            else:
                self.add(
                    kind,
                    key,
                    (*field, period),
                    f"COR group {n} ({period}) is not defined",
                    f"define cor_groups number {n}, or use one of {_few(sorted(known))}"
                    if known
                    else f"define cor_groups number {n}",
                )

    # -- elements ------------------------------------------------------------

    def check_elements(self) -> None:
        elements = self.elements
        micollab: str | None = None
        ceids: dict[int, str] = {}
        suggest = _Suggest(n for n, e in elements.items() if e.type == "mivb")
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
                    f"give each element its own CEID (1-999); {_free_ceid(ceids)}",
                    "duplicate",
                    self.at("elements", first, "ceid"),
                )
            if e.partner is not None:
                self.check_partner(name, e, suggest)
        directory = next((n for n, e in elements.items() if e.type == "directory"), None)
        if micollab is not None and directory is not None:
            # MiCollab creates users from the directory through IDS: provgit writing
            # them to both would be two writers of one user record.
            self.add(
                "elements",
                directory,
                ("type",),
                f"directory element '{directory}' and MiCollab '{micollab}' at {{other}} "
                "would both receive the users: MiCollab IDS creates its users from the "
                "directory, so provgit must write them to one of the two",
                "keep the directory element (MiCollab reads it through IDS) or the MiCollab "
                "element, not both",
                "duplicate",
                self.at("elements", micollab, "type"),
            )
        # An element whose type is wrong may be the MiCollab: say nothing more then.
        if (
            micollab is None
            and directory is None
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

    def check_partner(self, name: str, e: Element, suggest: _Suggest) -> None:
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

    # -- templates and roles -------------------------------------------------

    def check_templates(self) -> None:
        groups = {e.admin_group for e in self.elements.values() if e.admin_group is not None}
        suggest = _Suggest(sorted(groups))
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
        suggest = _Suggest(templates)
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

    # -- users ---------------------------------------------------------------

    def check_users(self) -> None:
        users: dict[str, User] = self.state.all_of("users")
        if not users:
            return
        roles = self.state.all_of("roles")
        templates = self.state.all_of("templates")
        departments = self.state.all_of("departments")
        locations = self.state.all_of("locations")
        # An element whose type failed its own check may well be a call server.
        call_servers = {n for n, e in self.elements.items() if e.type in ("mivb", None)}
        s_role, s_template = _Suggest(roles), _Suggest(templates)
        s_dept, s_loc = _Suggest(departments), _Suggest(locations)
        s_host = _Suggest(sorted(call_servers))
        cos, cor = self.cos_numbers, self.cor_numbers
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
            if (
                u.directory_name is None
                and u.last_name is not None
                and u.first_name is not None
                and len(u.last_name) + 2 + len(u.first_name) > DIRECTORY_NAME_MAX
            ):
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
        self.check_logins(users)
        # After all DNs are known, so the order of users does not matter.
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
                    self.at("users", owner, "services", _dn_index(users[owner], login), "dn"),
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
                    f"login id {_shown(login)} differs from user {_shown(first)} at {{other}} "
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
                    f"login id {_shown(login)} looks like the login id {_shown(first)} "
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
            self.at("users", owner, "services", _dn_index(first, dn), "dn"),
        )

    def check_host(self, login: str, host: str, suggest: _Suggest) -> None:
        e = self.elements.get(host)
        if e is not None:
            self.add(
                "users",
                login,
                ("host",),
                f"host '{host}' has type {e.type}; users are hosted on a call server (type mivb)",
                _or_suggest(suggest(host), "name a call server defined under elements:"),
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

    # -- IVR -------------------------------------------------------------------

    def check_ivr(self) -> None:
        prompts: dict[str, Prompt] = self.state.all_of("prompts")
        subs: dict[str, Subroutine] = self.state.all_of("subroutines")
        workflows: dict[str, Workflow] = self.state.all_of("workflows")
        servers: dict[str, MediaServer] = self.state.all_of("ivr_media_servers")
        # Steps name a prompt, not a language: any language of it will do.
        prompt_names = self.prompt_names = {p.name for p in prompts.values()}
        s_prompt, s_sub, s_server = (
            _Suggest(sorted(prompt_names)),
            _Suggest(subs),
            _Suggest(servers),
        )
        self.check_audio(prompts)
        calls: dict[str, list[tuple[tuple[str | int, ...], str]]] = {}
        for name, sub in subs.items():
            calls[name] = self.check_steps(
                "subroutines", name, sub.media_type, sub.steps, s_prompt, s_sub
            )
        for name, w in workflows.items():
            for j, ms in enumerate(w.media_servers or ()):
                if ms is not None and ms not in servers:
                    self.dangling(
                        "workflows",
                        name,
                        ("media_servers", j),
                        "IVR media server",
                        ms,
                        s_server,
                        "define it under ivr_media_servers:",
                    )
            self.check_steps("workflows", name, w.media_type, w.steps, s_prompt, s_sub)
        self.check_cycles(calls)

    def check_steps(
        self,
        kind: str,
        name: str,
        media_type: str | None,
        steps: list[Step] | None,
        s_prompt: _Suggest,
        s_sub: _Suggest,
    ) -> list[tuple[tuple[str | int, ...], str]]:
        """Check each step's references and menu; return the subroutines it calls."""
        subs: dict[str, Subroutine] = self.state.all_of("subroutines")
        prompt_names = self.prompt_names
        calls: list[tuple[tuple[str | int, ...], str]] = []
        for i, step in enumerate(steps or ()):
            if step is None:
                continue
            if step.prompt is not None and step.prompt not in prompt_names:
                self.dangling(
                    kind,
                    name,
                    ("steps", i, "prompt"),
                    "prompt",
                    step.prompt,
                    s_prompt,
                    "define it under prompts: (in any language)",
                )
            called: list[tuple[tuple[str | int, ...], str]] = []
            if step.subroutine is not None:
                called.append((("steps", i, "subroutine"), step.subroutine))
            for digit, choice in (step.choices or {}).items():
                target = self.check_choice(kind, name, i, step.action, digit, choice)
                if target is not None:
                    called.append((("steps", i, "choices", digit), target))
            for field, sub_name in called:
                sub = subs.get(sub_name)
                if sub is None:
                    self.dangling(
                        kind,
                        name,
                        field,
                        "subroutine",
                        sub_name,
                        s_sub,
                        "define it under subroutines:",
                    )
                    continue
                calls.append((field, sub_name))
                if None not in (sub.media_type, media_type) and sub.media_type != media_type:
                    self.add(
                        kind,
                        name,
                        field,
                        f"subroutine '{sub_name}' handles {sub.media_type}, but this "
                        f"{KINDS[kind].singular} handles {media_type}",
                        "call a subroutine of the same media_type",
                        "media_type",
                        self.at("subroutines", sub_name, "media_type"),
                    )

        return calls

    def check_choice(
        self, kind: str, name: str, i: int, action: str | None, digit: str, choice: str
    ) -> str | None:
        """Problems of one menu choice; the subroutine it calls, if any."""
        field = ("steps", i, "choices", digit)
        if action is not None and action != "menu":
            self.add(
                kind,
                name,
                ("steps", i, "choices"),
                f"a {action} step has no menu choices",
                "make it an action: menu step, or remove choices:",
                "menu",
            )
            return None
        if len(digit) != 1 or digit not in MENU_KEYS:
            self.add(
                kind,
                name,
                field,
                f"menu choice key {digit!r} is not a phone key",
                f"a menu choice is one key of {' '.join(MENU_KEYS)}",
                "menu",
            )
        what, sep, target = (x.strip() for x in choice.partition(":"))
        if what in CHOICE_PLAIN and not sep:
            return None
        if what in CHOICE_TARGETED and sep and target:
            if what == "subroutine":
                return target
            if what == "transfer" and not _DIALABLE.match(target):
                self.add(
                    kind,
                    name,
                    field,
                    f"menu choice {digit!r}: transfer target {target!r} is not a number to dial",
                    "transfer to digits, * and # (up to 32), e.g. transfer:2155",
                    "menu",
                )
            return None
        if what in CHOICE_TARGETED:
            hint = f"write {what}:<{CHOICE_TARGETED[what]}>, e.g. {_CHOICE_EXAMPLES[what]}"
            msg = f"menu choice {digit!r}: {what} needs a {CHOICE_TARGETED[what]}"
        else:
            hint = f"one of {', '.join(CHOICE_PLAIN)}, or " + ", ".join(
                f"{k}:<{v}>" for k, v in CHOICE_TARGETED.items()
            )
            msg = f"menu choice {digit!r}: {choice!r} is not a menu action"
        self.add(kind, name, field, msg, hint, "menu")
        return None

    def check_cycles(self, calls: Mapping[str, list[tuple[tuple[str | int, ...], str]]]) -> None:
        """A subroutine that ends up calling itself would loop the caller forever."""
        graph = {name: [callee for _, callee in out] for name, out in calls.items()}
        for cycle in find_cycles(graph):
            first, second = cycle[0], cycle[1]
            field = next(f for f, callee in calls[first] if callee == second)
            shown = " -> ".join(f"subroutines/{n}" for n in cycle)
            self.add(
                "subroutines",
                first,
                field,
                f"subroutine call cycle: {shown}",
                "a subroutine may not call itself, directly or through others; "
                "break the cycle (a menu can 'repeat' instead)",
                "cycle",
            )

    def check_audio(self, prompts: Mapping[str, Prompt]) -> None:
        # A file shared by several prompts (one per language) is read once.
        seen: dict[str, tuple[str, str] | None] = {}
        for key, p in prompts.items():
            if p.file is None:
                continue
            if p.file not in seen:
                seen[p.file] = audio_problem(p.file, self.source.read_other(p.file))
            problem = seen[p.file]
            if problem is not None:
                self.add("prompts", key, ("file",), problem[0], problem[1], "file")

    # -- settings --------------------------------------------------------------

    def check_settings(self) -> None:
        s: Settings = self.state.settings
        kinds = _Suggest(KINDS)
        elements = _Suggest(self.elements)

        def here(*path: str | int) -> Pointer:
            # provgit.yaml holds one document (build_state refuses a second).
            return Pointer(SETTINGS_FILE, (0, *path))

        def bad_kind(path: Path, value: str, what: str) -> None:
            close = kinds(value)
            self.out.append(
                Finding(
                    here(*path),
                    f"{what}: unknown kind '{value}'",
                    hint=f"did you mean {close}?" if close else f"known kinds: {_few(KINDS)}",
                    code="settings",
                )
            )

        for k in s.sharing:
            if k not in KINDS:
                bad_kind(("sharing", k), k, "sharing")
        for i, k in enumerate(s.safety.prune):
            if k not in KINDS:
                bad_kind(("safety", "prune", i), k, "safety.prune")
        for k in s.safety.kinds:
            if k not in KINDS:
                bad_kind(("safety", "kinds", k), k, "safety.kinds")
        for i, entry in enumerate(s.safety.protected):
            kind, sep, key = entry.partition("/")
            if not sep or not kind or not key:
                self.out.append(
                    Finding(
                        here("safety", "protected", i),
                        f"safety.protected: '{entry}' is not of the form kind/key",
                        hint="e.g. users/jdoe or classes_of_service/7",
                        code="settings",
                    )
                )
            elif kind not in KINDS:
                bad_kind(("safety", "protected", i), kind, "safety.protected")
        for name in s.safety.elements:
            if name not in self.elements:
                close = elements(name)
                self.out.append(
                    Finding(
                        here("safety", "elements", name),
                        f"safety.elements: unknown element '{name}'",
                        hint=f"did you mean {close}?"
                        if close
                        else "name an element defined under elements:",
                        code="settings",
                    )
                )
        for i, w in enumerate(s.windows):
            for j, k in enumerate(w.kinds):
                if k not in KINDS:
                    bad_kind(("windows", i, "kinds", j), k, f"windows[{w.name}].kinds")
            for j, name in enumerate(w.elements):
                if name not in self.elements:
                    close = elements(name)
                    self.out.append(
                        Finding(
                            here("windows", i, "elements", j),
                            f"windows[{w.name}].elements: unknown element '{name}'",
                            hint=f"did you mean {close}?"
                            if close
                            else "name an element defined under elements:",
                            code="settings",
                        )
                    )


def find_cycles(graph: Mapping[str, list[str]]) -> list[list[str]]:
    """One cycle per strongly connected part of `graph` that loops, as a path
    from its first node (in `graph`'s order) back to it: ["a", "b", "a"]."""
    order = {n: k for k, n in enumerate(graph)}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    parts: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        # Tarjan's algorithm, iteratively: a call chain may be long.
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, k = work.pop()
            if k == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            succ = [c for c in graph.get(node, ()) if c in graph]
            if k < len(succ):
                work.append((node, k + 1))
                child = succ[k]
                if child not in index:
                    work.append((child, 0))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            if low[node] == index[node]:
                part: list[str] = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    part.append(top)
                    if top == node:
                        break
                parts.append(part)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    cycles = []
    for part in parts:
        members = set(part)
        start = min(part, key=order.__getitem__)
        if len(part) == 1 and start not in graph[start]:
            continue
        cycles.append(_path_back(graph, start, members, order))
    return sorted(cycles, key=lambda c: order[c[0]])


def _path_back(
    graph: Mapping[str, list[str]], start: str, members: set[str], order: Mapping[str, int]
) -> list[str]:
    """The shortest call path from `start` back to itself inside one loop."""
    prev: dict[str, str] = {}
    queue = [start]
    for node in queue:
        for child in graph[node]:
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(prev[path[-1]])
                return [start, *reversed(path[:-1]), start] if node != start else [start, start]
            if child in members and child not in prev and child != start:
                prev[child] = node
                queue.append(child)
    return [start, start]  # not reached: every loop leads back


def _dn_index(user: User, dn: str) -> int:
    return next(i for i, s in enumerate(user.services) if s is not None and s.dn == dn)


def _shown(text: str) -> str:
    """User text quoted for a message; escapes show what cannot be seen."""
    return f"'{text}'" if text.isprintable() else ascii(text)


def _int(key: str) -> int:
    # A partial record's key is its raw text, which may not be a number.
    try:
        return int(float(key))
    except ValueError:
        return -1


def _few(names: Iterable[Any], n: int = 8) -> str:
    items = [str(x) for x in names]
    more = f", … ({len(items) - n} more)" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def _or_suggest(close: str | None, otherwise: str) -> str:
    return f"did you mean {close}?" if close else otherwise


def _quoted(names: list[str]) -> str:
    q = [f"'{n}'" for n in names]
    return q[0] if len(q) == 1 else f"{', '.join(q[:-1])} or {q[-1]}"


def _free_ceid(used: Collection[int]) -> str:
    free = next((n for n in range(1, 1000) if n not in used), None)
    return f"{free} is free" if free is not None else "all of 1-999 are taken"
