"""Network settings: the `provgit.yaml` file at the config root."""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import PurePosixPath
from typing import Annotated, Literal
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from provgit.model.common import Hinted, Identifier, Model, SecretRef
from provgit.model.cron import Cron, CronError

Scope = Literal[
    "all_elements",
    "cluster",
    "call_servers",
    "admin_group",
    "resilient_pair",
    "hosting_element",
    "none",
]


class Threshold(Model):
    """Refuse a plan for an element past this many changes (either limit trips it)."""

    count: Annotated[int, Field(ge=0)] | None = None
    percent: Annotated[float, Field(ge=0, le=100)] | None = None


class ElementSafety(Model):
    max_deletes: Threshold | None = None
    max_updates: Threshold | None = None


class Safety(Model):
    max_deletes: Threshold = Threshold.model_construct(count=100, percent=10.0)
    max_updates: Threshold = Threshold.model_construct(count=5000, percent=50.0)
    # Kinds whose records provgit did not create may be deleted (off by default).
    prune: list[str] = []
    # "kind/key" of records that are never deleted, whatever the plan says.
    protected: list[str] = []
    elements: dict[str, ElementSafety] = {}
    kinds: dict[str, ElementSafety] = {}


class Alarms(Model):
    """Distribution error counts above which an alarm of that level is raised (SDS)."""

    warning: Annotated[int, Field(ge=0)] = 0
    minor: Annotated[int, Field(ge=0)] = 100
    major: Annotated[int, Field(ge=0)] = 1000


IVR_CHANGE_KINDS = ("prompts", "subroutines", "workflows")


class QuietLoad(Model):
    """IVR content changes (prompts, subroutines, workflows) wait while an IVR
    server's live call load is above `limit` percent of its capacity, and go
    out once it falls to it or after `max_wait` (then as the sync windows say).
    The first rule whose scope matches an element and kind applies."""

    # Percent of the element's call capacity in use above which changes wait.
    limit: Annotated[float, Field(ge=0, le=100)]
    # How long a change waits at most, from when it first waited ("90m", "2h").
    max_wait: str = "2h"
    # Scope: both empty is every IVR server and kind; else all given lists must match.
    elements: list[str] = []
    kinds: list[str] = []

    @field_validator("max_wait")
    @classmethod
    def _max_wait(cls, v: str) -> str:
        return _check_duration(v, "max_wait")

    @property
    def max_wait_seconds(self) -> float:
        return _seconds(self.max_wait)


class ApplySettings(Model):
    element_concurrency: Annotated[int, Field(ge=1, le=256)] = 8
    queue_cap: Annotated[int, Field(ge=1)] = 60_000
    retry_attempts: Annotated[int, Field(ge=0, le=20)] = 4
    # At most a day: a pending update's next retry is now plus this, shown as
    # a time (.inf or 1e300 validated, then every report with a pending
    # update failed on a time past any calendar).
    retry_base_seconds: Annotated[float, Field(ge=0, le=86400)] = 0.5
    retry_max_seconds: Annotated[float, Field(ge=0, le=86400)] = 30.0
    # Writes per request to an element, where its driver takes batches.
    batch_size: Annotated[int, Field(ge=1, le=5000)] = 200
    # Requests open at once to one element. 1 keeps an element's writes in
    # strict plan order, one request at a time.
    batches_in_flight: Annotated[int, Field(ge=1, le=64)] = 4
    # Finished runs, their intents and outcomes, and events older than this
    # are pruned from the journal at the end of a run. Open intents, pending
    # updates, distribution errors and statuses are never pruned.
    journal_retention_days: Annotated[float, Field(gt=0)] = 30.0
    # Call-load-aware IVR changes (apply/holds.py): rules, the first in scope wins.
    quiet_load: list[QuietLoad] = []
    # How often the watcher reads the call load of elements with deferred IVR
    # changes, so they go out within this long of the load falling.
    load_poll_seconds: Annotated[float, Field(gt=0, le=3600)] = 15.0


