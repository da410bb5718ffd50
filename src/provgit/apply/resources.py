"""Per-resource progress of a run: on how many of its elements it is done."""

from __future__ import annotations

from collections.abc import Iterable

from provgit.apply import status as st
from provgit.apply.result import ElementResult

Resource = tuple[str, str]  # (kind, resource)
# (kind, resource, status words, completed, total), as the journal stores them.
Row = tuple[str, str, str, int, int]


class ResourceTally:
    """The elements each resource of the run targets, and how many are done."""

    def __init__(self) -> None:
        self.targets: dict[Resource, set[str]] = {}
        self.done: dict[Resource, int] = {}
        self.failed: set[Resource] = set()

    def target(self, element: str, resources: Iterable[Resource]) -> None:
        for key in resources:
            self.targets.setdefault(key, set()).add(element)
            self.done.setdefault(key, 0)

    def starting_rows(self) -> list[Row]:
        """Every resource at 0 of its elements: "Synching" until they report."""
        return [(k, r, st.syncing(k, 0, len(t)), 0, len(t)) for (k, r), t in self.targets.items()]

    def element_rows(self, result: ElementResult) -> list[Row]:
        """One more target done (or failed) for every resource of `result`."""
        by_resource: dict[Resource, bool] = {}
        for r in result.operations:
            key = (r.kind, r.resource)
            by_resource[key] = by_resource.get(key, True) and r.status == "ok"
        rows: list[Row] = []
        for key, ok in by_resource.items():
            if ok:
                self.done[key] += 1
            else:
                self.failed.add(key)
            total = len(self.targets[key])
            rows.append((*key, st.syncing(key[0], self.done[key], total), self.done[key], total))
        return rows

    def final_rows(self) -> list[Row]:
        """Where each resource ends: Sync Completed only if done on all its elements."""
        rows: list[Row] = []
        for key, t in self.targets.items():
            done = self.done[key]
            final = (
                st.SYNC_COMPLETED
                if done == len(t) and key not in self.failed
                else st.SYNC_INCOMPLETE
            )
            rows.append((*key, final, done, len(t)))
        return rows
