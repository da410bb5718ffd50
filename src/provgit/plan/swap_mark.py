"""The mark of a number swap's temporary step (plan/swaps.py), part of the plan."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from provgit.plan.moves import MOVE_PENDING


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
