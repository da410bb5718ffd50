"""One reconcile run of the watcher: observe, plan, (hold), review drift, apply, report.

The same stages `provgit reconcile` composes, plus what a run of a process
that never exits needs: observations kept in memory between runs, removals
held in directory mode (config_tracker.py), runs that are not about a new
config telling drift from provgit's own unfinished work (drift_policy.py),
and every element write going through a gate the loop closes on SIGTERM
(shutdown.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Mapping

from provgit.api.watching import (
    ApplyOptions,
    ApplyResult,
    Desired,
    JournalError,
    Network,
    Observation,
    ObservationCache,
    Plan,
    PlanOptions,
    StageCache,
    SwapWaits,
    all_in_sync,
    apply_plan,
    break_across,
    call_load_fell,
    connect,
    deferred,
    down_elements,
    headers,
    load_sharing,
    next_release,
    observe_network,
    remember_writes,
    review_drift,
    share_desired,
    unfinished,
)
from provgit.publish import reports_dir
from provgit.render import apply_summary
from provgit.watch import reports, verify
from provgit.watch.config_tracker import ConfigTracker
from provgit.watch.drift_policy import classify, drift_items
from provgit.watch.journals import Journals
from provgit.watch.live import LiveStatus, Progress
from provgit.watch.logs import Log
from provgit.watch.options import WatchOptions
from provgit.watch.propose import Proposer
from provgit.watch.replicas import FencedDriver, Replica
from provgit.watch.shutdown import Gate, GatedDriver
from provgit.watch.timers import Timers

Only = frozenset[tuple[str, str, str]]


class Reconciler:
    def __init__(
        self,
        options: WatchOptions,
        cache: StageCache,
        config: ConfigTracker,
        live: LiveStatus,
        timers: Timers,
        journals: Journals,
        log: Log,
    ) -> None:
        self.o = options
        self.cache = cache
        self.config = config
        self.live = live
        self.timers = timers
        self.journals = journals
        self.log = log
        # git mode: embedded elements and relative report dirs live in the state dir
        self.config_root = options.state_dir if config.follower else options.config
        self.gate: Gate | None = None  # the writes of the run going on (closed to stop)
        self.proposer = Proposer(options, config, live, journals, log)
        self._first_observation = True
        # The reading of each element the cache file holds (loaded or last
        # saved): a save compares with it, not with the newer reading in
        # memory that a run without a save (a config run) may have taken.
        self._on_disk: dict[str, Observation] = {}
        self.replica: Replica | None = None  # replicas on a shared journal (replicas.py)
        # Replicas: the lease token each element held got the config applied
        # under. A new token is a new claim (taken over, or taken back after
        # a cut-off during which another replica may have applied a newer
        # commit or left work unfinished): the config is applied again.
        self._applied: dict[str, int] = {}
        # The lease tokens the running reconcile began with (None: no run);
        # this reconciler's journal writes are fenced by them.
        self.run_tokens: dict[str, int] | None = None
        # A takeover's reconciler (takeover.py): runs beside the loop's for
        # elements just taken over; the network-wide steps are the loop's.
        self.takeover = False
        # Shared with a takeover's reconciler: one plan and one report
        # written at a time (the stage cache and the report files are one).
        self.plan_lock = asyncio.Lock()
        self.report_lock = asyncio.Lock()

    # ---- held work: when it may go out ------------------------------------------

    def schedule_release(self, since: float) -> None:
        """After a run whose holds were decided at clock time `since`: wake
        at the next moment held work may go out (a deadline that passed during
        the run wakes at once), and read the call load while work is deferred."""
        desired = self.config.desired
        if desired is None:
            return
        settings = desired.state.settings
        try:
            pending = self.journals.loop.pending()
        except JournalError as e:  # the run's own error is what matters; retries still come
            self.log.warning("release_schedule_failed", error=str(e))
            return
        self.timers.release_at = next_release(settings, pending, since)
        waiting = deferred(pending)
        self.timers.load_poll_at = (
            self.o.clock.now() + settings.apply.load_poll_seconds if waiting else None
        )

    async def poll_load(self) -> None:
        """Read the call load of the elements with deferred work; a run when
        it fell for one of them, else read again after `load_poll_seconds`."""
        desired = self.config.desired
        pending = deferred(self.journals.loop.pending())
        if desired is None or not pending:
            return
        try:
            fell = await call_load_fell(desired.state, self.o.state_dir, self.config_root, pending)
        except Exception as e:  # a bad read must not stop the timers; max_wait still holds
            self.log.warning("call_load_poll_failed", error=f"{type(e).__name__}: {e}")
            fell = []
        if fell:
            self.log.info("call_load_fell", elements=fell)
            self.timers.trigger("load")
        else:
            poll = desired.state.settings.apply.load_poll_seconds
            self.timers.load_poll_at = self.o.clock.now() + poll

    def down_elements(self) -> set[str]:
        desired = self.config.desired
        if desired is None:
            return set()
        elements = desired.state.elements
        if self.replica is not None:
            # Another replica's elements are its business.
            held = set(self.replica.writable())
            elements = {n: e for n, e in elements.items() if n in held}
        return down_elements(self.journals.loop, elements)

    async def _held(self, desired: Desired, only: frozenset[str] | None) -> PlanOptions | None:
        """A replica plans and applies the elements it holds only (None: it
        holds none); `only`: a takeover's elements."""
        replica = self.replica
        if replica is None:
            return self.o.plan
        if only is None:
            settings = desired.state.settings
            if self.o.lease_seconds is None:
                replica.lease_seconds = settings.journal.lease_seconds
            wanted = self.o.plan.elements
            replica.elements = frozenset(
                n for n in desired.state.elements if not wanted or n in wanted
            )
            if not replica.writable():
                await replica.step()  # the first run: claim before planning
        # An element another run of ours writes to (a takeover's) waits for it:
        # two runs never write to one element.
        held = [
            e for e in replica.writable() if e not in replica.busy and (only is None or e in only)
        ]
        # Off the loop: it waits for a round of the renewal thread going on.
        tokens = await asyncio.to_thread(replica.begin, held) if held else {}
        if not tokens:
            return None
        self.run_tokens = tokens
        return dataclasses.replace(self.o.plan, elements=tuple(tokens))

    async def reconcile(
        self, config_run: bool, reasons: set[str], only: frozenset[str] | None = None
    ) -> tuple[ApplyResult | None, str]:
        desired = self.config.desired
        assert desired is not None
        plan_options = await self._held(desired, only)
        if plan_options is None:
            if not self.takeover:
                # The config is applied by the first run that holds an element.
                self.config.pending = config_run or self.config.pending
            return None, "no element held"
        tokens = self.run_tokens or {}
        if self.replica is not None:
            if not self.takeover:
                # Forgotten once no longer held (a takeover's elements are held).
                for e in [e for e in self._applied if e not in self.replica.busy]:
                    del self._applied[e]
            if any(self._applied.get(e) != t for e, t in tokens.items()):
                # Elements claimed since their last config run: the config is
                # applied to them, as the replica that held them would have
                # (their open intents settle first).
                config_run = True
        try:
            result, outcome = await self._reconcile(config_run, reasons, desired, plan_options)
            if config_run and result is not None and result.refusal is None:
                self._applied.update(tokens)
            return result, outcome
        finally:
            if self.replica is not None:
                self.replica.end(plan_options.elements)
                self.run_tokens = None

    async def _reconcile(
        self, config_run: bool, reasons: set[str], desired: Desired, plan_options: PlanOptions
    ) -> tuple[ApplyResult | None, str]:
        state = desired.state
        journal = self.journals.loop
        network = connect(state, self.o.state_dir, self.config_root, plan_options.elements)
        try:
            with self.live.timed("observe"):
                observed = await self._observe(
                    network, save=self._first_observation or "resync" in reasons
                )
            with self.live.timed("plan"):
                async with self.plan_lock:
                    plan = await asyncio.to_thread(
                        self.cache.plan,
                        desired,
                        observed,
                        state.settings,
                        plan_options,
                        desired.source.commit,
                        desired.source.root,
                    )
            waits: SwapWaits = {}
            if self.replica is not None:
                # A number swap through another replica's elements (#19).
                plan, waits = await break_across(
                    plan,
                    desired,
                    observed,
                    self.o.state_dir,
                    self.config_root,
                    plan_options,
                    self.log.warning,
                )
            if self.config.follower is None and self.config.hold_removals(plan, state, journal):
                self.config.pending = config_run or self.config.pending
                return None, "removal held"
            self.config.applied_settings = state.settings
            only: Only | None = None
            fresh = True
            if not config_run:
                only, fresh = await self._review_drift(plan, observed)
                if self._nothing_to_do(plan, observed, only):
                    return None, "in sync"
            with self.live.timed("apply"):
                result = await self._apply(plan, network, only, fresh, waits)
                remember_writes(self.o.state_dir, plan, result, self.cache.observations)
        finally:
            await network.close()
        if config_run and not self.takeover:
            self.config.pending = False
        outcome = "refused" if result.refusal else result.overall
        with self.live.timed("report"):
            await self._after_apply(result, config_run, desired)
        if "retry" in reasons:
            self.timers.after_retry(result.pending_updates + len(self.down_elements()))
        return result, outcome

    async def _review_drift(
        self, plan: Plan, observed: Mapping[str, Observation]
    ) -> tuple[Only | None, bool]:
        """A run not about a new config: what it finds that provgit did not
        leave unfinished is drift. Which writes go out (None: all), and
        whether the run may start new work."""
        mode = self.config.drift_mode
        classified = classify(plan, unfinished(self.journals.loop), self.down_elements())
        # Into the journal (items, events) like the drift any run finds,
        # including changes to records provgit never wrote.
        await asyncio.to_thread(
            review_drift,
            plan,
            self.journals.apply,  # off the loop, as apply uses it
            "correct" if mode == "correct" else "report",
            settle=True,
            extra=drift_items(classified),
        )
        self.live.note_drift(classified, mode)
        rejected: frozenset[tuple[str, str, str]] = frozenset()
        if mode == "propose":
            rejected = frozenset(await self.proposer.review(classified, observed))
        if classified.drift and mode != "correct":
            # A closed proposal's drift is the config's to correct, like unfinished work.
            return classified.unfinished | rejected, False
        return None, True

    async def _observe(self, network: Network, save: bool) -> dict[str, Observation]:
        previous: Mapping[str, Observation] = dict(self.cache.observations)
        desired = self.config.desired
        records = None if desired is None else desired.target.records  # shared with (#16)
        if not previous:
            previous = await asyncio.to_thread(
                load_sharing, ObservationCache(self.o.state_dir), list(network.drivers), records
            )
            self._on_disk.update(headers(previous))
        full = (
            verify.due(previous, list(network.drivers), desired.state.settings, time.time())
            if desired is not None
            else set()
        )
        observed = await observe_network(
            network, self.o.state_dir, previous=previous, save=False, full=full
        )
        verify.say_missed(
            observed,
            full,
            self.journals.loop,
            ObservationCache(self.o.state_dir),
            self.live.metrics,
            self.log,
        )
        for name, o in observed.items():
            if o.ok and not o.incremental and records is not None:
                o = observed[name] = share_desired(o, records.get(name, {}))  # a full read
            if o.ok:
                self.cache.observations[name] = o
        if save:
            # Written on the first run, on resyncs and at exit only: 300,000
            # records take ~0.1 s per element to write, which a one-user change
            # should not pay; a later start refreshes from an older file
            # through the change feed all the same.
            self._first_observation = False
            await self.save_observations(dict(self._on_disk))
        return observed

    async def save_observations(
        self, previous: Mapping[str, Observation] | None = None, only: set[str] | None = None
    ) -> None:
        current = {n: o for n, o in self.cache.observations.items() if only is None or n in only}
        if current:
            with contextlib.suppress(OSError):
                await asyncio.to_thread(
                    ObservationCache(self.o.state_dir).save_all, current, previous
                )
                self._on_disk.update(headers(current))

    def _nothing_to_do(
        self, plan: Plan, observed: Mapping[str, Observation], only: Only | None
    ) -> bool:
        """A resync that would only write 'nothing changed' again: skip the apply."""
        ops = sum(len(e.operations) for e in plan.elements)
        if only is not None and not only:
            ops = 0
        if ops or not all(o.ok for o in observed.values()):
            return False
        # A replica's journal rows may be another replica's (an element that
        # came back to us): skipping would leave them naming the old holder.
        if self.replica is not None:
            return False
        return all_in_sync(self.journals.loop, observed)

    async def _apply(
        self, plan: Plan, network: Network, only: Only | None, fresh: bool, waits: SwapWaits
    ) -> ApplyResult:
        gate = self.gate = Gate()
        replica = self.replica
        desired = self.config.desired
        assert desired is not None
        # The new homes of its moves that this run does not cover (another
        # replica's elements): read, never written, before an old home lets a
        # user go (apply/moves.py). Fenced all the same: no write passes.
        homes = sorted(
            {t for e in plan.elements for m in e.moves for t in m.to} - set(network.drivers)
        )
        read = connect(desired.state, self.o.state_dir, self.config_root, homes) if homes else None
        drivers = {
            n: GatedDriver(d if replica is None else FencedDriver(d, replica), gate)
            for n, d in {**network.drivers, **(read.drivers if read else {})}.items()
        }
        options = ApplyOptions(
            command="watch",
            check_stale=False,
            fresh=fresh,
            only=only,
            # propose holds drift as report does (the branch is proposed on resyncs).
            drift="correct" if self.config.drift_mode == "correct" else "report",
            clock=self.o.clock,
            swap_waits=waits,
        )
        try:
            return await apply_plan(
                plan,
                drivers,
                self.journals.apply,
                desired.state.settings,
                self.o.state_dir,
                options,
                Progress(self.live, self.log),
                network.unavailable,
            )
        finally:
            if read is not None:
                await read.close()

    async def _after_apply(self, result: ApplyResult, config_run: bool, desired: Desired) -> None:
        if config_run:
            self.live.note_run_drift(result)
            # The reading that found drift is the latest word for `provgit
            # status` too: saved for those elements (config runs save nothing else).
            found = {str(d["element"]) for d in result.drift}
            if found:
                await self.save_observations(dict(self._on_disk), found)
            if not self.takeover:
                await self.proposer.retry_pushes()
        # Proposed drift closes when a merged branch makes the element equal the config.
        self.proposer.refresh_metrics()
        for e in result.elements:
            if e.released:
                self.log.info("hold_released", element=e.element, why=e.released)
            self.log.info("element_status", element=e.element, status=e.status, **e.counts())
        self.log.info(
            "sync_result",
            status=result.overall,
            refusal=result.refusal,
            distribution_errors=result.distribution_errors,
            pending_updates=result.pending_updates,
            alarm=result.alarm,
            commit=desired.source.commit,
            # Which resources, not only how many: "users/jdoe on cs1, mcl; …".
            **apply_summary.fields(result),
        )
        commit = desired.source.commit
        git = self.config.follower is not None and not self.takeover
        if config_run and commit and git and result.refusal is None:
            self.config.set_applied(commit, self.journals.loop)
        async with self.report_lock:
            await self._write_reports(result, desired)
        notes = desired.state.settings.reports.git_notes
        if self.replica is not None and not self.replica.leader:
            notes = False  # one note per commit: the leader's
        if git and config_run and commit and result.refusal is None and notes:
            await self._write_note(result, desired, commit)

    async def _write_reports(self, result: ApplyResult, desired: Desired) -> None:
        try:
            warnings = await asyncio.to_thread(
                reports.write_files,
                reports_dir(desired.state, self.config_root, self.o.state_dir),
                self.journals.apply,
                result,
                desired.state,
                None if self.config.follower is not None else self.o.config,
                desired.target,
                dict(self.cache.observations),
                self.cache.last_plans(desired),
            )
        except OSError as e:
            warnings = [f"cannot write the reports: {e}"]
        for w in warnings:
            self.log.warning("report", warning=w)

    async def _write_note(self, result: ApplyResult, desired: Desired, commit: str) -> None:
        """git mode: the run's report as a git note on the commit it applied."""
        follower = self.config.follower
        assert follower is not None
        settings = desired.state.settings
        push, repo = settings.reports.push_notes and follower.remote, follower.repo
        observations, plans = dict(self.cache.observations), self.cache.last_plans(desired)

        def note() -> str | None:
            # Off the loop, like the report files: deriving the document reads
            # the journal (a table locked by another session held the fleet's
            # loop, its page and its lease renewals) and takes seconds at 100k.
            doc = reports.document(
                self.journals.apply,
                network=settings.network,
                result=result,
                state=desired.state,
                commit=commit,
                config_path=self.o.subdir,
                target=desired.target,
                observations=observations,
                plans=plans,
            )
            return reports.write_note(repo, doc, push)

        warning = await asyncio.to_thread(note)
        if warning:
            self.log.warning("git_note", warning=warning)
        else:
            self.log.info("git_note_written", commit=commit)
