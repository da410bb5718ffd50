"""The watcher's incremental planning state, in memory.

A long-running watcher keeps the last plan of every element, made against a
numbered projection (its serial): a run re-plans only the records the change
feed named since that plan and, when the projection moved since (records
changed, and what reads them was projected again:
`projection.project.reproject`), the records it moved.
Anything else (another projection, other options, a feed that does not start
at the plan's revision) plans the element in full.
"""

from __future__ import annotations

from collections.abc import Mapping

from provgit.incremental.known import Known, known_of
from provgit.incremental.replan import held
from provgit.incremental.session import Replan, plan_incrementally
from provgit.model.settings import Settings
from provgit.observe import Observation
from provgit.plan.model import ElementPlan, Plan
from provgit.plan.options import PlanOptions
from provgit.projection.project import RecordRef, Target

# (from serial, to serial, records moved per element)
Delta = tuple[int, int, dict[str, set[RecordRef]]]
# (projection serial, the last reprojection's delta, each element's last plan)
StatusPlans = tuple[int, Delta | None, dict[str, ElementPlan]]


class MemorySession:
    """The projection version, the records moved since the one before, and
    what the last plan knew of each element."""

    def __init__(self) -> None:
        self._target: Target | None = None
        self._serial = 0
        self._delta: Delta | None = None
        # element -> (what its last plan knew, that plan)
        self._known: dict[str, tuple[Known, ElementPlan]] = {}

    def clear(self) -> None:
        """Forget every plan (the projection serial keeps counting)."""
        self._target = None
        self._delta = None
        self._known.clear()

    def projected(self, target: Target, moved: dict[str, set[RecordRef]] | None) -> None:
        """A new projection: `moved` the records it changed from the last one
        (when reprojected from it; None: projected anew)."""
        self._serial += 1
        self._delta = None if moved is None else (self._serial - 1, self._serial, moved)
        self._target = target

    def serial_of(self, target: Target) -> int:
        """`target`'s projection serial, -1 if it is not the last projection."""
        return self._serial if self._target is not None and self._target is target else -1

    def last_plans(self, target: Target) -> StatusPlans | None:
        """The serial of `target`'s projection, the records the last
        reprojection moved, and each element's last plan against it (what
        status derives from, `report.derive`)."""
        serial = self.serial_of(target)
        if serial < 0:
            return None
        return (
            serial,
            self._delta,
            {
                name: plan
                # A copy first: the server asks from another thread while runs plan.
                for name, (known, plan) in dict(self._known).items()
                if known.version == serial
            },
        )

    def _replan(
        self, name: str, obs: Observation, serial: int, options: PlanOptions
    ) -> Replan | None:
        found = self._known.get(name)
        if found is None or serial < 0 or obs.changed is None or self._target is None:
            return None
        known, _ = found
        if known.options != options or obs.base_revision != known.revision:
            return None
        keys = set(obs.changed)
        if known.version != serial:
            delta = self._delta
            if delta is None or delta[0] != known.version or delta[1] != serial:
                return None
            keys |= delta[2].get(name, set())
        return Replan(known, held(obs, keys), self._target)

    def plan(
        self,
        target: Target,
        observed: Mapping[str, Observation],
        settings: Settings,
        element_types: Mapping[str, str],
        options: PlanOptions,
        commit: str | None,
        source: str,
    ) -> Plan:
        """`compute_plan`, re-planning per element only what moved since its last plan."""
        serial = self.serial_of(target)
        replans = {
            name: found
            for name, obs in observed.items()
            if (found := self._replan(name, obs, serial, options)) is not None
        }
        planned = plan_incrementally(
            element_types,
            observed,
            replans,
            target,
            target.unresolved_secrets,
            settings,
            options,
            commit,
            source,
        )
        assert planned is not None  # with the whole target: every number is known
        plan, _ = planned
        for element_plan in plan.elements:
            name = element_plan.element
            if element_plan.observed and serial >= 0:
                known = known_of(element_plan, serial, None, options)
                self._known[name] = (known, element_plan)
            else:
                self._known.pop(name, None)
        return plan
