"""The users' identities of every file kept, counted, for a watcher's commits.

`by_file._users_fit` checks that login ids (as written, case-folded and as
they look) and directory numbers are unique across all files, and that no
login id is a directory number, by building sets of all 100,000 users' values:
~70 ms of every one-user commit. The watcher keeps each file's facts anyway,
so it counts the values instead: a commit adds the files it brought and takes
away the ones it replaced, and uniqueness is a number kept at zero.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from provgit.validate.by_file import FileFacts

_COLUMNS = ("logins", "folded", "looks", "dns")


class FactIndex:
    """Counts of every file's identities; `unique` is what the sets would say."""

    def __init__(self) -> None:
        self._files: dict[tuple[str, str], FileFacts] = {}
        self._counts: dict[str, Counter[str]] = {c: Counter() for c in _COLUMNS}
        # Per column: values written more than once, counted once per extra copy.
        self._repeats: dict[str, int] = dict.fromkeys(_COLUMNS, 0)
        # Pairs of a login id and a directory number that are the same string.
        self._crossed = 0

    def track(self, files: Mapping[tuple[str, str], FileFacts]) -> None:
        """Now count exactly `files` (by the caller's key: path and blob id)."""
        for key in [k for k in self._files if k not in files]:
            self._change(self._files.pop(key), -1)
        for key, facts in files.items():
            if key not in self._files:
                self._files[key] = facts
                self._change(facts, +1)

    def unique(self) -> bool:
        return self._crossed == 0 and not any(self._repeats.values())

    def _change(self, facts: FileFacts, step: int) -> None:
        for column in _COLUMNS:
            self._count(column, getattr(facts, column), step)
        logins, dns = self._counts["logins"], self._counts["dns"]
        # Pairs change by each value's count on the other side (counted after
        # the loop above, so this file's own pairs are in both sums once too
        # many when adding, once too few when taking away: `_within`).
        met = sum(dns[v] for v in facts.logins if v in dns)
        met += sum(logins[v] for v in facts.dns if v in logins)
        self._crossed += step * met - _within(facts)

    def _count(self, column: str, values: Iterable[str], step: int) -> None:
        counts = self._counts[column]
        repeats = 0
        for v in values:
            before = counts[v]
            after = before + step
            if step > 0 and before >= 1:
                repeats += 1
            elif step < 0 and before >= 2:
                repeats -= 1
            if after:
                counts[v] = after
            else:
                del counts[v]
        self._repeats[column] += repeats


def _within(facts: FileFacts) -> int:
    """Pairs of a login id and a directory number of the same file that are equal."""
    dns = Counter(facts.dns)
    return sum(dns[v] for v in facts.logins if v in dns)
