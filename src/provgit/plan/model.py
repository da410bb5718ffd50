"""The `Plan` value and its JSON form.

A plan is data: per element, ordered operations with before/after, the
element's observed revision (so a saved plan is refused once the element has
moved), counts, and the options it was planned with. Renderers turn it into
text, markdown or JSON; apply executes it. A saved plan is signed
(`plan.signing`): `loads`/`from_json` here only parse.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import orjson

from provgit.plan.add_bytes import AddWriter
from provgit.plan.canonical import PlanFormatError as PlanFormatError
from provgit.plan.canonical import canonical as canonical
from provgit.plan.canonical import join_sorted as join_sorted
from provgit.plan.canonical import legacy_canonical as legacy_canonical
from provgit.plan.change_bytes import ChangeWriter
from provgit.plan.feed_check import FeedCheck
from provgit.plan.moves import Move
from provgit.plan.swap_mark import Swap
from provgit.plan.would_wait import WouldWait as WouldWait
from provgit.secrets import PLAIN as _PLAIN
from provgit.secrets import SENSITIVE, redact

if TYPE_CHECKING:
    from provgit.plan.errors import ResourceError

# 3: an add carries no `changes` (derived from its `fields`); 2 (both) still read.
FORMAT = "provgit.plan/3"
READABLE_FORMATS = ("provgit.plan/2", FORMAT)
# Formats before plans were signed: refused with a clear message, never applied.
UNSIGNED_FORMATS = ("provgit.plan/1",)
Action = Literal["add", "modify", "delete"]


# Operations serialized at a time: what a plan's output holds in flight.
BATCH = 2000


def operation_pieces(ops: Sequence[Operation]) -> Iterator[bytes]:
    """`canonical` of a list of operations, a batch at a time; plain adds
    straight from their fields (`add_bytes`), modifies and deletes from their
    changes (`change_bytes`), the rest through `to_json`."""
    adds, changes = AddWriter(), ChangeWriter()
    yield b"["
    for i in range(0, len(ops), BATCH):
        done = [
            adds.add(op) or changes.change(op) or canonical(op.to_json())
            for op in ops[i : i + BATCH]
        ]
        yield (b"," if i else b"") + b",".join(done)
    yield b"]"


def _added(fields: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """An add's changes: every visible field of the record, as its "after"."""
    return {k: {"after": v} for k, v in fields.items() if k[0] != "_" and v is not None}