class Reports(Model):
    # Relative to the config root (`.provgit/...`: the state directory). The
    # repository names where the watcher writes, so a merged change must not
    # reach /etc or ~/.ssh: an operator's own directory comes from the
    # environment (PROVGIT_REPORTS_DIR), never from the config.
    dir: str = ".provgit/status"
    git_notes: bool = True
    push_notes: bool = False
    markdown_max_bytes: Annotated[int, Field(ge=1000)] = 60_000

    @field_validator("dir")
    @classmethod
    def _inside_config_or_state(cls, v: str) -> str:
        p = PurePosixPath(v)
        climbs = ".." in p.parts or ".git" in p.parts
        if not v.strip() or p.is_absolute() or v.startswith("~") or climbs or "\\" in v:
            raise Hinted(
                f"must be a directory inside the config root or the state directory, "
                f"without '..' or .git (got {v!r}): the repository cannot send the reports "
                "elsewhere on the machine",
                "write e.g. dir: .provgit/status (the state directory) or dir: status "
                "(in the config root); to publish elsewhere, set PROVGIT_REPORTS_DIR in "
                "provgit's environment",
            )
        if "\x00" in v:
            raise ValueError("must not contain a NUL character")
        return v


class DriftSettings(Model):
    """What a run does with a record someone changed outside provgit."""

    # report: the record is held (not overwritten) until a person decides
    # (`apply --overwrite-drift`, or `import --drift`); correct: it is
    # overwritten and the drift recorded as corrected. Unset: each command's
    # own default (apply and reconcile correct, watch reports).
    mode: Literal["report", "correct"] | None = None


class ObserveSettings(Model):
    """How provgit knows what an element holds: its change feed between full
    reads, and a full read (verifying the feed) at least this often."""

    # `plan` and `reconcile` read an element in full when its last full read
    # is older than this (a feed that missed a change is found then at the latest).
    full_read_hours: Annotated[float, Field(gt=0, le=8760)] = 24.0
    # `provgit watch`: how often each element is read in full, one element a
    # run at most (reading 15 elements of 300,000 records at once stalls a run).
    watch_full_read_minutes: Annotated[float, Field(gt=0, le=525600)] = 60.0


class JournalSettings(Model):
    """Where the journal lives: unset, the state directory's SQLite file; `url`
    (postgresql://user@host:port/database), a PostgreSQL database. The
    password is a secret reference, never part of the URL in the repository."""

    url: str | None = None
    password: SecretRef | None = None
    # Replicas of `provgit watch` sharing the journal: how long an element's
    # lease lasts without renewal. A replica that dies loses its elements to
    # another after this long; one cut off from the database stops writing
    # a fifth of it (at least 0.5 s) earlier.
    lease_seconds: Annotated[float, Field(ge=1, le=3600)] = 15.0
    # The most connections one process opens to the database: every journal
    # it opens (a fleet: every network's) shares one pool of them; 2 go to the
    # leases. A replica costs PostgreSQL this many of its max_connections
    # (default 100), whatever the number of networks (docs/deployment.md).
    pool_size: Annotated[int, Field(ge=3, le=1000)] = 12

    @field_validator("url")
    @classmethod
    def _postgresql_without_password(cls, url: str | None) -> str | None:
        if url is None:
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("postgresql", "postgres"):
            raise ValueError(
                f"journal.url must be a postgresql:// URL (got scheme {parts.scheme!r}); "
                "leave it out to keep the journal in the state directory"
            )
        # libpq percent-decodes query keys: `pass%77ord=` is a password too.
        if parts.password is not None or "password" in unquote(parts.query).lower():
            raise ValueError(
                "journal.url holds a password: remove it from the URL and write "
                "journal.password: {env: VARIABLE} (or {file: /path/outside/the/repo})"
            )
        return url


class WatchSettings(Model):
    """`provgit watch` on a directory: a save is only read once it is finished."""

    # A changed file must keep the same size, mtime and content this long
    # before it is read for a run (an editor or a copy still writing it).
    settle_seconds: Annotated[float, Field(ge=0, le=60)] = 0.3
    # A record that vanished from the files (a file gone, truncated, half
    # written) is deleted on the elements only if a read this long after the
    # removal was first seen still lacks it.
    delete_grace_seconds: Annotated[float, Field(ge=0, le=3600)] = 5.0


