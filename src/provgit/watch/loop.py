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
  provgit's own unfinished work and report or correct it (`drift.py`);
- SIGTERM/SIGINT let the element writes on the wire finish and be journaled,
  send nothing more, and exit 0; SIGHUP drops every cache and re-reads the
  config from scratch.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from provgit.apply import ApplyOptions, ApplyResult, apply_plan, holds, standing
from provgit.apply import drift as drift_items
from provgit.apply import status as st
from provgit.compose import Network, connect, observe_network, remember_writes
from provgit.journal import NETWORK, DriftItem, Journal
from provgit.model.settings import Settings
from provgit.model.state import DesiredState
from provgit.observe import Observation, ObservationCache
from provgit.plan import Plan, PlanOptions
from provgit.render import apply_summary
from provgit.report import reports_dir
from provgit.source import ConfigSource
from provgit.validate import Validated
from provgit.watch import reports
from provgit.watch.drift import Classified, classify, describe
from provgit.watch.follower import FollowError, GitFollower
from provgit.watch.incremental import Desired, StageCache
from provgit.watch.logs import Log
from provgit.watch.metrics import Metrics
from provgit.watch.removals import SETTINGS_CHANGE, Held, RemovalGuard, removals
from provgit.watch.server import start as start_server
from provgit.watch.shutdown import Gate, GatedDriver
from provgit.watch.stability import settled_read
from provgit.watch.triggers import every, watch_directory

DriftMode = Literal["report", "correct"]
MAX_PROBLEMS = 20
DOC_TTL = 1.0
# A full garbage collection waits until no run was asked for this long.
DEEP_GC_IDLE_SECONDS = 30.0


@dataclass(frozen=True)
class WatchOptions:
    config: Path  # directory mode: the config directory
    state_dir: Path
    repo: str | None = None  # git mode: URL or local path
    ref: str = "main"
    subdir: str = "."  # git mode: the config directory inside the repository
    # None: `drift.mode` of provgit.yaml, else report.
    drift: DriftMode | None = None
    resync_seconds: float = 300.0
    fetch_seconds: float = 60.0
    step_ms: int = 50
    debounce_ms: int = 1600
    host: str = "127.0.0.1"
    port: int = 0
    token: str | None = None
    stop_timeout: float = 10.0
    retry_check_seconds: float = 1.0
    plan: PlanOptions = field(default_factory=PlanOptions)
    # "Now" for sync windows: the system's, or a test's fake clock (injected).
    clock: holds.Clock = holds.SYSTEM_CLOCK


class _Progress:
    """Apply progress into the log and the live status (never record values)."""

    def __init__(self, watcher: Watcher) -> None:
        self.w = watcher

    def element_started(self, element: str, total: int) -> None:
        if total:
            self.w.progress[element] = f"{st.synching(element)} (0/{total})"
            self.w.log.info("element_syncing", element=element, operations=total)
        self.w.touch()

    def advanced(self, element: str, done: int, total: int) -> None:
        self.w.progress[element] = f"{st.synching(element)} ({done}/{total})"
        self.w.touch()

    def element_finished(self, element: str, status: str) -> None:
        self.w.progress[element] = status
        self.w.touch()


