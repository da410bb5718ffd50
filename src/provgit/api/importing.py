"""Import: read what the elements hold into the config as YAML (the Reconcile
wizard), or capture out-of-band changes as a commit on a new branch. Internal
to the API."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provgit.api.errors import ProvgitError, UsageProblem
from provgit.api.network import connect, observe_network
from provgit.api.sources import read_config_directory
from provgit.apply import drift_detect as drift_items
from provgit.exitcodes import APPLIED_WITH_ERRORS, OK
from provgit.fsutil import atomic_write
from provgit.importing import drift_branch as drift_git
from provgit.importing import report
from provgit.importing.analysis import Analysis, Options, analyse
from provgit.importing.writer import WriteError, check, commit, render
from provgit.journal import Journal, JournalError, journal_exists
from provgit.model.state import DesiredState
from provgit.observe import Observation
from provgit.source import ConfigSource
from provgit.validate import validate_source

if TYPE_CHECKING:
    from provgit.api.config import Config


@dataclass(frozen=True)
class ImportReport:
    """What an import found and did. `report` is the document `provgit import
    --format json` prints (also saved as JSON and markdown in `report_dir`);
    `refused`: why the config as it would be written does not validate (then
    nothing was written); `files`: the files written."""

    report: dict[str, Any]
    analysis: Analysis
    report_dir: Path
    files: list[str]
    refused: list[str]
    markdown_max_bytes: int
    mode: str = "import"
    branch: str | None = None  # drift: the branch made (None: nothing to capture)
    rendered: bool = False  # any YAML would change
    warnings: list[str] = field(default_factory=list)

    def json(self) -> str:
        return report.dumps(self.report)

    def markdown(self) -> str:
        return report.markdown(self.report, self.markdown_max_bytes)

    def text(self) -> str:
        return report.text(self.report)

    @property
    def exit_code(self) -> int:
        """4 when something was not written (Unresolved items, or a refused config), else 0."""
        if self.refused or self.analysis.by_category("unresolved"):
            return APPLIED_WITH_ERRORS
        return OK


async def _observe(
    state: DesiredState, config_root: Path, state_dir: Path, only: tuple[str, ...]
) -> dict[str, Observation]:
    network = connect(state, state_dir, config_root, only)
    try:
        return await observe_network(network, state_dir)
    finally:
        await network.close()


async def _read(
    config_root: Path, elements_root: Path, state_dir: Path, only: tuple[str, ...]
) -> tuple[ConfigSource, DesiredState, dict[str, Observation]]:
    from provgit.api.errors import InvalidConfig

    source = read_config_directory(config_root)
    valid = validate_source(source, state_dir / "cache")
    if not valid.ok:
        raise InvalidConfig(source.root, valid.diagnostics)
    state = valid.state
    if not state.elements:
        raise UsageProblem(
            f"the config at {config_root} defines no elements: import reads the elements "
            "the config names, so write provgit.yaml and the elements (e.g. "
            "network/elements.yaml) first"
        )
    unknown = [e for e in only if e not in state.elements]
    if unknown:
        raise UsageProblem(
            f"unknown element(s): {', '.join(unknown)} (known: {', '.join(state.elements)})"
        )
    observed = await _observe(state, elements_root, state_dir, only)
    down = {n: o for n, o in observed.items() if not o.ok}
    if down:
        detail = "; ".join(f"{n}: {o.error or o.state}" for n, o in down.items())
        raise ProvgitError(
            f"cannot read {', '.join(down)} ({detail}); nothing was written. "
            "Import from the others with --element NAME."
        )
    return source, state, observed


def _header(observed: dict[str, Observation]) -> str:
    when = time.strftime("%Y-%m-%d", time.gmtime())
    return f"Imported by `provgit import` from {', '.join(observed)} on {when}."


def _save_report(value: dict[str, Any], report_dir: Path, name: str, max_bytes: int) -> None:
    try:
        atomic_write(report_dir / f"{name}.json", report.dumps(value).encode())
        atomic_write(report_dir / f"{name}.md", report.markdown(value, max_bytes).encode())
    except OSError as e:
        raise ProvgitError(f"cannot write the report to {report_dir}: {e}") from e


def _refused(source: ConfigSource, rendered: dict[str, bytes]) -> list[str]:
    """Why the config as written would not validate (checked in memory first): then
    nothing is written."""
    return check(source, rendered) if rendered else []


async def import_network(
    config: Config,
    elements: tuple[str, ...] = (),
    dry_run: bool = False,
    prefer_element: bool = False,
    report_dir: Path | None = None,
) -> ImportReport:
    into, sdir = config.root, config.state_dir
    rdir = report_dir or sdir / "import"
    source, state, observed = await _read(into, into, sdir, elements)
    analysis = analyse(state, source, observed, Options(prefer_element=prefer_element))
    files: list[str] = []
    try:
        rendered = render(into, state, analysis.items, _header(observed))
    except WriteError as e:
        raise ProvgitError(f"{e}; nothing was written") from e
    refused = _refused(source, rendered)
    if not dry_run and not refused:
        files = commit(into, rendered)
    max_bytes = state.settings.reports.markdown_max_bytes
    value = report.build(
        analysis, network=state.settings.network, files=files, dry_run=dry_run, refused=refused
    )
    _save_report(value, rdir, "import", max_bytes)
    return ImportReport(value, analysis, rdir, files, refused, max_bytes, rendered=bool(rendered))


async def capture_drift(
    config: Config,
    elements: tuple[str, ...] = (),
    dry_run: bool = False,
    report_dir: Path | None = None,
    branch: str | None = None,
) -> ImportReport:
    into, sdir = config.root, config.state_dir
    rdir = report_dir or sdir / "import"
    branch = branch or drift_git.default_branch()
    try:
        with drift_git.head_checkout(into, branch) as checkout:
            # The config as committed; elements (embedded files, state) as configured here.
            source, state, observed = await _read(checkout.config_root, into, sdir, elements)
            analysis = analyse(state, source, observed, Options(prefer_element=True, drift=True))
            files: list[str] = []
            made: str | None = None
            rendered = render(checkout.config_root, state, analysis.items, _header(observed))
            refused = _refused(source, rendered)
            if rendered and not dry_run and not refused:
                files = commit(checkout.config_root, rendered)
                message = drift_git.commit_message(analysis)
                drift_git.commit_branch(checkout, files, message, branch)
                made = branch
    except (drift_git.DriftError, WriteError) as e:
        raise ProvgitError(str(e)) from e
    max_bytes = state.settings.reports.markdown_max_bytes
    value = report.build(
        analysis,
        network=state.settings.network,
        files=files,
        dry_run=dry_run,
        mode="drift",
        branch=made,
        refused=refused,
    )
    _save_report(value, rdir, "drift", max_bytes)
    warnings: list[str] = []
    if made and journal_exists(sdir):
        # The drift items of these elements are now on the branch: no longer
        # open, still held until the branch is merged (or overwritten).
        try:
            with Journal.open(sdir) as journal:
                drift_items.capture(journal, drift_git.drifted_elements(analysis), made)
        except JournalError as e:
            warnings.append(f"warning: drift items not marked as captured: {e}")
    return ImportReport(
        value,
        analysis,
        rdir,
        files,
        refused,
        max_bytes,
        mode="drift",
        branch=made,
        rendered=bool(rendered),
        warnings=warnings,
    )
