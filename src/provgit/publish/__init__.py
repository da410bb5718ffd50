"""Writing the reports of a run, all rendered from one status document (`report.document`).

After every apply or reconcile the reports directory holds:

  status.json  the document itself (`provgit.status/1`, schemas/status.schema.json)
  status.md    markdown, summary first, bounded by `reports.markdown_max_bytes`
  index.html   a self-contained status page
  feed.atom    the events as an Atom 1.0 feed

each written atomically (temporary file, then rename), and, when the config is
in a git work tree, a note under `refs/notes/provgit` on the applied commit.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provgit.apply.result import ApplyResult
from provgit.fsutil import atomic_write
from provgit.journal import Journal
from provgit.model.settings import Reports
from provgit.model.state import DesiredState
from provgit.observe import Observation
from provgit.plan.model import ElementPlan
from provgit.projection.project import Target
from provgit.publish import kept_html, notes
from provgit.render.status_files import (
    FEED_FILE,
    HTML_FILE,
    MARKDOWN_FILE,
    STATUS_FILE,
    render_all,
    status_json,
)
from provgit.report.document import FORMAT, MAX_EVENTS, Document, GitSource, build_document

STATUS_FORMAT = FORMAT
# The feed keeps more history than the page: readers poll, and may poll late.
FEED_EVENTS = 200

__all__ = [
    "FEED_FILE",
    "HTML_FILE",
    "MARKDOWN_FILE",
    "MAX_EVENTS",
    "REPORTS_DIR_ENV",
    "STATUS_FILE",
    "STATUS_FORMAT",
    "ReportsDirOutside",
    "Written",
    "build_document",
    "render_all",
    "reports_dir",
    "status_json",
    "write_reports",
    "write_status",
]


@dataclass
class Written:
    """What `write_reports` did: the files, the document, and problems worth a warning."""

    directory: Path
    document: Document
    files: list[Path] = field(default_factory=list)
    note_commit: str | None = None
    warnings: list[str] = field(default_factory=list)


# The operator's own reports directory (any path): the environment is theirs,
# the repository's `reports.dir` is whoever merged last.
REPORTS_DIR_ENV = "PROVGIT_REPORTS_DIR"


class ReportsDirOutside(OSError):
    """`reports.dir` reaches outside the config root and state directory
    through a symbolic link: nothing is written there."""


def reports_dir(state: DesiredState, config_root: Path, state_dir: Path) -> Path:
    """`reports.dir`: relative to the config root; a leading `.provgit` means the state dir.

    PROVGIT_REPORTS_DIR overrides it. Raises ReportsDirOutside when the
    configured directory leads, once symlinks are followed, outside both the
    config root and the state directory (validation refused '..' and absolute
    paths already; a link is only seen here)."""
    override = os.environ.get(REPORTS_DIR_ENV)
    if override:
        return Path(override)
    configured = Path(state.settings.reports.dir)
    if configured.parts and configured.parts[0] == ".provgit":
        found = state_dir.joinpath(*configured.parts[1:])
    else:
        found = config_root / configured
    try:
        real = found.resolve()
        inside = any(real.is_relative_to(root.resolve()) for root in (config_root, state_dir))
    except (OSError, RuntimeError):  # a link loop: writing there fails on its own
        inside = True
    if not inside:
        raise ReportsDirOutside(
            f"reports.dir {state.settings.reports.dir!r} leads outside the config root and "
            f"the state directory (to {real}, through a symbolic link); nothing was written "
            f"there: remove the link, or set {REPORTS_DIR_ENV} to publish elsewhere",
        )
    return found


def publish(path: Path, data: bytes) -> None:
    """Write atomically, readable by others (a page a web server serves)."""
    atomic_write(path, data, mode=0o644)


def _git_source(
    journal: Journal, run_id: int | None, config_root: Path, ignore: Path
) -> GitSource | None:
    found = notes.git_source(config_root, ignore=[ignore])
    if found is None:
        return None
    # A run planned from a git commit (not the work tree) applied exactly that commit.
    for run in journal.runs(1):
        if run["id"] == run_id and run["commit"]:
            return GitSource(commit=str(run["commit"]), dirty=False, path=found.path)
    return found


def write_reports(
    reports_dir: Path,
    journal: Journal,
    *,
    result: ApplyResult | None = None,
    state: DesiredState | None = None,
    config_root: Path | None = None,
    settings: Reports | None = None,
    target: Target | None = None,
    observations: Mapping[str, Observation] | None = None,
    plans: Mapping[str, ElementPlan] | None = None,
    target_version: object = None,
    target_delta: Any = None,
) -> Written:
    """Write every report for the journal's latest state; add the git note.

    `state` gives element types and reach-through links, `config_root` the git
    work tree for the note; both are optional (the reports are then written
    without links, and without a note). File errors raise OSError; git
    problems never raise and come back as warnings.
    """
    reports = settings or (state.settings.reports if state is not None else Reports())
    # One reading of the environment for the (three) git commands.
    with notes.environment_read_once():
        git = (
            _git_source(journal, result.run_id if result else None, config_root, reports_dir)
            if config_root is not None
            else None
        )
        doc = build_document(
            journal,
            result=result,
            state=state,
            git=git,
            target=target,
            observations=observations,
            plans=plans,
            target_version=target_version,
            target_delta=target_delta,
        )
        feed_doc = {**doc, "events": [e.to_json() for e in journal.recent_events(FEED_EVENTS)]}
        written = Written(reports_dir, doc)
        # The page's resource list: read back when the last report's was of the same entries.
        section = kept_html.resources_html(doc, journal.path.parent)
        for name, text in render_all(doc, feed_doc, reports.markdown_max_bytes, section).items():
            path = reports_dir / name
            publish(path, text.encode())
            written.files.append(path)
        if git is not None and config_root is not None and reports.git_notes:
            noted, warning = notes.write_and_push(config_root, doc, reports.push_notes)
            if noted:
                written.note_commit = git.commit
            if warning is not None:
                written.warnings.append(f"{warning} (commit {git.commit[:12]})")
    return written


def _stderr_warning(message: str) -> None:
    sys.stderr.write(f"warning: {message}\n")


def write_status(
    reports_dir: Path,
    result: ApplyResult,
    journal: Journal,
    *,
    state: DesiredState | None = None,
    config_root: Path | None = None,
    warn: Callable[[str], None] = _stderr_warning,
) -> Path:
    """Write every report of a finished run; return the path of `status.json`.

    Kept for the apply/reconcile commands: pass `state` and `config_root` to
    get reach-through links and the git note.
    """
    written = write_reports(
        reports_dir, journal, result=result, state=state, config_root=config_root
    )
    for message in written.warnings:
        warn(message)
    return reports_dir / STATUS_FILE