class Watcher:
    def __init__(self, options: WatchOptions, log: Log) -> None:
        self.o = options
        self.log = log
        self.metrics = Metrics()
        self.cache = StageCache(options.state_dir)
        self.follower = (
            GitFollower(options.repo, options.ref, options.subdir, options.state_dir)
            if options.repo
            else None
        )
        # git mode: embedded elements and relative report dirs live in the state dir
        self.config_root = options.state_dir if self.follower else options.config
        self.journal: Journal  # the loop's and the server's (this thread only)
        self.desired: Desired | None = None
        self.applied_commit: str | None = None
        self.tried: set[str] = set()  # commits (or trees) already run or refused
        self.refused: dict[str, Any] | None = None
        self.drift: dict[str, Any] | None = None
        self._drift_sig: frozenset[tuple[str, str, str, str]] = frozenset()
        self.running: dict[str, Any] | None = None
        self.progress: dict[str, str] = {}
        self.last_run: dict[str, Any] | None = None
        self.requests: set[str] = set()
        self.wake = asyncio.Event()
        self.stop_event = asyncio.Event()
        self.stopping = False
        self.task: asyncio.Task[None] | None = None
        self.gate: Gate | None = None
        self.retry_floor = options.retry_check_seconds
        self._retry_not_before = 0.0
        self._pending_before: int | None = None
        self._doc: tuple[float, int, dict[str, Any]] | None = None
        self._doc_lock = threading.Lock()
        self._doc_journal: Journal | None = None
        self._version = 0
        self._first = True
        self._first_observation = True
        self.timings: dict[str, float] = {}
        self._drift_elements: set[str] = set()
        self._loop_alive = True
        # Directory mode: removals wait for a confirming read (removals.py).
        self.removals = RemovalGuard()
        self.held: dict[str, Any] | None = None
        self._read_at: float | None = None  # when the last settled read started
        self._read_refused = False  # the last read was refused (not valid)
        self._config_pending = False  # a config was held, not applied yet
        self._confirm: asyncio.TimerHandle | None = None
        # When a sync window next opens or closes (clock time): a run is due then.
        self.window_change: float | None = None
        # The settings of the last run that was not held: a change to them
        # (a provgit.yaml saved in two chunks drops the sharing exclusions and
        # the protected list) waits for a confirming read like a removal.
        self._applied_settings: Settings | None = None

    # ---- the provider the status server reads ---------------------------------

    def touch(self) -> None:
        self._version += 1

    def trigger(self, reason: str) -> None:
        self.requests.add(reason)
        self.wake.set()

    def suspend(self, element: str | None, reason: str, who: str) -> dict[str, Any]:
        """POST /suspend: writes wait from the next run on (kept in the journal)."""
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
        return self._loop_alive, {
            "running": self.running is not None,
            "applied_commit": self.applied_commit,
            "has_valid_config": self.desired is not None,
        }

    def status_document(self) -> dict[str, Any]:
        """The live document. The server calls it off the event loop (deriving
        the status of a large network takes a while), so it reads the journal
        through its own connection, one caller at a time."""
        with self._doc_lock:
            return self._status_document()

    def _status_document(self) -> dict[str, Any]:
        now = time.monotonic()
        if self._doc is not None and self._doc[1] == self._version and now - self._doc[0] < DOC_TTL:
            return self._doc[2]
        desired = self.desired
        if self._doc_journal is None:
            self._doc_journal = Journal.open(self.o.state_dir)
        doc = reports.document(
            self._doc_journal,
            network=desired.state.settings.network if desired else None,
            state=desired.state if desired else None,
            commit=self.applied_commit if self.follower else None,
            config_path=self.o.subdir if self.follower else str(self.o.config),
            # Derived from what the watcher holds in memory (report.derive).
            target=desired.target if desired else None,
            observations=dict(self.cache.observations),
            plans=self.cache.last_plans(desired) if desired else None,
        )
        doc["watch"] = self._watch_section()
        self._doc = (now, self._version, doc)
        return doc

    @property
    def drift_mode(self) -> DriftMode:
        """--drift, else `drift.mode` of the config applied, else report."""
        settings = self.desired.state.settings if self.desired is not None else None
        return self.o.drift or (settings.drift.mode if settings else None) or "report"

    def _watch_section(self) -> dict[str, Any]:
        desired = self.desired
        return {
            "mode": "git" if self.follower else "directory",
            "source": self.follower.display if self.follower else str(self.o.config),
            "applied_commit": self.applied_commit,
            "config_commit": desired.source.commit if desired else None,
            "running": None
            if self.running is None
            else {**self.running, "elements": dict(self.progress)},
            "last_run": self.last_run,
            "refused": self.refused,
            "held_removals": self.held,
            "drift": self.drift,
            "drift_mode": self.drift_mode,
        }

    # ---- lifetime ---------------------------------------------------------------

    async def run(self, ready: Any) -> None:
        """Serve and reconcile until SIGTERM/SIGINT; `ready(url)` once listening."""
        self.o.state_dir.mkdir(parents=True, exist_ok=True)
        self.journal = Journal.open(self.o.state_dir)
        self.apply_journal = Journal.open(self.o.state_dir)
        self._mark_interrupted()  # a run of ours that died without finishing
        # Runs of other processes that died (SIGKILL, power loss): marked now,
        # not at the first apply, which may be long coming (a removal held, a
        # resync with nothing to do).
        standing.settle_dead_runs(self.journal, os.uname().nodename, 0)
        if self.follower is not None:
            await asyncio.to_thread(self.follower.prepare)
            await asyncio.to_thread(self.follower.check_ref)
            self.applied_commit = self.journal.meta(self._applied_key())
        self._seed_metrics()
        runner, url = await start_server(self, self.o.host, self.o.port, self.o.token)
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
        background = [asyncio.create_task(self._pending_timer(), name="retry-timer")]
        background.append(
            asyncio.create_task(
                every(self.o.resync_seconds, lambda: self.trigger("resync"), self.stop_event)
            )
        )
        if self.follower is not None:
            background.append(
                asyncio.create_task(
                    every(self.o.fetch_seconds, lambda: self.trigger("fetch"), self.stop_event)
                )
            )
        else:
            ignore = [self.o.state_dir]
            background.append(asyncio.create_task(self._watch_files(ignore), name="watchfiles"))
        self.trigger("start")
        try:
            await self._single_flight()
        finally:
            self._loop_alive = False
            self.stop_event.set()
            for t in background:
                t.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            if self._confirm is not None:
                self._confirm.cancel()
            await self._save_observations()
            await runner.cleanup()
            self.apply_journal.close()
            self.journal.close()
            with self._doc_lock:  # the server is down: no document is being built
                if self._doc_journal is not None:
                    self._doc_journal.close()
                    self._doc_journal = None
            self.log.info("watch_stopped")

    async def _watch_files(self, ignore: list[Path]) -> None:
        extra = []
        if self.desired is not None:
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

    async def _single_flight(self) -> None:
        deep_gc_due = False
        while not self.stopping:
            try:
                await asyncio.wait_for(self.wake.wait(), DEEP_GC_IDLE_SECONDS)
            except TimeoutError:
                if deep_gc_due:
                    # Idle: now a full collection costs no one any latency.
                    gc.unfreeze()
                    gc.collect()
                    gc.freeze()
                    deep_gc_due = False
                continue
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
                self._mark_interrupted()
                break
            except Exception as e:  # a bug in one run must not end the reconciler
                self.log.error("run_crashed", error=f"{type(e).__name__}: {e}")
            finally:
                self.task = None
                self.gate = None
            # Runs go with the cyclic GC off (cli/__init__.py); a process that
            # lives for weeks collects between runs instead, but not right
            # after one: walking 100,000 users' models takes seconds, and the
            # next change may already be waiting. What the run built is frozen
            # (out of every collection's way) and a full collection runs once
            # the watcher has been idle for a while.
            gc.freeze()
            deep_gc_due = True

    def _on_stop(self, sig: int) -> None:
        name = signal.Signals(sig).name
        if self.stopping:
            self.log.warning("stop_forced", signal=name)
            if self.task is not None:
                self.task.cancel()
            return
        self.log.info("stopping", signal=name, running=self.running is not None)
        self.stopping = True
        self.stop_event.set()
        self.wake.set()
        if self.task is not None:
            asyncio.get_running_loop().create_task(self._drain_and_cancel())

    async def _drain_and_cancel(self) -> None:
        """Let writes on the wire finish (and be journaled), send no more, then stop."""
        gate, task = self.gate, self.task
        if gate is not None:
            gate.close()
            try:
                await asyncio.wait_for(gate.drained(), self.o.stop_timeout)
            except TimeoutError:
                self.log.warning("stop_timeout", in_flight=gate.in_flight)
            # The engine journals an answer right after it arrives; give it that moment.
            await asyncio.sleep(0.2)
        if task is not None and not task.done():
            task.cancel()

    def _on_reload(self) -> None:
        self.log.info("reloading")
        self.cache.clear()
        self.tried.clear()
        self.trigger("reload")

    def _mark_interrupted(self) -> None:
        for r in self.journal.runs(3):
            if r["finished"] is None and r["pid"] == os.getpid() and r["command"] == "watch":
                self.journal.finish_run(r["id"], "interrupted", {"reason": "stopped by signal"})
                self.journal.add_event(
                    "interrupted",
                    f"run {r['id']} stopped by a signal; writes in flight were finished, "
                    "the rest is planned again by the next run",
                    run_id=r["id"],
                )
                self.log.info("run_interrupted", run_id=r["id"])

    def _applied_key(self) -> str:
        assert self.follower is not None
        return f"watch.applied:{self.follower.spec}@{self.o.ref}:{self.o.subdir}"

    def _seed_metrics(self) -> None:
        j = self.journal
        self.metrics.counts(j.pending_count(), j.distribution_error_count(), j.alarm_level())
        self.metrics.suspensions(j.suspensions())
        for name, row in j.element_statuses().items():
            if row["status"] == st.SYNC_COMPLETED:
                with contextlib.suppress(ValueError):
                    self.metrics.element_synced(
                        name,
                        time.mktime(time.strptime(row["time"], "%Y-%m-%dT%H:%M:%SZ"))
                        - time.timezone,
                    )

    # ---- pending updates ------------------------------------------------------

    async def _pending_timer(self) -> None:
        """Ask for a retry run when a pending update's next retry time has come."""
        while not self.stop_event.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_event.wait(), self.o.retry_check_seconds)
                return
            at = self.window_change
            if at is not None and self.running is None and self.o.clock.now() >= at:
                # A sync window opened or closed: held work may go out now.
                self.window_change = None
                self.trigger("window")
            now = time.time()
            if now < self._retry_not_before or self.running is not None:
                continue
            due = [p for p in self.journal.pending() if p.next_retry <= now]
            if due or self._down_elements():
                self.trigger("retry")
                self._retry_not_before = now + self.retry_floor

    def _down_elements(self) -> set[str]:
        if self.desired is None:
            return set()
        return standing.down_elements(self.journal, self.desired.state.elements)

    def _after_retry(self, pending_now: int) -> None:
        """Back off while retries do not move anything (an element still down)."""
        pending_now += len(self._down_elements())
        before = self._pending_before
        if before is not None and pending_now >= before and pending_now:
            self.retry_floor = min(self.retry_floor * 2, max(self.o.resync_seconds, 1.0))
        else:
            self.retry_floor = self.o.retry_check_seconds
        self._pending_before = pending_now

    # ---- one run --------------------------------------------------------------

    @contextlib.contextmanager
    def _timed(self, stage: str) -> Iterator[None]:
        """Seconds per stage of the current run, logged with its end (what dominates)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] = round(
                self.timings.get(stage, 0.0) + time.perf_counter() - started, 4
            )

    async def _cycle(self, reasons: set[str]) -> None:
        started = time.monotonic()
        reason = ",".join(sorted(reasons))
        self.running = {"reason": reason, "started": _iso(time.time())}
        self.progress = {}
        self.timings = {}
        self.metrics.running.set(1)
        self.touch()
        outcome = "error"
        result: ApplyResult | None = None
        try:
            config_run = await self._refresh_config(reasons) or self._config_pending
            if self.desired is None:
                outcome = "no valid config"
                return
            if self._read_refused and reasons <= {"change", "confirm"}:
                # Only a change asked, and it does not validate (a half-written
                # file, say): no run; the last good config stays applied.
                outcome = "config refused"
                return
            result, outcome = await self._reconcile(config_run, reasons)
        finally:
            seconds = time.monotonic() - started
            self.metrics.running.set(0)
            self.metrics.run_finished(reason, outcome, seconds, result)
            self.running = None
            self.last_run = {
                "reason": reason,
                "outcome": outcome,
                "seconds": round(seconds, 3),
                "finished": _iso(time.time()),
                "commit": self.desired.source.commit if self.desired else None,
            }
            self.touch()
            self.log.info(
                "run_finished",
                reason=reason,
                outcome=outcome,
                seconds=round(seconds, 3),
                stages=self.timings,
            )

    async def _refresh_config(self, reasons: set[str]) -> bool:
        """Read and validate the config if something says it may have changed;
        True when a new valid config is to be applied."""
        first, self._first = self._first, False
        reload = "reload" in reasons
        if self.follower is not None:
            look = first or reload or bool(reasons & {"fetch", "webhook"})
            return await self._refresh_git(look, reload)
        self._read_refused = False
        if not (first or reload or "change" in reasons or "confirm" in reasons):
            return False
        before = self.desired.key if self.desired else None
        settings = self.desired.state.settings if self.desired else Settings()
        with self._timed("read"):
            # Only a tree that stopped changing is read (stability.py).
            source, read_at = await settled_read(
                self.o.config,
                settings.watch.settle_seconds,
                lambda paths: self.log.info("config_settling", files=paths[:MAX_PROBLEMS]),
                on_first_read=lambda: self.log.debug("config_read"),
            )
        if not await self._consider(source, str(self.o.config)):
            self._read_refused = True
            return False
        self._read_at = read_at
        assert self.desired is not None
        return first or reload or self.desired.key != before

    async def _refresh_git(self, look: bool, reload: bool) -> bool:
        assert self.follower is not None
        if not look:
            return False
        try:
            await asyncio.to_thread(self.follower.fetch)
        except FollowError as e:
            self.log.warning("fetch_failed", source=self.follower.display, error=str(e))
        try:
            head = await asyncio.to_thread(self.follower.head)
        except FollowError as e:
            self.log.error("ref_unreadable", error=str(e))
            return False
        current = self.desired.source.commit if self.desired else None
        if not reload and (head == current or (head in self.tried and self.desired is not None)):
            return False
        self.log.info("commit_found", commit=head, applied=self.applied_commit)
        with self._timed("read"):
            source = await asyncio.to_thread(self.follower.read, head)
        if await self._consider(source, head):
            return reload or head != self.applied_commit
        if self.desired is None and self.applied_commit and self.applied_commit != head:
            # Starting on a refused commit: the last good one stays the desired state.
            good = await asyncio.to_thread(self.follower.read, self.applied_commit)
            await self._consider(good, self.applied_commit)
        return False

    async def _consider(self, source: ConfigSource, label: str) -> bool:
        """Validate `source` and keep it as the desired state if valid; False if refused."""
        with self._timed("validate"):
            key, validated = await asyncio.to_thread(self.cache.validate, source)
        ident = source.commit or key
        self.tried.add(ident)
        if not validated.ok:
            self._refuse(source, label, ident, validated)
            return False
        if self.refused is not None and self.refused.get("id") != ident:
            self.refused = None  # a newer good config replaces the refusal
        if (
            self.desired is None
            or self.desired.key != key
            or self.desired.source.commit != source.commit
        ):
            with self._timed("target"):
                self.desired = await asyncio.to_thread(self.cache.desired, key, source, validated)
            self.log.info(
                "config_loaded",
                source=label,
                files=validated.files,
                parsed=validated.parsed,
                cached=validated.cached,
            )
        return True

    def _refuse(self, source: ConfigSource, label: str, ident: str, validated: Validated) -> None:
        errors = [d for d in validated.diagnostics if d.severity == "error"]
        problems = [{"where": str(d.location), **d.to_json()} for d in errors[:MAX_PROBLEMS]]
        if self.refused is not None and self.refused.get("id") == ident:
            return  # already reported
        kept = (
            f"commit {self.applied_commit[:12]} stays applied"
            if self.applied_commit
            else "the last good config stays applied"
            if self.desired is not None
            else "nothing is applied until the config is valid"
        )
        what = f"commit {source.commit[:12]}" if source.commit else f"the config at {label}"
        first = errors[0] if errors else None
        message = f"{what} refused: {len(errors)} problem(s), nothing applied; {kept}" + (
            f"; first: {first.location}: {first.message}" if first else ""
        )
        self.refused = {
            "id": ident,
            "commit": source.commit,
            "source": label,
            "time": _iso(time.time()),
            "problems": problems,
            "count": len(errors),
        }
        self.journal.add_event("config_refused", message)
        self.metrics.refused.inc()
        self.log.warning(
            "config_refused",
            source=label,
            problems=len(errors),
            first=f"{first.location}: {first.message}" if first else None,
        )
        self.touch()

    async def _reconcile(
        self, config_run: bool, reasons: set[str]
    ) -> tuple[ApplyResult | None, str]:
        desired = self.desired
        assert desired is not None
        state = desired.state
        network = connect(state, self.o.state_dir, self.config_root, self.o.plan.elements)
        try:
            with self._timed("observe"):
                observed = await self._observe(
                    network, save=self._first_observation or "resync" in reasons
                )
            with self._timed("plan"):
                plan = await asyncio.to_thread(
                    self.cache.plan,
                    desired,
                    observed,
                    state.settings,
                    self.o.plan,
                    desired.source.commit,
                    desired.source.root,
                )
            if self.follower is None and self._hold_removals(plan, state):
                self._config_pending = config_run or self._config_pending
                return None, "removal held"
            self._applied_settings = state.settings
            only: frozenset[tuple[str, str, str]] | None = None
            fresh = True
            if not config_run:
                classified = classify(
                    plan, standing.unfinished(self.journal), self._down_elements()
                )
                # Into the journal (items, events) like the drift any run finds,
                # including changes to records provgit never wrote.
                await asyncio.to_thread(
                    drift_items.review,
                    plan,
                    self.apply_journal,  # off the loop, as apply uses it
                    self.drift_mode,
                    settle=True,
                    extra=_items(classified),
                )
                self._note_drift(classified)
                if classified.drift and self.drift_mode == "report":
                    only, fresh = classified.unfinished, False
                if self._nothing_to_do(plan, observed, only):
                    return None, "in sync"
            with self._timed("apply"):
                result = await self._apply(plan, network, only, fresh)
                remember_writes(self.o.state_dir, plan, result, self.cache.observations)
        finally:
            await network.close()
        if config_run:
            self._config_pending = False
        outcome = "refused" if result.refusal else result.overall
        with self._timed("report"):
            await self._after_apply(result, config_run, desired)
        if "retry" in reasons:
            self._after_retry(result.pending_updates)
        return result, outcome

    def _hold_removals(self, plan: Plan, state: DesiredState) -> bool:
        """Directory mode: True when the plan deletes resources whose removal no
        read after the grace period has confirmed yet (nothing is applied)."""
        grace = state.settings.watch.delete_grace_seconds
        seen = removals(plan, state)
        if self._applied_settings is not None and state.settings != self._applied_settings:
            seen.add(SETTINGS_CHANGE)
        held, confirmed, withdrawn = self.removals.review(
            seen, self._read_at, time.monotonic(), grace
        )
        if withdrawn:
            self.log.info("removal_withdrawn", count=len(withdrawn), resources=_names(withdrawn))
            self.journal.add_event(
                "removal_withdrawn",
                f"{len(withdrawn)} resource(s) missing from a read are back in the config: "
                f"nothing was deleted ({', '.join(_names(withdrawn))})",
            )
        if confirmed:
            self.log.info("removal_confirmed", count=len(confirmed), resources=_names(confirmed))
        if held is None:
            if self._confirm is not None:
                self._confirm.cancel()  # nothing left to confirm
                self._confirm = None
            if self.held is not None:
                self.held = None
                self.touch()
            return False
        self._announce_hold(held, grace)
        return True

    def _announce_hold(self, held: Held, grace: float) -> None:
        names = _names(held.resources)
        again = self.held is not None and self.held["resources"] == names
        self.held = {
            "count": len(held.resources),
            "resources": names,
            "grace_seconds": grace,
            "recheck_in_seconds": round(held.recheck_in, 3),
        }
        self.touch()
        if self._confirm is not None:
            self._confirm.cancel()
        # A little past the grace, so the confirming read starts after it.
        self._confirm = asyncio.get_running_loop().call_later(
            held.recheck_in + 0.05, self.trigger, "confirm"
        )
        # Said once per set of held removals (a retry meanwhile holds them again).
        (self.log.debug if again else self.log.warning)(
            "removal_held",
            count=len(held.resources),
            resources=names,
            recheck_seconds=round(held.recheck_in, 3),
        )
        if not again:
            self.journal.add_event(
                "removal_held",
                f"{len(held.resources)} resource(s) missing from the config are held for "
                f"{grace:g} s and deleted only if a read then still lacks them; nothing "
                f"was applied meanwhile ({', '.join(names)})",
            )

    async def _observe(self, network: Network, save: bool) -> dict[str, Observation]:
        previous: Mapping[str, Observation] = self.cache.observations
        if not previous:
            previous = await asyncio.to_thread(
                ObservationCache(self.o.state_dir).load_all, list(network.drivers)
            )
        observed = await observe_network(network, self.o.state_dir, previous=previous, save=False)
        for name, o in observed.items():
            if o.ok:
                self.cache.observations[name] = o
        if save:
            # Written on the first run, on resyncs and at exit only: 300,000
            # records take ~0.1 s per element to write, which a one-user change
            # should not pay; a later start refreshes from an older file
            # through the change feed all the same.
            self._first_observation = False
            await self._save_observations(previous)
        return observed

    async def _save_observations(self, previous: Mapping[str, Observation] | None = None) -> None:
        current = dict(self.cache.observations)
        if current:
            with contextlib.suppress(OSError):
                await asyncio.to_thread(
                    ObservationCache(self.o.state_dir).save_all, current, previous
                )

    def _note_drift(self, c: Classified) -> None:
        sig = c.signature()
        self._drift_elements.update(c.drift)
        for el in self._drift_elements:
            self.metrics.drift.labels(el).set(len(c.drift.get(el, [])))
        if not c.drift:
            if self.drift is not None:
                self.log.info("drift_gone")
            self.drift, self._drift_sig = None, frozenset()
            self.touch()
            return
        corrected = self.drift_mode == "correct"
        self.drift = {
            "time": _iso(time.time()),
            "records": c.drift_count,
            "corrected": corrected,
            "elements": {
                el: [
                    {
                        "action": op.action,
                        "collection": op.collection,
                        "key": op.key,
                        "fields": sorted(op.changes),
                    }
                    for op in ops[:MAX_PROBLEMS]
                ]
                for el, ops in c.drift.items()
            },
        }
        self.touch()
        if sig == self._drift_sig and not corrected:
            return  # the same drift was reported already
        self._drift_sig = sig
        # The journal events were written by drift_items.review (new items only).
        for el, ops in sorted(c.drift.items()):
            self.log.warning(
                "drift",
                element=el,
                records=len(ops),
                corrected=corrected,
                message=describe(el, ops, corrected),
            )

    def _note_run_drift(self, result: ApplyResult) -> None:
        """Drift a config run found (an edit made just before it): logged, and
        shown in the live status until a resync sees it again or gone."""
        if not result.drift:
            return
        by_element: dict[str, list[dict[str, Any]]] = {}
        for d in result.drift:
            by_element.setdefault(d["element"], []).append(d)
        for el, found in sorted(by_element.items()):
            if any(d["new"] for d in found):
                self.log.warning(
                    "drift",
                    element=el,
                    records=len(found),
                    corrected=all(d["outcome"] == "corrected" for d in found),
                    held=sum(d["outcome"] == "held" for d in found),
                )
        left = [d for d in result.drift if d["outcome"] != "corrected"]
        if not left:
            return
        action = {"changed": "modify", "missing": "add", "unexpected": "delete"}
        self.drift = {
            "time": _iso(time.time()),
            "records": len(left),
            "corrected": False,
            "elements": {
                el: [
                    {
                        "action": action.get(d["change"], "modify"),
                        "collection": d["collection"],
                        "key": d["key"],
                        "fields": d["fields"],
                    }
                    for d in left
                    if d["element"] == el
                ][:MAX_PROBLEMS]
                for el in sorted({d["element"] for d in left})
            },
        }
        self.touch()

    def _nothing_to_do(
        self,
        plan: Plan,
        observed: Mapping[str, Observation],
        only: frozenset[tuple[str, str, str]] | None,
    ) -> bool:
        """A resync that would only write 'nothing changed' again: skip the apply."""
        ops = sum(len(e.operations) for e in plan.elements)
        if only is not None and not only:
            ops = 0
        if ops or not all(o.ok for o in observed.values()):
            return False
        return standing.all_in_sync(self.journal, observed)

    async def _apply(
        self,
        plan: Plan,
        network: Network,
        only: frozenset[tuple[str, str, str]] | None,
        fresh: bool,
    ) -> ApplyResult:
        gate = self.gate = Gate()
        drivers = {n: GatedDriver(d, gate) for n, d in network.drivers.items()}
        options = ApplyOptions(
            command="watch",
            check_stale=False,
            fresh=fresh,
            only=only,
            drift=self.drift_mode,
            clock=self.o.clock,
        )
        assert self.desired is not None
        self.window_change = holds.next_change(self.desired.state.settings, self.o.clock.now())
        return await apply_plan(
            plan,
            drivers,
            self.apply_journal,
            self.desired.state.settings,
            self.o.state_dir,
            options,
            _Progress(self),
            network.unavailable,
        )

    async def _after_apply(self, result: ApplyResult, config_run: bool, desired: Desired) -> None:
        if config_run:
            self._note_run_drift(result)
        for e in result.elements:
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
        if config_run and commit and self.follower is not None and result.refusal is None:
            self.applied_commit = commit
            self.journal.set_meta(self._applied_key(), commit)
        settings = desired.state.settings
        try:
            warnings = await asyncio.to_thread(
                reports.write_files,
                reports_dir(desired.state, self.config_root, self.o.state_dir),
                self.apply_journal,
                result,
                desired.state,
                None if self.follower is not None else self.o.config,
                desired.target,
                dict(self.cache.observations),
                self.cache.last_plans(desired),
            )
        except OSError as e:
            warnings = [f"cannot write the reports: {e}"]
        for w in warnings:
            self.log.warning("report", warning=w)
        if (
            self.follower is not None
            and config_run
            and commit
            and result.refusal is None
            and settings.reports.git_notes
        ):
            doc = reports.document(
                self.journal,
                network=settings.network,
                result=result,
                state=desired.state,
                commit=commit,
                config_path=self.o.subdir,
                target=desired.target,
                observations=dict(self.cache.observations),
                plans=self.cache.last_plans(desired),
            )
            push = settings.reports.push_notes and self.follower.remote
            warning = await asyncio.to_thread(reports.write_note, self.follower.repo, doc, push)
            if warning:
                self.log.warning("git_note", warning=warning)
            else:
                self.log.info("git_note_written", commit=commit)


def _items(c: Classified) -> list[DriftItem]:
    """The resync's drift as journal drift items (field names only, never values)."""
    now = time.time()
    change = {"modify": "changed", "add": "missing", "delete": "unexpected"}
    return [
        DriftItem(
            el,
            op.collection,
            op.key,
            op.kind,
            op.resource,
            change.get(op.action, "changed"),
            tuple(sorted(k for k in op.changes if not k.startswith("_")))
            if op.action == "modify"
            else (),
            op.if_revision,
            "open",
            None,
            now,
            now,
        )
        for el, ops in c.drift.items()
        for op in ops
    ]


def _names(resources: Sequence[tuple[str, str]]) -> list[str]:
    shown = [f"{kind}/{key}" for kind, key in resources[:MAX_PROBLEMS]]
    if len(resources) > MAX_PROBLEMS:
        shown.append(f"… and {len(resources) - MAX_PROBLEMS} more")
    return shown


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
