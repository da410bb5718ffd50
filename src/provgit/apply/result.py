"""What an apply did, as values with a JSON form."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from provgit import exitcodes

# ok: landed (or already there); failed: a distribution error; pending: could
# not be delivered, kept for the next run; skipped: depends on something that
# failed; held: an open distribution error holds it until an admin acts, or
# (drift mode report) it was changed outside provgit and waits for a person.
OpStatus = Literal["ok", "failed", "pending", "skipped", "held"]
# held: a suspension or a sync window keeps its writes as pending updates.
ElementOutcome = Literal["in_sync", "applied", "failed", "refused", "unreachable", "held"]


# Slots: a first rollout holds 304,616 of these until its report is written.
@dataclass(frozen=True, slots=True)
class OpResult:
    action: str
    collection: str
    key: str
    kind: str
    resource: str
    status: OpStatus
    message: str | None = None
    error_type: str | None = None
    error_id: int | None = None  # distribution error action id
    revision: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "action": self.action,
            "collection": self.collection,
            "key": self.key,
            "kind": self.kind,
            "resource": self.resource,
            "status": self.status,
        }
        for name in ("message", "error_type", "error_id", "revision"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


def removed_resources(elements: list[ElementResult]) -> dict[tuple[str, str], list[str]]:
    """Resources this run took off every element it touched them on: all their
    operations were deletes, all landed. (kind, resource) -> those elements."""
    removed: dict[tuple[str, str], list[str]] = {}
    spoiled: set[tuple[str, str]] = set()
    for e in elements:
        for op in e.operations:
            ref = (op.kind, op.resource)
            if op.action != "delete" or op.status != "ok":
                spoiled.add(ref)
            elif e.element not in removed.setdefault(ref, []):
                removed[ref].append(e.element)
    return {ref: sorted(els) for ref, els in removed.items() if ref not in spoiled}


@dataclass
class ElementResult:
    element: str
    element_type: str
    status: str  # the sync status string
    outcome: ElementOutcome
    state: str = "running"
    refusal: str | None = None
    error: str | None = None
    operations: list[OpResult] = field(default_factory=list)
    # Held work this run let go, and why ("released: window opened", ...).
    released: str | None = None
    # Marked read_only in the config: observed, never written.
    read_only: bool = False

    @property
    def shown(self) -> str:
        """The status words a person reads for this run: a read_only element
        in sync was observed, not written (never "Sync Completed")."""
        from provgit.apply.status import READ_ONLY

        return READ_ONLY if self.read_only and self.outcome == "in_sync" else self.status

    def counts(self) -> dict[str, int]:
        c = Counter(op.status for op in self.operations)
        return {s: c.get(s, 0) for s in ("ok", "failed", "pending", "skipped", "held")}

    def to_json(self, full: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "element": self.element,
            "type": self.element_type,
            "status": self.status,
            "outcome": self.outcome,
            "state": self.state,
            "refusal": self.refusal,
            "error": self.error,
            "counts": self.counts(),
        }
        if full:
            out["operations"] = [op.to_json() for op in self.operations]
        else:
            out["problems"] = [op.to_json() for op in self.operations if op.status != "ok"]
        return out


@dataclass
class ApplyResult:
    run_id: int
    network: str
    elements: list[ElementResult] = field(default_factory=list)
    refusal: str | None = None  # nothing was applied, and why
    alarm: str | None = None
    distribution_errors: int = 0
    pending_updates: int = 0
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)  # "kind/key" -> status
    # Records an `errors retry/force` asked for that were already as the config
    # wants them (fixed on the element, or the config changed): cleared, not written.
    settled: list[tuple[str, str, str]] = field(default_factory=list)
    # Records found changed outside provgit (apply/drift.py), with their
    # `outcome` in this run: held, corrected or reported.
    drift: list[dict[str, Any]] = field(default_factory=list)
    started: str = ""
    finished: str = ""
    # Elements of the config this run did not cover (`--element`).
    left_out: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.refusal is None and all(
            e.outcome in ("in_sync", "applied") for e in self.elements
        )

    @property
    def overall(self) -> str:
        from provgit.apply.status import SYNC_COMPLETED, SYNC_INCOMPLETE

        # A run that left elements out does not say the network is in sync.
        return SYNC_COMPLETED if self.ok and not self.left_out else SYNC_INCOMPLETE

    def headline(self) -> str:
        """The run's one line: its status, for the elements it covered when
        it left some out (`cs1: Sync Completed, 3 applied, ...; cs2, mcl not in
        this run`)."""
        from provgit.apply.status import SYNC_COMPLETED, SYNC_INCOMPLETE

        c = self.counts()
        counts = (
            f"{c['ok']} applied, {c['failed']} failed, {c['pending']} pending, "
            f"{c['skipped']} skipped, {c['held']} held; "
            f"{self.distribution_errors} distribution error(s), "
            f"{self.pending_updates} pending update(s)"
        )
        if not self.left_out:
            return f"{self.overall}: {counts}"
        covered = ", ".join(e.element for e in self.elements) or "no element"
        status = SYNC_COMPLETED if self.ok else SYNC_INCOMPLETE
        return f"{covered}: {status}, {counts}; {', '.join(self.left_out)} not in this run"

    def counts(self) -> dict[str, int]:
        c: Counter[str] = Counter()
        for e in self.elements:
            c.update(e.counts())
        return {s: c.get(s, 0) for s in ("ok", "failed", "pending", "skipped", "held")}

    def exit_code(self) -> int:
        if self.refusal is not None:
            return exitcodes.REFUSED
        if self.ok:
            return exitcodes.OK
        # Refused or held with nothing written: a held element some of whose
        # writes landed (a number swap's spare step, a window closing mid-run)
        # applied something, and owes the rest.
        if all(e.outcome in ("refused", "in_sync", "held") for e in self.elements) and not any(
            op.status == "ok" for e in self.elements for op in e.operations
        ):
            return exitcodes.REFUSED
        return exitcodes.APPLIED_WITH_ERRORS

    def to_json(self, full: bool = True) -> dict[str, Any]:
        return {
            "format": "provgit.apply/1",
            "run_id": self.run_id,
            "network": self.network,
            "started": self.started,
            "finished": self.finished,
            "status": self.overall,
            "refusal": self.refusal,
            "exit_code": self.exit_code(),
            "counts": self.counts(),
            "distribution_errors": self.distribution_errors,
            "pending_updates": self.pending_updates,
            "alarm": self.alarm,
            "elements": [e.to_json(full) for e in self.elements],
            "resources": self.resources,
            "settled": [{"element": e, "collection": c, "key": k} for e, c, k in self.settled],
            "drift": self.drift,
            "left_out": self.left_out,
        }
