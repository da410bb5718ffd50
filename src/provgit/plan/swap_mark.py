"""The mark of a number swap's temporary step (plan/swaps.py), part of the plan."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from provgit.plan.moves import MOVE_PENDING

_NUMBERS = r"[0-9*#]+(?:, [0-9*#]+)*"
# `Swap.reason()` read back: the pending update a landed step leaves.
_REASON = re.compile(
    rf"{re.escape(MOVE_PENDING)}(?P<ref>[^\n]+?) is on spare DN (?P<spares>{_NUMBERS}) for a "
    rf"number swap; the next run (?:deletes it here once (?P<home>[^\n]+) has it|"
    rf"gives it (?P<numbers>{_NUMBERS}))"
)


@dataclass(frozen=True)
class Swap:
    """`collection`/`key` is written here with `spares` (DN the config gives
    it -> spare DN) in its record; `home`: the record leaves this element, and
    is written as the config has it on `home` (None: it stays here)."""

    collection: str
    key: str
    spares: tuple[tuple[str, str], ...]
    home: str | None = None

    def reason(self) -> str:
        """The status words of a step landed: the swap is not done yet."""
        spares = ", ".join(spare for _, spare in self.spares)
        if self.home is not None:
            then = f"the next run deletes it here once {self.home} has it"
        else:
            then = f"the next run gives it {', '.join(dn for dn, _ in self.spares)}"
        return (
            f"{MOVE_PENDING}{self.collection}/{self.key} is on spare DN {spares} for a "
            f"number swap; {then}"
        )

    def parked(self) -> Parked:
        """What a landed step leaves the user on (`Parked.of(self.reason())`)."""
        numbers = () if self.home is not None else tuple(dn for dn, _ in self.spares)
        return Parked(tuple(spare for _, spare in self.spares), numbers, self.home)

    def step_note(self) -> str:
        """What the step's write, landed, did (its result's message)."""
        spares = ", ".join(f"{spare} for {dn}" for dn, spare in self.spares)
        return f"written with spare DN {spares} (a number swap's temporary step)"

    def note(self) -> str:
        """What `provgit plan` says of the step's write."""
        spares = ", ".join(f"{spare} for {dn}" for dn, spare in self.spares)
        end = (
            f"deleted here once {self.home} has it"
            if self.home is not None
            else "its own number next run"
        )
        return f"swap: temporary spare DN {spares}; {end}"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "collection": self.collection,
            "key": self.key,
            "spares": [list(p) for p in self.spares],
        }
        if self.home is not None:
            out["home"] = self.home
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Swap:
        home = d.get("home")
        return cls(
            str(d["collection"]),
            str(d["key"]),
            tuple((str(a), str(b)) for a, b in d["spares"]),
            None if home is None else str(home),
        )


@dataclass(frozen=True)
class Parked:
    """A user parked on a spare number on one element by a swap's step: not
    synced there. `numbers`: those the config gives it there (it stays);
    `home`: the element it leaves for (then it is deleted here)."""

    spares: tuple[str, ...]
    numbers: tuple[str, ...] = ()
    home: str | None = None

    @classmethod
    def of(cls, reason: str) -> Parked | None:
        """The parking a pending update's reason names (`Swap.reason()`), if any."""
        m = _REASON.fullmatch(reason)
        if m is None:
            return None
        numbers = m["numbers"]
        return cls(
            tuple(m["spares"].split(", ")),
            () if numbers is None else tuple(numbers.split(", ")),
            m["home"],
        )

    def words(self, where: Sequence[str] = ()) -> str:
        """The status words of the user on that element (on `where`, named)."""
        on = f"On spare number {', '.join(self.spares)}"
        if where:
            on += f" on {', '.join(where)}"
        if self.home is not None:
            return f"{on} until {self.home} has it (number swap)"
        return f"{on} until it gets {', '.join(self.numbers)} (number swap)"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"numbers": list(self.spares)}
        if self.home is not None:
            out["until_on"] = self.home
        else:
            out["for"] = list(self.numbers)
        return out


# `Unread.reason()` read back: a swap's write held while elements are unread.
_UNREAD = re.compile(
    rf"{re.escape(MOVE_PENDING)}[a-z]+ of [^\n]+? held: number swap with "
    r"(?P<partner>[^\n]+?) waits for (?P<elements>[^\n]+?), which did not answer"
)


@dataclass(frozen=True)
class Unread:
    """A number swap that may run through elements that could not be read
    (another replica's, api/swaps_across.py): no spare is picked half blind,
    so its writes here wait, with `partner` (the other user of the swap on
    this element), until `elements` answer."""

    partner: str  # collection/key
    elements: tuple[str, ...]

    def reason(self, action: str, collection: str, key: str) -> str:
        """The pending update's words for the held write of `collection`/`key`."""
        words = self.words()
        return f"{MOVE_PENDING}{action} of {collection}/{key} held: {words[0].lower()}{words[1:]}"

    @classmethod
    def of(cls, reason: str) -> Unread | None:
        """The wait a pending update's reason names (`reason()`), if any."""
        m = _UNREAD.fullmatch(reason)
        if m is None:
            return None
        return cls(m["partner"], tuple(m["elements"].split(", ")))

    def words(self, where: Sequence[str] = ()) -> str:
        """The status words of the user on that element (on `where`, named)."""
        on = f" on {', '.join(where)}" if where else ""
        return (
            f"Number swap with {self.partner}{on} waits for {', '.join(self.elements)}, "
            "which did not answer"
        )

    def to_json(self) -> dict[str, Any]:
        return {"with": self.partner, "unread": list(self.elements)}
