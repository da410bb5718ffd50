"""What a long-running watcher keeps between runs, so a small change costs little.

A batch command starts from nothing each time; the watcher holds, in memory:

- the checked models and validation facts of every file, by path and blob
  id: a run re-parses and re-checks only the files whose content changed
  (the on-disk parse cache still serves a fresh start); the parsed documents
  are dropped once a file's models and facts are built;
- the last validated config and its projection, reused as they are while the
  tree (every path and blob id, and the prompt audio read) is the same, which
  is every resync and retry; when records changed, only they and what reads
  them (a template's roles and users, a role's users, an element's hosted
  users: `projection.reach`) are projected again (`reproject`);
- the last observation of every element, refreshed through the change feed,
  and the last plan of every element: a run re-plans only the records whose
  desired state moved or that the feed named (`provgit.incremental`'s
  `MemorySession`, the same per-element loop as the CLI's plan memo).

Only composition: the stages themselves are called as the CLI calls them, and
validation finishes through the same `validate.validate_built` as
`validate_source`, so both find and count alike. The watcher holds one
`StageCache` (its incremental planning session) for its whole life.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provgit.api.network import desired_target, fingerprinter
from provgit.incremental.memory import MemorySession
from provgit.incremental.memory import StatusPlans as StatusPlans  # the watcher's name for it
from provgit.load.loader import Loaded, LoadedFile, gc_frozen, load_files
from provgit.model.build import FileModels, Keyed, assemble_unique, build_file, keyed
from provgit.model.kinds import KINDS
from provgit.model.settings import Settings
from provgit.model.state import DesiredState
from provgit.observe import Observation
from provgit.plan import Plan, PlanOptions
from provgit.plan.moves import mark_cut_moves
from provgit.projection import Target
from provgit.projection.project import reproject
from provgit.projection.reach import DependencyIndex
from provgit.source import SETTINGS_FILE, ConfigSource, blob_id
from provgit.validate import Validated, validate_built
from provgit.validate.cache import Reads, recording_reads

if TYPE_CHECKING:
    from provgit.validate.by_file import FileFacts
    from provgit.validate.fact_index import FactIndex


def tree_key(source: ConfigSource) -> str:
    """Every config file's path and content id, and what could not be read."""
    h = hashlib.sha256()
    for f in source.files:
        h.update(f"\0{f.path}\0{f.blob_id}".encode())
    for e in source.errors:
        h.update(f"\0!{e.path}\0{e.message}".encode())
    return h.hexdigest()


@dataclasses.dataclass(frozen=True)
class Desired:
    """A validated config and what it projects to: the state the watcher keeps applying."""

    key: str
    source: ConfigSource
    validated: Validated
    target: Target

    @property
    def state(self) -> DesiredState:
        return self.validated.state


@dataclasses.dataclass
class _Projected:
    key: str
    target: Target
    state: DesiredState
    files: dict[str, FileModels]  # path -> models of the files it was projected from
    reads: Reads  # other files the projection read (prompt audio) -> blob id
    index: DependencyIndex  # who reads which shared record in `state`, kept up to date


