"""The watcher's status reports: the document from the API
(`provgit.api.watching.status_document`), written with `provgit.publish`.

Directory mode writes the reports exactly as `provgit reconcile` does
(`write_reports`, with the note when the config sits in a git work tree).
Git mode follows a repository that has no work tree (a bare clone, or a bare
repository used as it is), which `write_reports` cannot find a commit in, so
the note on the applied commit is written here from the same document, with
the same `notes` functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from provgit.api.watching import (
    ApplyResult,
    DesiredState,
    Document,
    Journal,
    Observation,
    StatusPlans,
    Target,
)
from provgit.api.watching import status_document as document
from provgit.publish import notes, write_reports
from provgit.render import status_atom, status_html
from provgit.render.status_files import status_json

__all__ = [
    "REFRESH_SECONDS",
    "document",
    "dumps",
    "render_atom",
    "render_html",
    "write_files",
    "write_note",
]

REFRESH_SECONDS = 5


def write_files(
    directory: Path,
    journal: Journal,
    result: ApplyResult,
    state: DesiredState,
    work_tree: Path | None,
    target: Target | None = None,
    observations: Mapping[str, Observation] | None = None,
    plans: StatusPlans | None = None,
) -> list[str]:
    """Every report file (and, with a work tree, its note); returns warnings. Raises OSError."""
    written = write_reports(
        directory,
        journal,
        result=result,
        state=state,
        config_root=work_tree,
        target=target,
        observations=observations,
        plans=plans[2] if plans else None,
        target_version=plans[0] if plans else None,
        target_delta=plans[1] if plans else None,
    )
    return list(written.warnings)


def write_note(repo: Path, doc: Document, push: bool) -> str | None:
    """The note on the document's commit in `repo` (bare or not); a warning, never a raise."""
    return notes.write_and_push(repo, doc, push)[1]


def render_html(doc: Document) -> str:
    """The status page, made live: it refreshes itself in place every few
    seconds (no reload, so filters, scroll and the URL fragment stay)."""
    return status_html.render(doc, live_seconds=REFRESH_SECONDS)


def render_atom(doc: Document, *, page: str, self_href: str) -> str:
    """The feed as served: `page` and `self_href` as URLs on the server."""
    return status_atom.render(doc, page=page, self_href=self_href)


def dumps(doc: Document) -> str:
    return status_json(doc)
