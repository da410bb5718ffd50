"""Status (derived from the journal and the last observations, contacting no
element) and the suspensions that hold writes. Internal to the API."""

from __future__ import annotations

import getpass
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from provgit.api.errors import UsageProblem
from provgit.api.journals import existing_journal, open_journal
from provgit.api.status_inputs import StatusInputs, status_inputs
from provgit.journal import NETWORK, Suspension
from provgit.journal.location import journal_location
from provgit.report.document import Document, build_document, filtered
from provgit.report.document_views import without_secret_values
from provgit.source import SETTINGS_FILE, read_config_file

if TYPE_CHECKING:
    from provgit.api.config import Config


@dataclass(frozen=True)
class Status:
    """The sync status document (`provgit status --format json` prints it).

    `problems`: validation problems of the config as it is now; when not 0 the
    document is the status of the last valid config, and the config as it is
    now cannot be applied."""

    document: Document
    problems: int
    network: str | None
    markdown_max_bytes: int
    # Set when this machine holds no observations of the elements and the
    # journal is shared: the statuses are those the last run recorded there.
    remembered_from: str | None = None

    @property
    def in_sync(self) -> bool:
        """In sync for what the document shows, and the config validates."""
        return not self.problems and bool(self.document["in_sync"])

    def text(self) -> str:
        """As `provgit status` prints it."""
        from provgit.render import status_text as report_text

        return report_text.render(self.document)

    def markdown(self, max_bytes: int | None = None) -> str:
        """Bounded to `max_bytes` (default: reports.markdown_max_bytes)."""
        from provgit.render import status_markdown as report_markdown

        return report_markdown.render(self.document, max_bytes or self.markdown_max_bytes)


def status(config: Config, element: str | None = None, kind: str | None = None) -> Status:
    kind_name: str | None = None
    if kind is not None:
        from provgit.model.kinds import KINDS, resolve_kind

        found = resolve_kind(kind)
        if found is None:
            raise UsageProblem(f"unknown kind {kind!r}; kinds: {', '.join(KINDS)}")
        kind_name = found.plural
    journal = existing_journal(config.root, config.state_dir)
    try:
        # The config as it is now: a change not applied yet shows as such.
        now = status_inputs(config.source, config.state_dir, config.cache_dir)
        # The network's name (the journal does not keep it) and the markdown bound.
        network, bound = _named(config, now)
        remembered = _remembered_only(config)
        doc = build_document(
            journal,
            network=network,
            state=None if remembered else now.state,
            target=None if remembered else now.target,
            state_dir=config.state_dir,
            summary=now.memo,
        )
        if element is not None and element not in doc["elements"]:
            known = ", ".join(doc["elements"]) or "none yet"
            raise UsageProblem(f"no status for element {element!r}; known: {known}")
    finally:
        journal.close()
    doc = filtered(doc, element=element, kind=kind_name)
    secrets = None if remembered else now.secrets
    if secrets is not None:
        doc = without_secret_values(doc, secrets.unresolved, secrets.config_changed)
    problems = now.problems
    if remembered:
        run = doc.get("run") or {}
        when = f" (finished {run['finished']})" if run.get("finished") else ""
        return Status(doc, problems, network, bound, f"run {run.get('id')}{when}")
    return Status(doc, problems, network, bound)


def _named(config: Config, now: StatusInputs) -> tuple[str | None, int]:
    """The network's name and the markdown bound of provgit.yaml as it is on
    disk: the memo's when its target stands for the config as read and the
    file is still the one read (its settings are then the memo's: no pydantic
    needed to read them), else provgit.yaml's."""
    if now.memo is not None and _settings_as_read(config):
        return now.memo.network, now.memo.markdown_max_bytes
    from provgit.model.settings import Settings

    settings = config.settings()
    network = settings.network if settings is not None else None
    return network, (settings or Settings()).reports.markdown_max_bytes


def _settings_as_read(config: Config) -> bool:
    # A Config keeps its source: the file may have changed since it was read.
    read = next((f.data for f in config.source.files if f.path == SETTINGS_FILE), None)
    try:
        return read is not None and read == read_config_file(config.root / SETTINGS_FILE)
    except OSError:
        return False


def _remembered_only(config: Config) -> bool:
    """Whether the status can only be the one the shared journal records: it
    is on PostgreSQL and this machine never observed an element (another host
    runs the network; its observations stay there). Deriving against the
    config would call every resource unknown, which says nothing true."""
    if journal_location() is None:
        return False
    observed = config.state_dir / "observed"
    return not observed.is_dir() or not any(observed.iterdir())


@dataclass(frozen=True)
class Hold:
    """A suspension set (or, from resume, lifted: None when there was none)."""

    element: str | None  # None: the whole network
    suspension: Suspension | None
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return self.suspension.to_json() if self.suspension is not None else {}


def who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _check_element(config: Config, element: str | None) -> list[str]:
    """A mistyped element would hold nothing: refuse a name the config lacks.
    A config that does not validate cannot say; then only a warning (a freeze
    must still be possible while the config is broken)."""
    if element is None:
        return []
    from provgit.validate import validate_source

    valid = validate_source(config.source, config.cache_dir)
    if not valid.ok:
        return [
            f"warning: the config at {config.root} does not validate; "
            f"element {element!r} not checked"
        ]
    if element not in valid.state.elements:
        known = ", ".join(valid.state.elements)
        raise UsageProblem(f"unknown element {element!r} (known: {known})")
    return []


def suspend(config: Config, reason: str, element: str | None, by: str | None) -> Hold:
    if not reason.strip():
        raise UsageProblem("--reason must say why (it is shown in the status)")
    warnings = _check_element(config, element)
    journal = open_journal(config.state_dir)
    try:
        s = journal.suspend(element or NETWORK, reason.strip(), by or who(), time.time())
    finally:
        journal.close()
    return Hold(element, s, warnings)


def resume(config: Config, element: str | None, by: str | None) -> Hold:
    warnings = _check_element(config, element)
    journal = open_journal(config.state_dir)
    try:
        s = journal.resume(element or NETWORK, by or who())
    finally:
        journal.close()
    return Hold(element, s, warnings)