class ImportRules(Model):
    """Who wins when the elements disagree (`import`): the seeds' rule by default."""

    # A user's own data (names, directory name, department, location): the
    # MiCollab (the master of user data) or the call server hosting the phone.
    user_data: Literal["micollab", "call_server"] = "micollab"
    # A user's phones (labels, device types): the hosting call server or the
    # MiCollab's list of services. COS/COR are only on the call server.
    phone_data: Literal["call_server", "micollab"] = "call_server"
    # Templates, roles, departments, locations: the MiCollab (where they are
    # provisioned centrally), or the value most elements hold.
    central: Literal["micollab", "majority"] = "micollab"


class ImportSettings(Model):
    """`provgit import`: the pairing and conflict rules in force."""

    rules: ImportRules = ImportRules.model_construct()


class Sharing(Model):
    """Overrides a kind's default sharing scope, and keys never shared."""

    scope: Scope | None = None
    exclude: list[str] = []


_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?$")


class SyncWindow(Model):
    """A time span in which provgit may (allow) or may not (deny) write, like Argo
    CD's sync windows. Outside every allow window, or inside a deny window, the
    changes in scope wait as pending updates naming the window."""

    name: Identifier
    kind: Literal["allow", "deny"]
    # Five cron fields: when the window opens (e.g. "0 22 * * 1-5").
    schedule: str
    # How long it stays open: "90m", "2h", "1d12h".
    duration: str
    time_zone: str = "UTC"
    # Scope: every list empty is the whole network; else all given lists must match.
    elements: list[str] = []
    element_types: list[Literal["mivb", "micollab", "ivr"]] = []
    kinds: list[str] = []

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, v: str) -> str:
        try:
            Cron.parse(v)
        except CronError as e:
            raise ValueError(f"bad schedule: {e}") from None
        return v

    @field_validator("duration")
    @classmethod
    def _duration(cls, v: str) -> str:
        return _check_duration(v, "a window's duration")

    @field_validator("time_zone")
    @classmethod
    def _time_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {v!r}: use an IANA name such as 'UTC' or 'Europe/Paris'"
            ) from None
        return v

    @cached_property
    def cron(self) -> Cron:
        return Cron.parse(self.schedule)

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @property
    def seconds(self) -> float:
        return _seconds(self.duration)


def _check_duration(v: str, what: str) -> str:
    m = _DURATION.match(v.strip())
    if not v.strip() or m is None or not any(m.groups()):
        raise ValueError(
            f"bad duration {v!r}: write days, hours and minutes such as '90m', '2h', '1d12h'"
        )
    if _seconds(v) <= 0:
        raise ValueError(f"{what} must be longer than 0")
    return v


def _seconds(duration: str) -> float:
    m = _DURATION.match(duration.strip())
    assert m is not None
    d, h, mi = (int(x or 0) for x in m.groups())
    return float(((d * 24 + h) * 60 + mi) * 60)


class Settings(Model):
    version: Literal[1] = 1
    network: Identifier = "network"
    description: str = ""
    safety: Safety = Safety.model_construct()
    alarms: Alarms = Alarms.model_construct()
    apply: ApplySettings = ApplySettings.model_construct()
    reports: Reports = Reports.model_construct()
    drift: DriftSettings = DriftSettings.model_construct()
    observe: ObserveSettings = ObserveSettings.model_construct()
    windows: list[SyncWindow] = []
    watch: WatchSettings = WatchSettings.model_construct()
    journal: JournalSettings = JournalSettings.model_construct()
    # `import:` in provgit.yaml (`import` is a Python keyword).
    import_: ImportSettings = Field(default=ImportSettings.model_construct(), alias="import")
    sharing: dict[str, Sharing] = {}
    # Keys the fingerprints of secrets (a plan sees a PIN changed without
    # holding it) and the signatures of saved plans; without one, the state
    # directory's own key (`secret.key`) does both.
    secret_key: SecretRef | None = None
