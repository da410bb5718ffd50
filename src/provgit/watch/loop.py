"""The watch loop: one reconcile at a time, composed from the pipeline's stages.

A run goes: (fetch) -> source -> validate -> target -> observe -> plan ->
apply -> report, the same stages `provgit reconcile` composes; the loop adds
only what a process that never exits needs:

- single flight: triggers (file changes, fetch timer, webhook, resync timer,
  pending retries, SIGHUP) only add a reason to a set; one run at a time
  takes every reason gathered so far, so anything arriving during a run
  collapses into one follow-up run;
- a config that fails validation is never applied: the last good one stays
  applied and keeps being used for resyncs and retries, and the refusal is
  an event (`refused`, naming file and line) and part of the status;
- in git mode each new commit of the ref is applied once: the last applied
  commit is kept in the journal (`meta`), so a restart does not apply it
  again, and a commit whose run was interrupted is applied again;
- runs that are not about a new config (resync, retry) tell drift from
  provgit's own unfinished work and report or correct it (`drift_policy.py`);
- SIGTERM/SIGINT let the element writes on the wire finish and be journaled,
  send nothing more, and exit 0; SIGHUP drops every cache and re-reads the
  config from scratch.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from pathlib import Path
from typing import Any

from provgit.api.watching import (
    NETWORK,
    SYNC_COMPLETED,
    Desired,
    Journal,
    JournalError,
    StageCache,
    database_errors,
    held,
    journal_location,
    settle_dead_runs,
)
from provgit.publish import reports_dir
from provgit.watch import reports
from provgit.watch.config_tracker import LOOK_ONLY, ConfigTracker
from provgit.watch.follower import FollowError, GitFollower
from provgit.watch.journals import Journals
from provgit.watch.live import LiveStatus
from provgit.watch.logs import Log
from provgit.watch.loop_lag import LoopLag
from provgit.watch.metrics import Metrics
from provgit.watch.options import MAX_PROBLEMS, DriftMode, WatchOptions
from provgit.watch.refs import follow_refs
from provgit.watch.replicas import DEFAULT_LEASE_SECONDS, Replica, replica_json
from provgit.watch.retry_clock import RetryClock
from provgit.watch.run import Reconciler
from provgit.watch.server import start as start_server
from provgit.watch.shutdown import mark_interrupted
from provgit.watch.takeover import Takeovers
from provgit.watch.timers import Timers
from provgit.watch.triggers import watch_directory

# Kept importable from here (the CLI and tests import them from loop).
__all__ = ["LOOK_ONLY", "MAX_PROBLEMS", "WatchOptions", "Watcher"]

# A stop gives the engine this long to journal the answers that arrived, then cancels the run.
JOURNAL_GRACE_SECONDS = 0.2


class Watcher:
    """Composes the watcher's parts: the config tracker (which config is
    wanted), the live status (what is shown), the timers, and one run at a
    time (run.Reconciler); serves them as the status server's provider."""

    def __init__(self, options: WatchOptions, log: Log) -> None:
        self.o = options
        self.log = log
        self.retry_clock = RetryClock(log)  # rows stamped by a clock ahead (#19)
        self.lag = LoopLag()  # how late the event loop is (loop_lag.py)
        self.metrics = Metrics(self.lag.worst)
        self.cache = StageCache(options.state_dir)
        self.follower = (
            GitFollower(options.repo, options.ref, options.subdir, options.state_dir)
            if options.repo
            else None
        )
        self.journals = Journals(options.state_dir)
        # A PostgreSQL journal may be shared by replicas: elements are applied
        # by whichever replica holds their lease (replicas.py).
        location = journal_location()
        self.replica = (
            None
            if location is None
            else Replica(
                location.url,
                location.password,
                options.lease_seconds or DEFAULT_LEASE_SECONDS,
                log,
                self.trigger,
                schema=location.schema,
                replica_id=options.replica_id,
                # A fleet's network watchers share their process's fleet
                # leases instead (one keeper per network would be too many).
                keeper=location.schema is None,
            )
        )
        self._replica_stop = asyncio.Event()
        self.requests: set[str] = set()
        self.wake = asyncio.Event()
        self.stop_event = asyncio.Event()
        self.stopping = False
        self.task: asyncio.Task[None] | None = None
        self.timers = Timers(options, self.trigger, self.stop_event, log)
        self.live = LiveStatus(
            options,
            self.follower.display if self.follower else None,
            self.cache,
            self.metrics,
            log,
        )
        self.config = ConfigTracker(
            options, self.follower, self.cache, self.live, self.timers, log, self.metrics
        )
        self.reconciler = Reconciler(
            options, self.cache, self.config, self.live, self.timers, self.journals, log
        )
        self.timers.poll_load = self.reconciler.poll_load
        self.metrics.statuses_source = self.live.element_rows
        self.reconciler.replica = self.config.replica = self.live.replica = self.replica
        self.takeovers: Takeovers | None = None
        if self.replica is not None:
            self.metrics.replica_source = self.replica.snapshot
            fences = self.replica.fences(lambda: self.reconciler.run_tokens)
            self.journals.fences = (fences, self.replica.lease_seconds / 2)
            # Elements claimed during a run are not left waiting for it (takeover.py).
            self.takeovers = Takeovers(
                self.reconciler, self.replica, lambda: self.task is not None, self.trigger
            )

    @property
    def journal(self) -> Journal:
        """The loop's journal connection (open while `run` runs)."""
        return self.journals.loop

    @property
    def desired(self) -> Desired | None:
        return self.config.desired

    @property
    def drift_mode(self) -> DriftMode:
        return self.config.drift_mode

    # ---- the provider the status server reads ---------------------------------

    def touch(self) -> None:
        self.live.touch()

    def trigger(self, reason: str) -> None:
        self.requests.add(reason)
        self.wake.set()
        if reason == "lease" and self.task is not None and self.takeovers is not None:
            self.takeovers.poke()

    def suspend(self, element: str | None, reason: str, who: str) -> dict[str, Any]:
        """POST /suspend: writes wait from the next run on (kept in the journal).
        LookupError for an element the config lacks (`unknown_element`)."""
        if (unknown := self.config.unknown_element(element)) is not None:
            raise LookupError(f"{unknown}: nothing suspended")
        s = self.journal.suspend(element or NETWORK, reason, who, time.time())
        self.metrics.suspensions(self.journal.suspensions())
        self.log.info("suspended", element=element, reason=reason, who=who)
        self.touch()
        return s.to_json()

    def resume(self, element: str | None, who: str) -> dict[str, Any] | None:
        """POST /resume: the held work goes out on a run started now."""
        s = self.journal.resume(element or NETWORK, who)
        if s is None:
            return None
        self.metrics.suspensions(self.journal.suspensions())
        self.log.info("resumed", element=element, who=who)
        self.touch()
        self.trigger("resume")
        return s.to_json()

    def health(self) -> tuple[bool, dict[str, Any]]:
        detail: dict[str, Any] = {
            "running": self.live.running is not None,
            "applied_commit": self.config.applied_commit,
            "has_valid_config": self.config.desired is not None,
            "loop_lag_seconds": round(self.lag.worst(), 3),
        }
        ok = self.live.alive
        if self.replica is not None:
            # Cut off from the journal: not fit to write (it stopped), say so.
            detail["replica"] = replica_json(self.replica.snapshot())
            ok = ok and self.replica.healthy
        return ok, detail

    def page(self, doc: dict[str, Any]) -> str:
        return reports.render_html(doc)

    def feed(self, doc: dict[str, Any], page: str, self_href: str) -> str | None:
        return reports.render_atom(doc, page=page, self_href=self_href)

    def status_document(self) -> dict[str, Any]:
        """The live document (called off the event loop, see live.py)."""
        return self.live.document(
            self.config.desired, self.config.applied_commit, self.config.drift_mode
        )

    # ---- lifetime ---------------------------------------------------------------

    async def run(self, ready: Any) -> None:
        """Serve and reconcile until SIGTERM/SIGINT; `ready(url)` once listening."""
        self.o.state_dir.mkdir(parents=True, exist_ok=True)
        git_dirs: list[Path] = []
        # Off the loop: opening (and migrating) a PostgreSQL journal takes a while.
        await asyncio.to_thread(self.journals.open)  # in this task's context: the network's
        mark_interrupted(self.journal, self.log)  # a run of ours that died without finishing
        # Runs of other processes that died (SIGKILL, power loss): marked now, not
        # at the first apply, which may be long coming (a removal held, a no-op resync).
        settle_dead_runs(self.journal, os.uname().nodename, 0)
        if self.follower is not None:
            await asyncio.to_thread(self.follower.prepare)
            await asyncio.to_thread(self.follower.check_ref)
            git_dirs = await asyncio.to_thread(self.follower.git_dirs)
            self.config.load_applied(self.journal)
        self._seed_metrics()
        runner, url = None, self.o.fleet_url
        if not self.o.in_fleet:
            o = self.o
            runner, url = await start_server(
                self, o.host, o.port, o.token, o.webhook_secret, allowed=o.allowed_hosts
            )
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self._on_stop, sig)
            loop.add_signal_handler(signal.SIGHUP, self._on_reload)
        self.log.info(
            "watch_started",
            url=url,
            source=self.follower.display if self.follower else str(self.o.config),
            state_dir=str(self.o.state_dir),
            drift=self.drift_mode,
            resync_seconds=self.o.resync_seconds,
            pid=os.getpid(),
        )
        ready(url)
        replica_task = None
        lag_task = asyncio.create_task(self.lag.run(), name="loop-lag")
        if self.replica is not None:
            self.replica.url = url
            replica_task = asyncio.create_task(
                self.replica.run(self._replica_stop, self.lag), name="replica-leases"
            )
        background = [
            asyncio.create_task(
                self.timers.pending(lambda: self.live.running is not None, self._retry_due),
                name="retry-timer",
            ),
            *self.timers.start(git=self.follower is not None),
        ]
        if self.follower is None:
            background.append(
                asyncio.create_task(self._watch_files([self.o.state_dir]), name="watchfiles")
            )
        elif git_dirs and self.o.ref_check_seconds > 0:
            background.append(asyncio.create_task(self._watch_refs(git_dirs), name="refs"))
        self.trigger("start")
        try:
            await self._single_flight()
        finally:
            self.live.alive = False
            self.stop_event.set()
            for t in background:
                t.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            self.timers.cancel_confirm()
            if self.takeovers is not None:
                await self.takeovers.close()
            if self.replica is not None and replica_task is not None:
                # The run is over (its writes drained): hand the leases over now.
                self._replica_stop.set()
                await asyncio.gather(replica_task, return_exceptions=True)
                await self.replica.stop()
            lag_task.cancel()
            await self.reconciler.save_observations()
            if runner is not None:
                await runner.cleanup()
            self.journals.close()
            self.live.close()
            self.log.info("watch_stopped")

    async def _watch_files(self, ignore: list[Path]) -> None:
        extra = []
        if self.desired is not None:
            # A directory leading outside through a link is refused at write time.
            with contextlib.suppress(OSError):
                extra.append(reports_dir(self.desired.state, self.o.config, self.o.state_dir))
        try:
            await watch_directory(
                self.o.config,
                self.trigger,
                self.stop_event,
                ignore=[*ignore, *extra, self.o.config / ".provgit"],
                step_ms=self.o.step_ms,
                debounce_ms=self.o.debounce_ms,
                on_change=lambda n: self.log.debug("files_changed", count=n),
            )
        except Exception as e:  # the watcher keeps serving and resyncing
            self.log.error("file_watch_failed", error=f"{type(e).__name__}: {e}")

    async def _watch_refs(self, git_dirs: list[Path]) -> None:
        """A local repository: a new commit of the ref asks for a run (refs.py)."""
        follower = self.follower
        assert follower is not None

        def read_ref() -> str | None:
            try:
                return follower.head()
            except FollowError:
                return None  # a deleted branch: the fetch tick and the runs say so

        try:
            await follow_refs(
                git_dirs,
                read_ref,
                self.trigger,
                self.stop_event,
                last=await asyncio.to_thread(read_ref),
                check_seconds=self.o.ref_check_seconds,
                on_error=lambda e: self.log.warning("ref_read_failed", error=str(e)),
            )
        except Exception as e:  # the watcher keeps serving; the fetch tick still runs
            self.log.error("ref_watch_failed", error=f"{type(e).__name__}: {e}")

    async def _single_flight(self) -> None:
        while not self.stopping:
            await self.timers.idle_until(self.wake)
            self.wake.clear()
            if self.stopping:
                break
            reasons, self.requests = self.requests, set()
            if not reasons:
                continue
            self.task = asyncio.create_task(self._cycle(reasons))
            try:
                await self.task
            except asyncio.CancelledError:
                if not self.stopping:
                    raise
                with contextlib.suppress(*database_errors()):
                    mark_interrupted(self.journal, self.log)
                break
            except database_errors() as e:
                # The journal went away mid-run (a replica cut off): not a bug;
                # the run's open intents are settled by whoever applies next.
                self.log.warning("run_failed", error=f"journal unreachable: {type(e).__name__}")
            except Exception as e:  # a bug in one run must not end the reconciler
                self.log.error("run_crashed", error=f"{type(e).__name__}: {e}")
            finally:
                self.task = None
                self.reconciler.gate = None
            self.timers.after_run()

    def stop(self) -> None:
        """Stop as SIGTERM does (for a watcher run in-process)."""
        self._on_stop(signal.SIGTERM)

    def _on_stop(self, sig: int) -> None:
        name = signal.Signals(sig).name
        if self.stopping:
            self.log.warning("stop_forced", signal=name)
            if self.task is not None:
                self.task.cancel()
            if self.takeovers is not None and self.takeovers.task is not None:
                self.takeovers.task.cancel()
            return
        self.log.info("stopping", signal=name, running=self.live.running is not None)
        self.stopping = True
        self.stop_event.set()
        self.wake.set()
        if self.takeovers is not None:
            self.takeovers.close_gate()
        if self.task is not None:
            asyncio.get_running_loop().create_task(self._drain_and_cancel())

    async def _drain_and_cancel(self) -> None:
        """Let writes on the wire finish (and be journaled), send no more, then stop."""
        gate, task = self.reconciler.gate, self.task
        if gate is not None:
            gate.close()
            try:
                runs = [gate.drained()] + ([self.takeovers.drained()] if self.takeovers else [])
                await asyncio.wait_for(asyncio.gather(*runs), self.o.stop_timeout)
            except TimeoutError:
                self.log.warning("stop_timeout", in_flight=gate.in_flight)
            # The engine journals an answer right after it arrives; give it that moment.
            await asyncio.sleep(JOURNAL_GRACE_SECONDS)
        if task is not None and not task.done():
            task.cancel()

    def reload(self) -> None:
        """SIGHUP's work (for a watcher run in-process)."""
        self._on_reload()

    def _on_reload(self) -> None:
        self.log.info("reloading")
        self.config.reload()
        self.trigger("reload")

    def _seed_metrics(self) -> None:
        j = self.journal
        self.metrics.counts(j.pending_count(), j.distribution_error_count(), j.alarm_level())
        self.metrics.suspensions(j.suspensions())
        self.reconciler.proposer.refresh_metrics()
        statuses = j.element_statuses()
        self.metrics.holds_from(statuses)  # what is held is known before any run
        for name, row in statuses.items():
            if row["status"] == SYNC_COMPLETED:
                with contextlib.suppress(ValueError):
                    self.metrics.element_synced(
                        name,
                        time.mktime(time.strptime(row["time"], "%Y-%m-%dT%H:%M:%SZ"))
                        - time.timezone,
                    )

    def _retry_due(self, now: float) -> bool:
        """A pending update's next retry time has come, or an element is down."""
        if self.replica is not None and not self.replica.healthy:
            return False  # cut off (said elsewhere): a read would block the loop
        try:
            # Held work waits for its hold's wake (timers.py), not for retries.
            rows = [p for p in self.journal.pending() if not held(p)]
            mine = None if self.replica is None else self.replica.writable()
            d = self.desired
            most = d.state.settings.apply.retry_max_seconds if d is not None else 30.0
            due = self.retry_clock.due(rows, now, most, mine)
            return due or bool(self.reconciler.down_elements())
        except database_errors():
            return False

    # ---- one run --------------------------------------------------------------

    async def _cycle(self, reasons: set[str]) -> None:
        if self.replica is not None and not self.replica.healthy:
            # Cut off: no journal read (a pool wait stalls the loop and the page).
            self.requests |= reasons - LOOK_ONLY  # for the next run
            return
        looked: bool | None = None
        if self.config.only_looks(reasons):
            # Only "did the ref move?": when it did not, no run, no log line
            # (the resync, retry and release timers look for the rest; held
            # work waits for its wake), and the wake times are left as they are.
            looked = await self.config.refresh(reasons, self.journal)
            if not looked:
                self.metrics.looked(reasons)
                self.timers.looked_only = True  # after_run: no run to collect after
                return
        started = time.monotonic()
        # Holds in this run are decided at or after this instant of the clock.
        since = self.o.clock.now()
        reason = ",".join(sorted(reasons))
        self.live.begin_run(reason)
        outcome = "error"
        result = None
        try:
            if looked is None:
                looked = await self.config.refresh(reasons, self.journal)
            config_run = looked or self.config.pending
            if self.config.desired is None:
                outcome = "no valid config"
                return
            if self.config.read_refused and reasons <= {"change", "confirm"}:
                # Only a change asked, and it does not validate (a half-written
                # file, say): no run; the last good config stays applied.
                outcome = "config refused"
                return
            result, outcome = await self.reconciler.reconcile(config_run, reasons)
        finally:
            self.reconciler.schedule_release(since)
            with contextlib.suppress(JournalError, *database_errors()):
                # Released or newly held: the gauge follows the journal.
                self.metrics.holds_from(self.journal.element_statuses())
            desired = self.config.desired
            self.live.end_run(
                reason,
                outcome,
                time.monotonic() - started,
                result,
                desired.source.commit if desired else None,
            )
