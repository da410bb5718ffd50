"""The config tracker: which config the watcher wants applied, and whether it changed.

Directory mode reads the tree once it has settled (stability.py) and holds a
plan that removes resources until a later read confirms them (removals.py);
git mode follows a ref and applies each new commit once (the last applied
commit is kept in the journal's `meta`). Either way a config that fails
validation is refused (an event naming file and line, and part of the live
status) and the last good one stays the desired state.
"""

from __future__ import annotations

import asyncio
import time

from provgit.api.watching import (
    LEADER,
    ConfigSource,
    Desired,
    DesiredState,
    Journal,
    Plan,
    Settings,
    StageCache,
    Validated,
    refuse_unfenced,
)
from provgit.watch.follower import FollowError, GitFollower
from provgit.watch.live import LiveStatus
from provgit.watch.logs import Log
from provgit.watch.metrics import Metrics
from provgit.watch.options import MAX_PROBLEMS, DriftMode, WatchOptions, iso, resource_names
from provgit.watch.removals import SETTINGS_CHANGE, Held, RemovalGuard, removals
from provgit.watch.replicas import Replica
from provgit.watch.stability import settled_read
from provgit.watch.timers import Timers
from provgit.watch.webhook import ASKED, DELIVERY

# Triggers that only ask "did the ref move?": no run when it did not.
LOOK_ONLY = frozenset({"fetch", "ref"})


