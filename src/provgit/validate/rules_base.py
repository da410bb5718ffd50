"""What every rule across records shares: where a finding points, how it
is added, 'did you mean' suggestions, and references to numbered records."""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable
from typing import Any

from provgit.model.common import CorSet, CosSet
from provgit.model.findings import Finding, Pointer
from provgit.model.network import Element
from provgit.model.state import DesiredState
from provgit.model.telephony import User
from provgit.source import ConfigSource

_PERIODS = ("day", "night1", "night2")


class Suggest:
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
            self._memo[memo_key] = quoted(best) if best else None
        return self._memo[memo_key]


class RuleBase:
    """The state being checked and the findings so far; each group of rules extends it."""

    def __init__(self, state: DesiredState, source: ConfigSource, out: list[Finding]) -> None:
        self.state = state
        self.source = source
        self.out = out
        self.origins = state.origins
        # Records that failed their own checks (partial) are here too: their names
        # are defined, and their other fields are checked (None where unusable).
        self.elements: dict[str, Element] = state.all_of("elements")
        self.cos_numbers = {number_key(k) for k in state.all_of("classes_of_service")}
        self.cor_numbers = {number_key(k) for k in state.all_of("cor_groups")}
        self.prompt_names: set[str] = set()

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
        suggest: Suggest,
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
                    f"define classes_of_service number {n}, or use one of {few(sorted(known))}"
                    if known
                    else f"define classes_of_service number {n}",
                )
            else:
                self.add(
                    kind,
                    key,
                    (*field, period),
                    f"COR group {n} ({period}) is not defined",
                    f"define cor_groups number {n}, or use one of {few(sorted(known))}"
                    if known
                    else f"define cor_groups number {n}",
                )


def few(names: Iterable[Any], n: int = 8) -> str:
    items = [str(x) for x in names]
    more = f", … ({len(items) - n} more)" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def or_suggest(close: str | None, otherwise: str) -> str:
    return f"did you mean {close}?" if close else otherwise


def quoted(names: list[str]) -> str:
    q = [f"'{n}'" for n in names]
    return q[0] if len(q) == 1 else f"{', '.join(q[:-1])} or {q[-1]}"


def shown(text: str) -> str:
    """User text quoted for a message; escapes show what cannot be seen."""
    return f"'{text}'" if text.isprintable() else ascii(text)


def number_key(key: str) -> int:
    # A partial record's key is its raw text, which may not be a number.
    try:
        return int(float(key))
    except ValueError:
        return -1


def free_ceid(used: Collection[int]) -> str:
    free = next((n for n in range(1, 1000) if n not in used), None)
    return f"{free} is free" if free is not None else "all of 1-999 are taken"


def dn_index(user: User, dn: str) -> int:
    return next(i for i, s in enumerate(user.services) if s is not None and s.dn == dn)