@dataclass(frozen=True, slots=True, init=False, eq=False)
class Operation:
    action: Action
    collection: str
    key: str
    kind: str  # resource kind it comes from (for status per resource)
    resource: str  # that resource's key
    # The changes as given; None on an add planned here: `changes` derives them
    # from its fields (a first rollout's adds do not each hold two copies).
    delta: dict[str, dict[str, Any]] | None
    # What to write (add/modify); secrets as references, never values.
    fields: dict[str, Any] | None
    if_revision: int | None
    depends_on: tuple[tuple[str, str], ...]
    # delete: whether the element's record said provgit created it (apply
    # re-checks the prune rules with it).
    managed: bool | None
    # modify: the element's record is not provgit's yet (no ownership marker);
    # the write takes ownership, still only at `if_revision` (`plan --claim`).
    claim: bool

    def __init__(
        self,
        action: Action,
        collection: str,
        key: str,
        kind: str,
        resource: str,
        changes: dict[str, dict[str, Any]] | None = None,
        fields: dict[str, Any] | None = None,
        if_revision: int | None = None,
        depends_on: tuple[tuple[str, str], ...] = (),
        managed: bool | None = None,
        claim: bool = False,
    ) -> None:
        """`changes` None: derived from `fields` (an add), else none."""
        put = object.__setattr__
        put(self, "action", action)
        put(self, "collection", collection)
        put(self, "key", key)
        put(self, "kind", kind)
        put(self, "resource", resource)
        put(self, "delta", changes)
        put(self, "fields", fields)
        put(self, "if_revision", if_revision)
        put(self, "depends_on", depends_on)
        put(self, "managed", managed)
        put(self, "claim", claim)

    @property
    def changes(self) -> dict[str, dict[str, Any]]:
        """add: the whole record; modify: the fields that change; delete: the record removed."""
        if self.delta is not None:
            return self.delta
        if self.action == "add" and self.fields is not None:
            return _added(self.fields)
        return {}

    def _key(self) -> tuple[Any, ...]:
        return (
            self.action,
            self.collection,
            self.key,
            self.kind,
            self.resource,
            self.changes,
            self.fields,
            self.if_revision,
            self.depends_on,
            self.managed,
            self.claim,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Operation):
            return NotImplemented
        return self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]  # holds dicts, as the dataclass did

    def __repr__(self) -> str:
        return (
            f"Operation({self.action!r}, {self.collection!r}, {self.key!r}, "
            f"{self.kind!r}, {self.resource!r}, changes={self.changes!r}, "
            f"fields={self.fields!r}, if_revision={self.if_revision!r}, "
            f"depends_on={self.depends_on!r}, managed={self.managed!r}, claim={self.claim!r})"
        )

    @property
    def destructive(self) -> bool:
        return self.action == "delete"

    def shown_changes(self) -> dict[str, dict[str, Any]]:
        """`changes` as a plan shows them: secrets as "(sensitive)"."""
        if self.delta is None:
            if self.action != "add" or self.fields is None:
                return {}
            # `_shown` inlined: called for every field of every operation.
            return {
                k: {"after": v if type(v) in _PLAIN else redact(v)}
                for k, v in self.fields.items()
                if k[0] != "_" and v is not None
            }
        return {
            k: {a: v if type(v) in _PLAIN else redact(v) for a, v in c.items()}
            if type(c) is dict and SENSITIVE not in c
            else redact(c)
            for k, c in self.delta.items()
        }

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "action": self.action,
            "collection": self.collection,
            "key": self.key,
            "kind": self.kind,
            "resource": self.resource,
            "if_revision": self.if_revision,
        }
        # An add's changes derived from its fields are not written: read back from them.
        if self.delta is not None or self.action != "add" or self.fields is None:
            out["changes"] = self.shown_changes()
        if self.fields is not None:
            out["fields"] = self.fields
        if self.depends_on:
            out["depends_on"] = [list(d) for d in self.depends_on]
        if self.managed is not None:
            out["managed"] = self.managed
        if self.claim:  # only when set: other plans keep their checksum
            out["claim"] = True
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Operation:
        return cls(
            action=d["action"],
            collection=d["collection"],
            key=d["key"],
            kind=d["kind"],
            resource=d["resource"],
            changes=d.get("changes"),  # an add's: None, derived from its fields
            fields=d.get("fields"),
            if_revision=d.get("if_revision"),
            depends_on=tuple((a, b) for a, b in d.get("depends_on", [])),
            managed=d.get("managed"),
            claim=d.get("claim") is True,
        )


# The note a read-only element's plan carries instead of operations.
READ_ONLY_NOTE = "read-only element: observed, never written (read_only: true in the config)"


