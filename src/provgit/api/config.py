"""The config handle: a config (a directory, or a commit of one) and the state
directory provgit keeps beside it. Every operation of the library API starts
from one (see `provgit.api`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from provgit.api.errors import (
    InvalidConfig,
    NothingToDo,
    ProvgitError,
    UsageProblem,
)
from provgit.api.sources import default_state_dir, read_config_directory, read_settings
from provgit.diagnostics import Diagnostic
from provgit.fsutil import atomic_write_pieces
from provgit.source import ConfigSource
from provgit.validate import Validated, validate_source
from provgit.validate.cache import Verdict, VerdictStore, recording_reads

if TYPE_CHECKING:  # the models (pydantic): a status in sync builds none
    from provgit.api.distribution import Deleted, ErrorList, Reapplied
    from provgit.api.importing import ImportReport
    from provgit.api.inspect import Landings, Resources
    from provgit.api.planning import PlanRun
    from provgit.api.running import Applied
    from provgit.api.status import Hold, Status
    from provgit.apply.holds import Clock
    from provgit.apply.progress import Progress
    from provgit.journal import DistributionError
    from provgit.model.kinds import Kind
    from provgit.model.settings import Settings
    from provgit.model.state import DesiredState
    from provgit.plan import Plan, PlanOptions
    from provgit.projection import Target

# Planning, applying, importing and the error actions load the whole pipeline
# (apply engine, drivers; planning also the journal, asyncio, the projection):
# imported where used, so `validate` and `status` do not pay for them (~0.2 s).


@dataclass(frozen=True)
class SignedPlan:
    """A plan signed with the network's key, as `provgit plan --out` saves it.
    `warning`: the key is the state directory's own (no usable secret_key), so
    only this state directory can apply it."""

    pieces: Iterable[bytes]  # made as they are read: read them once
    warning: str | None = None


def _tee(pieces: Iterable[bytes], also: Callable[[bytes], object]) -> Iterator[bytes]:
    for piece in pieces:
        also(piece)
        yield piece


@dataclass(frozen=True)
class PlanNotes:
    """What an apply of a plan would do beyond its operations, one line each:
    drifted records it would hold or overwrite (read from the journal; nothing
    contacted). What a hold would keep back is in the plan itself
    (`Config.preview_holds`)."""

    drift: list[str]


@dataclass(frozen=True)
class Diff:
    """What changes on each element between two configs, contacting no element."""

    plan: Plan
    settings: Settings
    base_valid: bool  # False: the base does not validate; diffed against an empty network


class Config:
    """A config and its state directory. Nothing is read until asked for.

    `Config.open(path)` reads the directory now (and raises `ConfigNotFound`
    when it is not a config); `Config.at(path)` reads it on first use;
    `Config.open_commit(repo, rev)` reads a commit from git. The files are
    read once: a handle is a snapshot, so open a new one to see later edits.
    `state_dir` defaults to $PROVGIT_STATE_DIR, else ROOT/.provgit.
    """

    def __init__(self, root: Path, state_dir: Path, source: ConfigSource | None = None) -> None:
        self.root = root
        self.state_dir = state_dir
        self._source = source
        self._validated: Validated | None = None

    @classmethod
    def at(cls, path: Path | str, state_dir: Path | str | None = None) -> Config:
        root = Path(path)
        return cls(root, default_state_dir(root, state_dir))

    @classmethod
    def open(cls, path: Path | str, state_dir: Path | str | None = None) -> Config:
        config = cls.at(path, state_dir)
        config.source  # noqa: B018 (read now: a wrong path is said here)
        return config

    @classmethod
    def open_commit(cls, repo: Path | str, rev: str, state_dir: Path | str | None = None) -> Config:
        from provgit.source.git import GitSourceError, read_commit

        root = Path(repo)
        try:
            source = read_commit(root, rev)
        except GitSourceError as e:
            raise UsageProblem(str(e)) from None
        return cls(root, default_state_dir(root, state_dir), source)

    @property
    def cache_dir(self) -> Path:
        return self.state_dir / "cache"

    @property
    def source(self) -> ConfigSource:
        """The config files (read once, on first use)."""
        if self._source is None:
            self._source = read_config_directory(self.root)
        return self._source

    def settings(self) -> Settings | None:
        """provgit.yaml alone (None: missing or invalid), without validating the rest."""
        return read_settings(self.root)

    # -- validate ---------------------------------------------------------

    def validate(self, use_cache: bool = True, secrets: bool = False) -> Verdict:
        """Every problem of the config (`Verdict.ok`: none is an error).

        With `use_cache`, a config unchanged since the last validation is
        answered from the stored verdict. With `secrets`, a secret reference
        that does not resolve here is a problem too (its value is never read out).
        """
        source = self.source
        cache = self.cache_dir if use_cache else None
        store = None if cache is None else VerdictStore(cache)
        # Secrets depend on the environment, not the files: never a stored verdict.
        result = None if store is None or secrets else store.get(source)
        if result is not None:
            return result
        traced, reads = recording_reads(source)
        if cache is not None and not secrets:
            from provgit.validate.by_file import validate_by_file

            # Each file's facts kept: after an edit only the edited files are checked again.
            result = validate_by_file(traced, cache)
            assert store is not None
            store.put(source, result, reads)
            return result
        full = validate_source(traced, cache)
        result = Verdict(
            full.diagnostics, full.state.counts(), full.files, full.parsed, full.cached
        )
        if store is not None:
            store.put(source, result, reads)
        if secrets and full.ok:
            from provgit.secret_refs import reference_diagnostics

            found = reference_diagnostics(full.state)
            result = dataclasses.replace(
                result, diagnostics=sorted(result.diagnostics + found, key=Diagnostic.sort_key)
            )
        return result

    def validated(self) -> Validated:
        """The config validated, with its desired state (check `.ok`)."""
        if self._validated is None:
            self._validated = validate_source(self.source, self.cache_dir)
        return self._validated

    def state(self) -> DesiredState:
        """The desired state; `InvalidConfig` when the config does not validate."""
        valid = self.validated()
        if not valid.ok:
            raise InvalidConfig(self.source.root, valid.diagnostics)
        return valid.state

    def target(self, resolve_secrets: bool = True) -> Target:
        """What every element should hold (secrets fingerprinted, never shown)."""
        from provgit.api.network import desired_target

        return desired_target(self.state(), self.source.read_other, self.state_dir, resolve_secrets)

    # -- plan -------------------------------------------------------------

    async def plan(self, options: PlanOptions | None = None, full_read: bool = False) -> PlanRun:
        """What would change on every element (nothing is changed).

        Taken from the last plan and each element's change feed when nothing
        else it depends on changed; after a config change, only what the change
        reaches is projected and planned again (`planning_shared`); else in full,
        as when an element is due a full read (`observe.full_read_hours`; all:
        `full_read`). Held to the last applied safety where stricter (`held_safety`).
        Raises `InvalidConfig`, `UsageProblem` (an element the config does not name)."""
        from provgit.api.network import values_digested_once
        from provgit.api.planning import held_safety, plan_from_memo
        from provgit.plan import PlanOptions

        with values_digested_once():  # the memo's digest is taken twice, its values once
            options = options or PlanOptions()
            source = self.source
            # Planned in full: a claim (the memo would not see unowned records that
            # did not change), a plan cut to some elements (its moves need the whole target).
            remembered = (
                None
                if options.claim or options.elements
                else await plan_from_memo(source, self.root, self.state_dir, options, full_read)
            )
            if remembered is not None:
                return held_safety(remembered, self.state_dir)
            from provgit.api.planning_shared import plan_changed

            def validated() -> DesiredState:
                state = self.state()
                unknown = [e for e in options.elements if e not in state.elements]
                if unknown:
                    known = ", ".join(state.elements)
                    raise UsageProblem(f"unknown element(s): {', '.join(unknown)} (known: {known})")
                return state

            root, state_dir = self.root, self.state_dir
            run = await plan_changed(source, root, state_dir, options, validated, full_read)
            return held_safety(run, state_dir)

    def sign(self, run: PlanRun) -> SignedPlan:
        """`run.plan` signed, so an apply can tell it is what was planned (the
        state directory's key is made when the config has no usable secret_key)."""
        from provgit.plan import signing

        key = signing.plan_key(run.settings.secret_key, self.state_dir)
        assert not isinstance(key, str)  # made when missing
        warning = None
        if key.fallback:
            warning = (
                f"warning: {key.fallback}: the plan is signed with the state directory's key "
                f"({key.where}); only this state directory can apply it"
            )
        return SignedPlan(signing.signed_bytes(run.plan, key), warning)

    def save_plan(
        self, signed: SignedPlan, out: Path, also: Callable[[bytes], object] | None = None
    ) -> None:
        """Write a signed plan to `out` (atomically; the directory must exist),
        each piece as it is made; `also` gets the same pieces (stdout)."""
        pieces = signed.pieces
        if also is not None:
            pieces = _tee(pieces, also)
        try:
            atomic_write_pieces(out, pieces)
        except OSError as e:
            raise ProvgitError(f"cannot save the plan to {out}: {e.strerror or e}") from e

    def plan_notes(self, run: PlanRun, drift: bool = True) -> PlanNotes:
        """What applying `run` would hold or overwrite (`drift`: False leaves the
        drifted records out, unread)."""
        from provgit.apply import drift_detect

        return PlanNotes(
            drift_detect.preview_lines(run.plan, self.state_dir, run.settings) if drift else []
        )

    async def preview_holds(self, run: PlanRun, clock: Clock | None = None) -> PlanRun:
        """`run` with the operations a suspension, a sync window or the call
        load would hold if applied now marked in its plan (`would_wait`; the
        call load read from the elements it matters on). Informational: apply
        decides again. `clock`: "now" (the system's by default)."""
        from provgit.api.network import connect
        from provgit.apply import hold_preview
        from provgit.apply.holds import SYSTEM_CLOCK

        settings = run.settings
        suspensions, pending = hold_preview.journal_holds(self.state_dir)
        names = hold_preview.load_elements(run.plan, settings)
        network = connect(run.state, self.state_dir, self.root, names) if names else None
        try:
            plan = await hold_preview.with_would_wait(
                run.plan,
                settings,
                suspensions,
                pending,
                network.drivers if network else {},
                (clock or SYSTEM_CLOCK).now(),
            )
        finally:
            if network is not None:
                await network.close()
        return dataclasses.replace(run, plan=plan)

    def diff_against(self, base: Config, label: str) -> Diff:
        """What changes on each element from `base` to this config (no element
        contacted; a base that does not validate stands for an empty network)."""
        from provgit.api.planning import diff_states

        head_state = self.state()
        base_valid = base.validated()
        plan = diff_states(
            head_state,
            self.source,
            base_valid.state if base_valid.ok else None,
            base.source,
            label,
        )
        return Diff(plan, head_state.settings, base_valid.ok)

    # -- look, contacting nothing ------------------------------------------

    def resources(self, kind: Kind | None = None) -> Resources:
        """Every resource of the config (of `kind` only), with the elements each lands on."""
        from provgit.api import inspect

        return inspect.resources(self, kind)

    def landings(self, kind: Kind, key: str) -> Landings:
        """Where the resource `kind`/`key` lands (the key matched regardless of case)."""
        from provgit.api import inspect

        return inspect.landings_of(self, kind, key)

    # -- apply ------------------------------------------------------------

    async def apply(
        self,
        run: PlanRun,
        *,
        partial: bool = False,
        overwrite_drift: bool = False,
        override_window: str | None = None,
        progress: Progress | None = None,
    ) -> Applied:
        """Apply `run.plan` (from `plan()`, or a saved plan from `open_saved_plan`)
        and write the status reports.

        An element whose revision moved since the plan observed it is refused
        ("changed by another user"), and with it the whole apply unless `partial`.
        Drift (and what the plan's full reads found feeds missed) is held in drift
        mode report unless `overwrite_drift`; `override_window` (the reason,
        journaled) writes through closed sync windows and call-load deferrals.
        `Interrupted` when SIGTERM stops it."""
        from provgit.api.running import apply_and_report
        from provgit.apply import ApplyOptions
        from provgit.apply.progress import NoProgress

        options = ApplyOptions(
            command="apply",
            check_stale=True,
            partial=partial,
            fresh=run.fresh,
            overwrite_drift=overwrite_drift,
            override_window=override_window,
            feed_missed=run.feed_missed,
        )
        return await apply_and_report(
            run.plan, run.state, self.root, self.state_dir, options, progress or NoProgress()
        )

    async def reconcile(
        self,
        options: PlanOptions | None = None,
        *,
        partial: bool = False,
        overwrite_drift: bool = False,
        override_window: str | None = None,
        progress: Progress | None = None,
        full_read: bool = False,
    ) -> Applied:
        """Plan and apply in one run, write the status reports. `override_window` (the reason,
        journaled) writes through sync windows and call-load deferrals; `full_read`: as `plan`'s."""
        from provgit.api.planning import memo_written_behind
        from provgit.api.running import apply_and_report
        from provgit.apply import ApplyOptions
        from provgit.apply.progress import NoProgress

        with memo_written_behind():  # a full plan's memo: written during the apply
            run = await self.plan(options, full_read)
            # Observed in this run, writes conditional per record: no staleness check.
            apply_options = ApplyOptions(
                command="reconcile",
                check_stale=False,
                partial=partial,
                fresh=True,
                overwrite_drift=overwrite_drift,
                override_window=override_window,
                feed_missed=run.feed_missed,
            )
            handed, state = [run.plan], run.state
            del run  # the plan goes with `handed`: let go before the report
            return await apply_and_report(
                handed, state, self.root, self.state_dir, apply_options, progress or NoProgress()
            )

    # -- status and holds ---------------------------------------------------

    def status(self, element: str | None = None, kind: str | None = None) -> Status:
        """The sync status, derived from the journal and the last observations
        (no element contacted). `JournalUnavailable` before the first run."""
        from provgit.api.status import status as status_of

        return status_of(self, element, kind)

    def suspend(self, reason: str, element: str | None = None, by: str | None = None) -> Hold:
        """Hold writes to the network (or `element`) until `resume`; runs still
        observe and plan, and the writes wait as pending updates."""
        from provgit.api.status import suspend as suspend_writes

        return suspend_writes(self, reason, element, by)

    def resume(self, element: str | None = None, by: str | None = None) -> Hold:
        """Lift a suspension (`Hold.suspension` None: there was none)."""
        from provgit.api.status import resume as resume_writes

        return resume_writes(self, element, by)

    # -- distribution errors ------------------------------------------------

    def distribution_errors(
        self,
        element: str | None = None,
        form: str | None = None,
        error_type: str | None = None,
    ) -> ErrorList:
        from provgit.api import distribution

        return distribution.list_errors(self, element, form, error_type)

    def select_errors(self, ids: Sequence[int] = (), all_: bool = False) -> list[DistributionError]:
        """The distribution errors `ids` name, or every one (`all_`)."""
        from provgit.api import distribution

        return distribution.select(self, ids, all_)

    async def retry(
        self, chosen: Sequence[DistributionError], progress: Progress | None = None
    ) -> Reapplied:
        """Plan those records again from the config and the elements as they are
        now, and apply just them. Conflicts (another user's change) are left
        out (`Reapplied.skipped` says so; `NothingToDo` when nothing is left)."""
        from provgit.api import distribution

        retried, skipped = distribution.retry_choice(chosen)
        return await distribution.reapply(self, retried, "errors retry", progress, skipped)

    async def force(
        self, chosen: Sequence[DistributionError], progress: Progress | None = None
    ) -> Reapplied:
        """Overwrite conflicts with the config's value (the other user's change
        is lost). `NothingToDo` with nothing done when any chosen one is not a conflict."""
        from provgit.api import distribution

        refusals = distribution.force_refusals(chosen)
        if refusals:
            raise NothingToDo("Nothing was forced.", refusals)
        return await distribution.reapply(self, list(chosen), "errors force", progress)

    def delete_errors(self, chosen: Sequence[DistributionError]) -> Deleted:
        """Delete them; the next reconcile tries the records again."""
        from provgit.api import distribution

        return distribution.delete(self, chosen)

    # -- import -------------------------------------------------------------

    async def import_network(
        self,
        elements: Sequence[str] = (),
        *,
        dry_run: bool = False,
        prefer_element: bool = False,
        report_dir: Path | None = None,
    ) -> ImportReport:
        """Read the elements and write what they hold into this config as YAML
        (nothing written with `dry_run`); the report is saved in `report_dir`
        (default STATE_DIR/import)."""
        from provgit.api.importing import import_network

        return await import_network(self, tuple(elements), dry_run, prefer_element, report_dir)

    async def capture_drift(
        self,
        elements: Sequence[str] = (),
        *,
        dry_run: bool = False,
        report_dir: Path | None = None,
        branch: str | None = None,
    ) -> ImportReport:
        """Out-of-band changes on the elements as a commit on a new git branch
        (`ImportReport.branch`); the working tree and current branch stay as they are."""
        from provgit.api.importing import capture_drift

        return await capture_drift(self, tuple(elements), dry_run, report_dir, branch)