class ConfigTracker:
    def __init__(
        self,
        options: WatchOptions,
        follower: GitFollower | None,
        cache: StageCache,
        live: LiveStatus,
        timers: Timers,
        log: Log,
        metrics: Metrics,
    ) -> None:
        self.o = options
        self.follower = follower
        self.cache = cache
        self.live = live
        self.timers = timers
        self.log = log
        self.metrics = metrics
        self.desired: Desired | None = None
        self.applied_commit: str | None = None
        # The last commit (or tree) refused: the ref staying on it is not judged
        # again on every tick. One, not a set of every commit seen: a watcher
        # applying a commit every few seconds for months kept them all, and a
        # force-push back to an older good commit was ignored (that commit
        # was "tried") although the ref now names it.
        self.refused_id: str | None = None
        self._first = True
        # A new config was held (removals), not applied yet: the next run applies it.
        self.pending = False
        # Directory mode: removals wait for a confirming read (removals.py).
        self.removals = RemovalGuard()
        self.read_at: float | None = None  # when the last settled read started
        self.read_refused = False  # the last read was refused (not valid)
        # The settings of the last run that was not held: a change to them
        # (a provgit.yaml saved in two chunks drops the sharing exclusions and
        # the protected list) waits for a confirming read like a removal.
        self.applied_settings: Settings | None = None
        # Replicas on a shared journal: only the leader follows the ref; the
        # others apply the commit it published (`target_key`).
        self.replica: Replica | None = None
        # (leader's lease token, commit) this replica last published as leader.
        self._published: tuple[int, str] | None = None

    @property
    def drift_mode(self) -> DriftMode:
        """--drift, else `drift.mode` of the config applied, else report."""
        settings = self.desired.state.settings if self.desired is not None else None
        return self.o.drift or (settings.drift.mode if settings else None) or "report"

    def unknown_element(self, element: str | None) -> str | None:
        """Why `element` names no element of the config (a mistyped name would
        hold nothing, as `provgit suspend` refuses it); None while no config
        is valid (a freeze must still be possible)."""
        desired = self.desired
        if element is None or desired is None or element in desired.state.elements:
            return None
        return f"unknown element {element!r} (known: {', '.join(desired.state.elements)})"

    def only_looks(self, reasons: set[str]) -> bool:
        """Whether a look that finds the ref (or the leader's commit) unmoved
        may skip the run `reasons` ask for: they only ask "did it move?" (a
        fetch tick, a ref write and, following git, a git host's delivery,
        which anyone holding one can replay at will: each must cost a fetch,
        not a plan), and a config was applied (new leases ask for a run)."""
        looks = LOOK_ONLY | {DELIVERY} if self.follower is not None else LOOK_ONLY
        return reasons <= looks and self.desired is not None and not self.pending

    # ---- git mode: which commit is applied -----------------------------------------

    def applied_key(self) -> str:
        assert self.follower is not None
        return f"watch.applied:{self.follower.spec}@{self.o.ref}:{self.o.subdir}"

    def load_applied(self, journal: Journal) -> None:
        self.applied_commit = journal.meta(self.applied_key())

    def set_applied(self, commit: str, journal: Journal) -> None:
        self.applied_commit = commit
        journal.set_meta(self.applied_key(), commit)

    def reload(self) -> None:
        """SIGHUP: every cache dropped, every config judged again."""
        self.cache.clear()
        self.refused_id = None

    # ---- reading and validating ------------------------------------------------------

    async def refresh(self, reasons: set[str], journal: Journal) -> bool:
        """Read and validate the config if something says it may have changed;
        True when a new valid config is to be applied. It stays `pending`
        until a config run finishes (run.py clears it): a run that stops
        before (cut off from the journal, the journal gone mid-run, a crash)
        leaves it to the next run, as no later look at the unmoved ref (or
        tree) would find it new again."""
        new = await self._refresh(reasons, journal)
        self.pending = self.pending or new
        return new

    async def _refresh(self, reasons: set[str], journal: Journal) -> bool:
        first, self._first = self._first, False
        reload = "reload" in reasons
        if self.follower is not None:
            # "lease": elements claimed (taken back after a cut-off, say) get
            # the newest commit, not one loaded before another replica applied
            # a newer one to them (no fetch timer may have looked since).
            asks = {"fetch", DELIVERY, ASKED, "leader", "ref", "lease"}
            look = first or reload or bool(reasons & asks)
            return await self._refresh_git(look, reload, journal)
        self.read_refused = False
        if not (first or reload or "change" in reasons or "confirm" in reasons):
            return False
        before = self.desired.key if self.desired else None
        settings = self.desired.state.settings if self.desired else Settings()
        with self.live.timed("read"):
            # Only a tree that stopped changing is read (stability.py).
            source, read_at = await settled_read(
                self.o.config,
                settings.watch.settle_seconds,
                lambda paths: self.log.info("config_settling", files=paths[:MAX_PROBLEMS]),
                on_first_read=lambda: self.log.debug("config_read"),
            )
        if not await self._consider(source, str(self.o.config), journal):
            self.read_refused = True
            return False
        self.read_at = read_at
        assert self.desired is not None
        return first or reload or self.desired.key != before

    def target_key(self) -> str:
        return self.applied_key().replace("watch.applied:", "watch.leader_commit:", 1)

    async def _head(self, journal: Journal) -> str:
        """The commit to apply: the ref's head (fetched), or, for a replica that
        is not the leader, the commit the leader published."""
        assert self.follower is not None
        published = None
        if self.replica is not None and not self.replica.leader:
            published = journal.meta(self.target_key())
        if published is not None:
            if not await asyncio.to_thread(self.follower.has, published):
                await asyncio.to_thread(self.follower.fetch)
            return published
        try:
            await asyncio.to_thread(self.follower.fetch)
        except FollowError as e:
            self.log.warning("fetch_failed", source=self.follower.display, error=str(e))
        return await asyncio.to_thread(self.follower.head)

    def _publish(self, head: str, journal: Journal) -> None:
        """The leader: `head`, valid and the desired state, is the commit the
        other replicas apply; written once per commit and leader's lease.
        Looked at on every read of the ref, not only when a commit is loaded:
        a leader whose lease lapsed on its own clock while it loaded one (a
        renewal late on a loaded machine) leads again a round later with that
        commit loaded, and the other replicas would never get it."""
        lease = None if self.replica is None else self.replica.valid(LEADER)
        if lease is None or self._published == (lease.token, head):
            return
        journal.set_meta(self.target_key(), head)
        self._published = (lease.token, head)

    async def _refresh_git(self, look: bool, reload: bool, journal: Journal) -> bool:
        assert self.follower is not None
        if not look:
            return False
        try:
            head = await self._head(journal)
        except FollowError as e:
            self.log.error("ref_unreadable", error=str(e))
            return False
        current = self.desired.source.commit if self.desired else None
        if not reload and (
            head == current or (head == self.refused_id and self.desired is not None)
        ):
            if head == current:
                self._publish(head, journal)
            return False
        self.log.info("commit_found", commit=head, applied=self.applied_commit)
        with self.live.timed("read"):
            source = await asyncio.to_thread(self.follower.read, head)
        if await self._consider(source, head, journal):
            self._publish(head, journal)
            return reload or head != self.applied_commit
        if self.desired is None and self.applied_commit and self.applied_commit != head:
            # Starting on a refused commit: the last good one stays the desired state.
            good = await asyncio.to_thread(self.follower.read, self.applied_commit)
            await self._consider(good, self.applied_commit, journal)
            self.refused_id = head  # still the ref's commit, still refused
        return False

    async def _consider(self, source: ConfigSource, label: str, journal: Journal) -> bool:
        """Validate `source` and keep it as the desired state if valid; False if refused."""
        with self.live.timed("validate"):
            key, validated = await asyncio.to_thread(self.cache.validate, source)
            if self.replica is not None and validated.ok:
                # Replicas: an element they would write without a fence is refused.
                validated = refuse_unfenced(validated)
        ident = source.commit or key
        if not validated.ok:
            self.refused_id = ident
            self._refuse(source, label, ident, validated, journal)
            return False
        self.refused_id = None  # the ref moving back to it later is news again
        if self.live.refused is not None and self.live.refused.get("id") != ident:
            self.live.refused = None  # a newer good config replaces the refusal
        if (
            self.desired is None
            or self.desired.key != key
            or self.desired.source.commit != source.commit
        ):
            with self.live.timed("target"):
                self.desired = await asyncio.to_thread(self.cache.desired, key, source, validated)
            self.log.info(
                "config_loaded",
                source=label,
                files=validated.files,
                parsed=validated.parsed,
                cached=validated.cached,
            )
        return True

    def _refuse(
        self,
        source: ConfigSource,
        label: str,
        ident: str,
        validated: Validated,
        journal: Journal,
    ) -> None:
        errors = [d for d in validated.diagnostics if d.severity == "error"]
        problems = [{"where": str(d.location), **d.to_json()} for d in errors[:MAX_PROBLEMS]]
        if self.live.refused is not None and self.live.refused.get("id") == ident:
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
        self.live.refused = {
            "id": ident,
            "commit": source.commit,
            "source": label,
            "time": iso(time.time()),
            "problems": problems,
            "count": len(errors),
        }
        journal.add_event("config_refused", message)
        self.metrics.refused.inc()
        self.log.warning(
            "config_refused",
            source=label,
            problems=len(errors),
            first=f"{first.location}: {first.message}" if first else None,
        )
        self.live.touch()

    # ---- directory mode: removals held until a read confirms them -------------------

    def hold_removals(self, plan: Plan, state: DesiredState, journal: Journal) -> bool:
        """Directory mode: True when the plan deletes resources whose removal no
        read after the grace period has confirmed yet (nothing is applied)."""
        grace = state.settings.watch.delete_grace_seconds
        seen = removals(plan, state)
        if self.applied_settings is not None and state.settings != self.applied_settings:
            seen.add(SETTINGS_CHANGE)
        held, confirmed, withdrawn = self.removals.review(
            seen, self.read_at, time.monotonic(), grace
        )
        if withdrawn:
            names = resource_names(withdrawn)
            self.log.info("removal_withdrawn", count=len(withdrawn), resources=names)
            journal.add_event(
                "removal_withdrawn",
                f"{len(withdrawn)} resource(s) missing from a read are back in the config: "
                f"nothing was deleted ({', '.join(names)})",
            )
        if confirmed:
            self.log.info(
                "removal_confirmed", count=len(confirmed), resources=resource_names(confirmed)
            )
        if held is None:
            self.timers.cancel_confirm()  # nothing left to confirm
            if self.live.held is not None:
                self.live.held = None
                self.live.touch()
            return False
        self._announce_hold(held, grace, journal)
        return True

    def _announce_hold(self, held: Held, grace: float, journal: Journal) -> None:
        names = resource_names(held.resources)
        again = self.live.held is not None and self.live.held["resources"] == names
        self.live.held = {
            "count": len(held.resources),
            "resources": names,
            "grace_seconds": grace,
            "recheck_in_seconds": round(held.recheck_in, 3),
        }
        self.live.touch()
        self.timers.confirm_in(held.recheck_in)
        # Said once per set of held removals (a retry meanwhile holds them again).
        (self.log.debug if again else self.log.warning)(
            "removal_held",
            count=len(held.resources),
            resources=names,
            recheck_seconds=round(held.recheck_in, 3),
        )
        if not again:
            journal.add_event(
                "removal_held",
                f"{len(held.resources)} resource(s) missing from the config are held for "
                f"{grace:g} s and deleted only if a read then still lacks them; nothing "
                f"was applied meanwhile ({', '.join(names)})",
            )