@dataclass(frozen=True)
class ElementPlan:
    element: str
    element_type: str
    state: str  # running / locked / offline / unauthorized / error
    observed_revision: int | None
    operations: tuple[Operation, ...] = ()
    error: str | None = None  # why the element could not be observed
    refusal: str | None = None  # safety threshold tripped: nothing is applied here
    warnings: tuple[str, ...] = ()
    observed_records: int = 0  # what the element held (the base of percent thresholds)
    # An element that could not be observed: the writes it needs, planned
    # against its last observation. Never sent from this plan (the next run
    # plans again from what the element holds); apply keeps them as pending
    # updates at once, the way SDS queues updates for an element that is down.
    queued: tuple[Operation, ...] = ()
    # Planned from a last reading: even empty, all it is owed (not in the JSON: a
    # saved plan, never fresh, replaces no pending update; see apply/delivery.py).
    queue_planned: bool = False
    # What a hold would keep back if applied now (filled in for `provgit plan`).
    would_wait: tuple[WouldWait, ...] = ()
    # What this plan's run found of the element's change feed (a full read).
    feed_check: FeedCheck | None = None
    moves: tuple[Move, ...] = ()
    # Temporary spare-number steps of a number swap (plan/swaps.py).
    swaps: tuple[Swap, ...] = ()
    # The operations before the swaps were broken: what a plan memo keeps, so a
    # plan from it breaks them again, marks and all (never in the plan's JSON).
    unbroken: tuple[Operation, ...] | None = field(default=None, compare=False, repr=False)

    @property
    def observed(self) -> bool:
        return self.observed_revision is not None

    @property
    def read_only(self) -> bool:
        """Marked read_only in the config: observed, never written."""
        return READ_ONLY_NOTE in self.warnings

    def counts(self) -> dict[str, int]:
        c = Counter(op.action for op in self.operations)
        return {a: c.get(a, 0) for a in ("add", "modify", "delete")}

    def counts_by_kind(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for op in self.operations:
            row = out.setdefault(op.kind, {"add": 0, "modify": 0, "delete": 0})
            row[op.action] += 1
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            **self._head(),
            "operations": [op.to_json() for op in self.operations],
            # Only when there are some: older plan files keep their checksum.
            **({"queued": [op.to_json() for op in self.queued]} if self.queued else {}),
            **({"would_wait": [w.to_json() for w in self.would_wait]} if self.would_wait else {}),
            **({"feed_check": self.feed_check.to_json()} if self.feed_check else {}),
            **({"moves": [m.to_json() for m in self.moves]} if self.moves else {}),
            **({"swaps": [s.to_json() for s in self.swaps]} if self.swaps else {}),
        }

    def canonical_pieces(self) -> Iterator[bytes]:
        """`canonical` of `to_json`, its operations serialized a batch at a time."""
        parts: dict[str, Iterable[bytes]] = {k: (canonical(v),) for k, v in self._head().items()}
        parts["operations"] = operation_pieces(self.operations)
        if self.queued:
            parts["queued"] = operation_pieces(self.queued)
        if self.would_wait:
            parts["would_wait"] = (canonical([w.to_json() for w in self.would_wait]),)
        if self.feed_check:
            parts["feed_check"] = (canonical(self.feed_check.to_json()),)
        if self.moves:
            parts["moves"] = (canonical([m.to_json() for m in self.moves]),)
        if self.swaps:
            parts["swaps"] = (canonical([s.to_json() for s in self.swaps]),)
        return join_sorted(parts)

    def _head(self) -> dict[str, Any]:
        return {
            "element": self.element,
            "type": self.element_type,
            "state": self.state,
            "observed_revision": self.observed_revision,
            "error": self.error,
            "refusal": self.refusal,
            "warnings": list(self.warnings),
            "observed_records": self.observed_records,
            "counts": self.counts(),
            "counts_by_kind": self.counts_by_kind(),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ElementPlan:
        return cls(
            element=d["element"],
            element_type=d["type"],
            state=d["state"],
            observed_revision=d.get("observed_revision"),
            operations=tuple(Operation.from_json(o) for o in d.get("operations", [])),
            error=d.get("error"),
            refusal=d.get("refusal"),
            warnings=tuple(d.get("warnings", [])),
            observed_records=int(d.get("observed_records", 0)),
            queued=tuple(Operation.from_json(o) for o in d.get("queued", [])),
            queue_planned="queued" in d,
            would_wait=tuple(WouldWait.from_json(w) for w in d.get("would_wait", [])),
            feed_check=FeedCheck.from_json(d["feed_check"]) if "feed_check" in d else None,
            moves=tuple(Move.from_json(m) for m in d.get("moves", [])),
            swaps=tuple(Swap.from_json(s) for s in d.get("swaps", [])),
        )


@dataclass(frozen=True)
class Plan:
    network: str
    elements: tuple[ElementPlan, ...]
    commit: str | None = None
    source: str | None = None  # config path or "<base>..<head>" for a diff
    mode: Literal["plan", "diff"] = "plan"
    warnings: tuple[str, ...] = ()
    # The options it was planned with (apply re-checks the safety rules with them).
    prune: bool = False
    allow_deletes: bool = False
    allow_updates: bool = False
    claim: bool = False

    @property
    def has_changes(self) -> bool:
        return any(e.operations for e in self.elements)

    @property
    def unreachable(self) -> list[ElementPlan]:
        """Elements that could not be observed: the plan does not cover them."""
        return [e for e in self.elements if not e.observed]

    @property
    def refused(self) -> list[ElementPlan]:
        return [e for e in self.elements if e.refusal]

    @functools.cached_property
    def errors(self) -> tuple[ResourceError, ...]:
        """Resources apply would refuse to write (derived from the operations)."""
        from provgit.plan.errors import resource_errors

        return resource_errors(self.elements)

    def only(self, elements: tuple[str, ...] | list[str]) -> Plan:
        """The same plan limited to these elements."""
        return dataclasses.replace(
            self, elements=tuple(e for e in self.elements if e.element in elements)
        )

    def element(self, name: str) -> ElementPlan | None:
        return next((e for e in self.elements if e.element == name), None)

    def waiting(self) -> int:
        """Operations a hold would keep back if applied now."""
        return sum(len(w.operations) for e in self.elements for w in e.would_wait)

    def totals(self) -> dict[str, int]:
        c: Counter[str] = Counter()
        for e in self.elements:
            c.update(e.counts())
        return {a: c.get(a, 0) for a in ("add", "modify", "delete")}

    def _body(self) -> dict[str, Any]:
        return {**self._head(), "elements": [e.to_json() for e in self.elements]}

    def _head(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "mode": self.mode,
            "network": self.network,
            "commit": self.commit,
            "source": self.source,
            "warnings": list(self.warnings),
            "options": {
                "prune": self.prune,
                "allow_mass_delete": self.allow_deletes,
                "allow_mass_update": self.allow_updates,
                # Only when set: plans made before --claim keep their checksum.
                **({"claim": True} if self.claim else {}),
            },
            "totals": self.totals(),
        }

    def checksum(self) -> str:
        """A digest of the content (identifies a plan; it protects nothing: see signing)."""
        return "sha256:" + hashlib.sha256(canonical(self._body())).hexdigest()

    def to_json(self) -> dict[str, Any]:
        body = self._body()
        # Derived from the operations: signed with them, recomputed when read back.
        body["errors"] = [e.to_json() for e in self.errors]
        return body

    def canonical_parts(self) -> dict[str, Iterable[bytes]]:
        """The pieces of `canonical` of each top-level value of `to_json`.
        Elements are serialized as the pieces are read, a batch of operations
        at a time: a first rollout's hundreds of thousands of operations are
        never all held serialized (nor as JSON objects)."""
        parts: dict[str, Iterable[bytes]] = {k: (canonical(v),) for k, v in self._head().items()}
        parts["elements"] = self._element_pieces()
        parts["errors"] = (canonical([e.to_json() for e in self.errors]),)
        return parts

    def _element_pieces(self) -> Iterator[bytes]:
        yield b"["
        for i, e in enumerate(self.elements):
            if i:
                yield b","
            yield from e.canonical_pieces()
        yield b"]"

    def dumps(self) -> str:
        """The JSON form, unsigned (`signing.signed_text` is what apply accepts)."""
        return orjson.dumps(self.to_json(), option=orjson.OPT_INDENT_2).decode() + "\n"

    @classmethod
    def from_json(cls, d: Any) -> Plan:
        """Parse only: a plan to apply comes through `signing.verify`."""
        if not isinstance(d, dict) or d.get("format") not in READABLE_FORMATS:
            raise PlanFormatError(f"not a provgit plan (expected format {FORMAT!r})")
        try:
            options = d.get("options") or {}
            plan = cls(
                network=d["network"],
                elements=tuple(ElementPlan.from_json(e) for e in d["elements"]),
                commit=d.get("commit"),
                source=d.get("source"),
                mode=d.get("mode", "plan"),
                warnings=tuple(d.get("warnings", [])),
                prune=options.get("prune") is True,
                allow_deletes=options.get("allow_mass_delete") is True,
                allow_updates=options.get("allow_mass_update") is True,
                claim=options.get("claim") is True,
            )
        except KeyError as e:
            raise PlanFormatError(
                f"plan file is damaged: field {e.args[0]!r} is missing; make it again "
                "with `provgit plan --out FILE`"
            ) from None
        except (TypeError, ValueError, AttributeError) as e:
            raise PlanFormatError(
                f"plan file is damaged ({type(e).__name__}: {e}); make it again with "
                "`provgit plan --out FILE`"
            ) from None
        return plan

    @classmethod
    def loads(cls, text: str) -> Plan:
        try:
            return cls.from_json(orjson.loads(text))
        except orjson.JSONDecodeError as e:
            raise PlanFormatError(f"plan file is not JSON: {e}") from None