class StageCache:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self._built: dict[tuple[str, str], FileModels] = {}
        # Each file's part in the rules across users, by path and blob (validate.by_file).
        self._facts: dict[tuple[str, str], FileFacts] = {}
        self._keyed: dict[tuple[str, str], Keyed] = {}
        self._index: FactIndex | None = None
        self._last: tuple[str, Validated] | None = None
        self._projected: _Projected | None = None
        # The projection serial and each element's last plan against it.
        self._session = MemorySession()
        self.observations: dict[str, Observation] = {}

    def clear(self) -> None:
        """Forget everything (SIGHUP): the next run reads and parses from the disk cache."""
        self._built.clear()
        self._facts.clear()
        self._keyed.clear()
        self._index = None
        self._last = None
        self._projected = None
        self._session.clear()
        self.observations.clear()

    def validate(self, source: ConfigSource) -> tuple[str, Validated]:
        """`validate_source`, re-parsing and re-checking only files not seen before."""
        key = tree_key(source)
        if self._last is not None and self._last[0] == key:
            # Nothing parsed this time: counted as `validate_source` counts a
            # tree it finds whole in its cache, not as the run that parsed it.
            last = self._last[1]
            return key, dataclasses.replace(last, parsed=0, cached=last.files)
        # A file's parsed documents serve only to build its models and facts:
        # not kept once both are (89 MB at 100,000 users, #16). Nothing else
        # reads them; the full validation reads each file's text.
        known = {k for k in self._built if k in self._facts}
        changed = [f for f in source.files if (f.path, f.blob_id) not in known]
        loaded = load_files(dataclasses.replace(source, files=changed), self.state_dir / "cache")
        docs = {lf.blob_id: lf.docs for lf in loaded.files}
        files = [
            LoadedFile(f.path, f.blob_id, f.data, docs.get(f.blob_id, []))
            for f in source.files
            if f.blob_id in docs or (f.path, f.blob_id) in known
        ]
        # Models carry their file's path in their pointers: keyed by path and blob.
        built = {}
        for f in files:
            k = (f.path, f.blob_id)
            built[k] = self._built.get(k) or build_file(f)
        self._built = built
        validated = self._valid_by_facts(source, files, loaded) or validate_built(
            source, files, list(built.values()), loaded.diagnostics, loaded.parsed
        )
        if validated.ok:
            self._last = (key, validated)
        return key, validated

    def _valid_by_facts(
        self, source: ConfigSource, files: list[LoadedFile], loaded: Loaded
    ) -> Validated | None:
        """The config valid with no finding, known from each file's facts
        (`validate.by_file`) without the rules across 100,000 users; None when
        the facts cannot tell, and the full validation answers."""
        # Loaded on first use: the rules they import would slow the watcher's start.
        from provgit.validate.by_file import facts_of, facts_say_valid
        from provgit.validate.fact_index import FactIndex

        facts = {}
        for f in files:
            k = (f.path, f.blob_id)
            facts[k] = self._facts.get(k) or facts_of(f, self._built[k])
        self._facts = facts
        index = self._index = self._index or FactIndex()
        index.track(facts)
        built = list(self._built.values())
        if loaded.diagnostics or not facts_say_valid(
            source, files, built, list(facts.values()), index.unique()
        ):
            return None
        # Every key is unique and no file has a finding (just shown): the
        # network is each file's keyed models merged, no key checked again.
        by_file = {k: self._keyed.get(k) or keyed(b) for k, b in self._built.items()}
        self._keyed = by_file
        with gc_frozen():
            state = assemble_unique(
                files, built, list(by_file.values()), commit=source.commit, root=source.root
            )
        n = len(source.files)
        return Validated(state, [], n, loaded.parsed, n - loaded.parsed)

    def desired(self, key: str, source: ConfigSource, validated: Validated) -> Desired:
        state = validated.state
        files = {path: b for (path, _), b in self._built.items()}
        prev = self._projected
        if prev is not None and prev.key == key and _same_reads(prev.reads, source):
            return Desired(key, source, validated, prev.target)
        recorded, reads = recording_reads(source)
        found = None
        if prev is not None:
            changed = _changed_resources(prev.files, files)
            if changed is not None:
                # Moved to the new state before the reach is read off it (and
                # rebuilt below when the change cannot be bounded).
                prev.index.update(prev.state, state, changed)
                # In place: the watcher only ever applies the newest valid config.
                found = reproject(
                    prev.target,
                    prev.state,
                    state,
                    changed,
                    fingerprinter(state, self.state_dir),
                    recorded.read_other,
                    in_place=True,
                    index=prev.index,
                )
        if found is not None and prev is not None:
            target, moved = found
            self._session.projected(target, moved)
            reads = {**prev.reads, **reads}
            index = prev.index
        else:
            target = desired_target(state, recorded.read_other, self.state_dir)
            self._session.projected(target, None)
            index = DependencyIndex.of(state)
        self._projected = _Projected(key, target, state, files, reads, index)
        return Desired(key, source, validated, target)

    def last_plans(self, desired: Desired) -> StatusPlans | None:
        """The serial of `desired`'s projection, each element's last plan
        against it, and the records the last reprojection moved (what status
        derives from, `report.derive`)."""
        return self._session.last_plans(desired.target)

    def plan(
        self,
        desired: Desired,
        observed: dict[str, Observation],
        settings: Settings,
        options: PlanOptions,
        commit: str | None,
        source: str,
    ) -> Plan:
        """`compute_plan`, re-planning per element only what moved since its last plan."""
        types = {n: e.type for n, e in desired.state.elements.items()}
        plan = self._session.plan(
            desired.target, observed, settings, types, options, commit, source
        )
        if options.elements:
            # Cut (a replica's elements): a record moving to an element left
            # out is deleted once that element has it (make before break).
            plan = mark_cut_moves(plan, desired.target.records, types)
        return plan


def _same_reads(reads: Reads, source: ConfigSource) -> bool:
    """The prompt audio the projection read is still what it was."""
    for rel, expected in reads.items():
        data = source.read_other(rel)
        if (None if data is None else blob_id(data)) != expected:
            return False
    return True


def _changed_resources(
    before: dict[str, FileModels], after: dict[str, FileModels]
) -> dict[str, set[str]] | None:
    """kind -> keys whose record differs between the files before and after
    (added, removed or edited); None if settings changed."""
    changed: dict[str, set[str]] = {}
    for path in set(before) | set(after):
        old, new = before.get(path), after.get(path)
        if old is new:
            continue
        if path == SETTINGS_FILE:
            return None
        was, now = _by_key(old), _by_key(new)
        for kind in was.keys() | now.keys():
            a, b = was.get(kind, {}), now.get(kind, {})
            # A one-line edit of a 2,000-user file reprojects one user, not
            # 2,000: models are values (their pointers are kept apart).
            keys = a.keys() ^ b.keys()
            keys.update(k for k in a.keys() & b.keys() if a[k] != b[k])
            if keys:
                changed.setdefault(kind, set()).update(keys)
    return changed


def _by_key(models: FileModels | None) -> dict[str, dict[str, Any]]:
    if models is None:
        return {}
    return {
        kind: {KINDS[kind].key(m): m for _, m in items} for kind, items in models.models.items()
    }
