"""Rules on provgit.yaml's settings: kinds and elements they name exist."""

from __future__ import annotations

from collections.abc import Callable

from provgit.load.yaml_events import Path
from provgit.model.findings import Finding, Pointer
from provgit.model.kinds import KINDS
from provgit.model.settings import IVR_CHANGE_KINDS, Settings
from provgit.source import SETTINGS_FILE
from provgit.validate.rules_base import RuleBase, Suggest, few


class SettingsRules(RuleBase):
    def check_settings(self) -> None:
        s: Settings = self.state.settings
        kinds = Suggest(KINDS)
        elements = Suggest(self.elements)

        def here(*path: str | int) -> Pointer:
            # provgit.yaml holds one document (build_state refuses a second).
            return Pointer(SETTINGS_FILE, (0, *path))

        def bad_kind(path: Path, value: str, what: str) -> None:
            close = kinds(value)
            self.out.append(
                Finding(
                    here(*path),
                    f"{what}: unknown kind '{value}'",
                    hint=f"did you mean {close}?" if close else f"known kinds: {few(KINDS)}",
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
        for i, q in enumerate(s.apply.quiet_load):
            self._quiet_load(i, q.kinds, q.elements, here)

    def _quiet_load(
        self, i: int, kinds: list[str], names: list[str], here: Callable[..., Pointer]
    ) -> None:
        """apply.quiet_load[i] scopes IVR content on IVR servers only."""
        what = f"apply.quiet_load[{i}]"
        for j, k in enumerate(kinds):
            if k not in IVR_CHANGE_KINDS:
                self.out.append(
                    Finding(
                        here("apply", "quiet_load", i, "kinds", j),
                        f"{what}.kinds: '{k}' is not held by call load",
                        hint=f"quiet_load holds IVR content: {', '.join(IVR_CHANGE_KINDS)}",
                        code="settings",
                    )
                )
        for j, name in enumerate(names):
            el = self.elements.get(name)
            if el is None:
                close = Suggest(self.elements)(name)
                msg, hint = (
                    f"{what}.elements: unknown element '{name}'",
                    f"did you mean {close}?" if close else "name an IVR server under elements:",
                )
            elif el.type != "ivr":
                msg = f"{what}.elements: '{name}' is a {el.type}, not an IVR server"
                hint = "quiet_load holds IVR content, which only IVR servers carry"
            else:
                continue
            self.out.append(
                Finding(
                    here("apply", "quiet_load", i, "elements", j), msg, hint=hint, code="settings"
                )
            )
