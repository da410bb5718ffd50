"""Rules across IVR records: prompts, subroutines and media servers named
by steps exist, menus are well formed, no subroutine calls itself, audio
files are readable."""

from __future__ import annotations

import re
from collections.abc import Mapping

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
from provgit.source import MAX_OTHER_BYTES
from provgit.validate.rules_base import RuleBase, Suggest
from provgit.validate.wav import audio_problem

# What a menu may transfer to: a number to dial, internal or external.
_DIALABLE = re.compile(r"^[0-9*#]{1,32}$")
_CHOICE_EXAMPLES = {
    "transfer": "transfer:2155",
    "queue": "queue:support-agents",
    "subroutine": "subroutine:Language Select",
}


class IvrRules(RuleBase):
    def check_ivr(self) -> None:
        prompts: dict[str, Prompt] = self.state.all_of("prompts")
        subs: dict[str, Subroutine] = self.state.all_of("subroutines")
        workflows: dict[str, Workflow] = self.state.all_of("workflows")
        servers: dict[str, MediaServer] = self.state.all_of("ivr_media_servers")
        # Steps name a prompt, not a language: any language of it will do.
        prompt_names = self.prompt_names = {p.name for p in prompts.values()}
        s_prompt, s_sub, s_server = (
            Suggest(sorted(prompt_names)),
            Suggest(subs),
            Suggest(servers),
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
        s_prompt: Suggest,
        s_sub: Suggest,
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
                data = self.source.read_other(p.file)
                over = self.source.oversize.get(p.file) if data is None else None
                seen[p.file] = audio_problem(p.file, data, over, MAX_OTHER_BYTES)
            problem = seen[p.file]
            if problem is not None:
                self.add("prompts", key, ("file",), problem[0], problem[1], "file")


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
