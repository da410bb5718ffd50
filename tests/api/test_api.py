"""The library API driven directly on the sample config and its embedded
elements: return values and typed errors, never printed output."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from tests.watch.helpers import git

from provgit.api import (
    Applied,
    Config,
    ConfigNotFound,
    ImportReport,
    InvalidConfig,
    JournalUnavailable,
    NothingToDo,
    PlanOptions,
    PlanRefused,
    PlanRun,
    UsageProblem,
    open_saved_plan,
    retry_choice,
)

from .conftest import edit_element, element_record

NEW_USER = """\
  - login_id: zwu
    first_name: Zoe
    last_name: Wu
    email: zoe.wu@northwind.example
    department: Sales
    location: Toronto
    role: Sales Representative
    template: Desk and Softphone
    host: mivb3
    services:
      - dn: "3999"
        label: Desk
"""


def _open(sample: Path) -> Config:
    return Config.open(sample, sample.parent / "state")


def _reconcile(config: Config) -> Applied:
    return asyncio.run(config.reconcile())


def _add_user(sample: Path) -> None:
    sales = sample / "people" / "sales.yaml"
    sales.write_text(sales.read_text() + NEW_USER)


def _seed_intruder(config: Config, dn: str) -> None:
    """A user on mivb3 holding `dn`, made by the element's own admin (not provgit)."""
    record = element_record(config.state_dir, "mivb3", "users", "jpatel")
    record["login_id"] = "intruder"
    record["services"][0]["dn"] = dn
    edit_element(config.state_dir, "mivb3", "users", "intruder", record)


def test_open_refuses_a_path_that_is_not_a_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigNotFound, match="does not exist"):
        Config.open(tmp_path / "missing")
    (tmp_path / "people").mkdir()
    with pytest.raises(ConfigNotFound, match=r"no provgit\.yaml"):
        Config.open(tmp_path / "people")
    # A lazy handle says so on first use, not before.
    lazy = Config.at(tmp_path / "missing")
    with pytest.raises(ConfigNotFound):
        lazy.validate()


def test_validate_returns_each_problem_with_its_place_and_plan_raises_invalid_config(
    sample: Path,
) -> None:
    assert _open(sample).validate().ok
    (sample / "people" / "broken.yaml").write_text(
        "users:\n  - login_id: bad\n    first_name: Bad\n    last_name: User\n    role: Nobody\n"
    )
    config = _open(sample)
    verdict = config.validate()
    assert not verdict.ok
    errors = [d for d in verdict.diagnostics if d.severity == "error"]
    assert errors and {d.location.file for d in errors} == {"people/broken.yaml"}
    assert all(d.location.line > 0 for d in errors)
    with pytest.raises(InvalidConfig) as raised:
        asyncio.run(config.plan())
    assert raised.value.diagnostics == verdict.diagnostics
    assert not (config.state_dir / "journal.sqlite").exists()


def test_plan_apply_status_in_sync_then_the_memo_plans_nothing(sample: Path) -> None:
    config = _open(sample)
    with pytest.raises(JournalUnavailable, match="no runs recorded"):
        config.status()
    with pytest.raises(UsageProblem, match="unknown element"):
        asyncio.run(config.plan(PlanOptions(elements=("nosuch",))))
    run = asyncio.run(config.plan())
    assert isinstance(run, PlanRun) and run.fresh
    assert run.plan.has_changes and {e.element for e in run.plan.elements} == set(
        run.state.elements
    )
    applied = asyncio.run(config.apply(run))
    assert applied.exit_code == 0 and applied.result.ok
    assert applied.result.counts()["ok"] == sum(run.plan.totals().values())
    assert applied.status_file is not None and applied.status_file.is_file()
    status = config.status()
    assert status.in_sync and status.problems == 0
    assert status.network == "northwind-voice"
    again = asyncio.run(_open(sample).plan())
    assert not again.plan.has_changes and not again.plan.warnings


def test_a_refused_record_is_a_distribution_error_deleted_then_retried(sample: Path) -> None:
    config = _open(sample)
    assert _reconcile(config).exit_code == 0
    _add_user(sample)
    _seed_intruder(config, "3999")
    config = _open(sample)
    refused = _reconcile(config)
    assert refused.exit_code == 4 and refused.result.distribution_errors == 1
    listed = config.distribution_errors()
    (error,) = listed.errors
    assert (error.element, error.collection, error.key) == ("mivb3", "users", "zwu")
    assert listed.alarm == "warning"
    assert not config.status().in_sync

    # Force only overwrites another user's change: nothing done.
    with pytest.raises(NothingToDo) as not_forced:
        asyncio.run(config.force([error]))
    assert "is not a conflict" in not_forced.value.skipped[0]
    assert len(config.distribution_errors().errors) == 1

    deleted = config.delete_errors(config.select_errors([error.id]))
    assert (deleted.deleted, deleted.left, deleted.alarm) == (1, 0, None)
    assert deleted.settings_read
    with pytest.raises(UsageProblem, match="no distribution error with id"):
        config.select_errors([error.id])

    # The next run tries the record again; with the DN freed a retry lands it.
    assert _reconcile(_open(sample)).result.distribution_errors == 1
    edit_element(config.state_dir, "mivb3", "users", "intruder", None)
    chosen = config.select_errors(all_=True)
    retried = asyncio.run(config.retry(chosen))
    assert retried.exit_code == 0 and not retried.not_retried
    landed = [
        (ep.element, op.key, op.status) for ep in retried.result.elements for op in ep.operations
    ]
    assert landed == [("mivb3", "zwu", "ok")]
    assert config.distribution_errors().errors == []
    assert element_record(config.state_dir, "mivb3", "users", "zwu")["services"][0]["dn"] == "3999"
    assert config.status().in_sync


class EditsDuringApply:
    """Progress that, as the apply reaches mivb3, lets another user change jpatel there."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir

    def element_started(self, element: str, total: int) -> None:
        if element == "mivb3":
            record = element_record(self.state_dir, "mivb3", "users", "jpatel")
            edit_element(
                self.state_dir, "mivb3", "users", "jpatel", {**record, "first_name": "Zed"}
            )

    def advanced(self, element: str, done: int, total: int) -> None:
        pass

    def element_finished(self, element: str, status: str) -> None:
        pass


def test_a_conflict_is_not_retried_but_forced(sample: Path) -> None:
    config = _open(sample)
    assert _reconcile(config).exit_code == 0
    sales = sample / "people" / "sales.yaml"
    sales.write_text(sales.read_text().replace("first_name: James", "first_name: Jim"))
    config = _open(sample)
    run = asyncio.run(config.plan())
    applied = asyncio.run(config.apply(run, progress=EditsDuringApply(config.state_dir)))
    assert applied.exit_code == 4
    (error,) = config.distribution_errors(element="mivb3").errors
    assert (error.key, error.error_type) == ("jpatel", "conflict")
    assert element_record(config.state_dir, "mivb3", "users", "jpatel")["first_name"] == "Zed"

    retried, skipped = retry_choice([error])
    assert retried == [] and "changed by another user" in skipped[0]
    with pytest.raises(NothingToDo):
        asyncio.run(config.retry([error]))

    forced = asyncio.run(config.force([error]))
    assert forced.exit_code == 0
    assert element_record(config.state_dir, "mivb3", "users", "jpatel")["first_name"] == "Jim"
    assert config.distribution_errors().errors == []


def test_a_saved_plan_applies_once_checked_and_a_tampered_one_is_refused(
    sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(sample.parent)
    config = _open(sample)
    run = asyncio.run(config.plan())
    signed = config.sign(run)
    saved = sample.parent / "plan.json"
    config.save_plan(signed, saved)

    doc = json.loads(saved.read_text())
    op = doc["elements"][0]["operations"][0]
    op["key"] = op["key"] + "x"
    tampered = sample.parent / "tampered.json"
    tampered.write_text(json.dumps(doc))
    with pytest.raises(PlanRefused) as refused:
        open_saved_plan(tampered, sample, config.state_dir)
    assert refused.value.problems and "signature" in refused.value.problems[0]
    with pytest.raises(UsageProblem, match="not in the plan"):
        open_saved_plan(saved, sample, config.state_dir, elements=["nosuch"])

    checked = open_saved_plan(saved, sample, config.state_dir)
    assert not checked.run.fresh and checked.run.plan.totals() == run.plan.totals()
    applied = asyncio.run(checked.config.apply(checked.run))
    assert applied.exit_code == 0
    # Applied once: the elements moved since it was made, so again is refused.
    again = asyncio.run(checked.config.apply(open_saved_plan(saved, sample, config.state_dir).run))
    assert again.exit_code == 3 and all(e.refusal for e in again.result.elements if e.operations)


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*.yaml")}


def test_import_dry_run_reports_and_writes_no_yaml(sample: Path) -> None:
    config = _open(sample)
    assert _reconcile(config).exit_code == 0
    before = _tree(sample)
    report = asyncio.run(config.import_network(dry_run=True))
    assert isinstance(report, ImportReport)
    assert report.files == [] and report.refused == [] and report.exit_code == 0
    assert _tree(sample) == before
    assert (report.report_dir / "import.json").is_file()
    assert json.loads((report.report_dir / "import.json").read_text()) == json.loads(
        json.dumps(report.report)
    )
    with pytest.raises(UsageProblem, match="unknown element"):
        asyncio.run(config.import_network(["nosuch"], dry_run=True))


def test_suspend_then_resume_returns_the_hold(sample: Path) -> None:
    config = _open(sample)
    with pytest.raises(UsageProblem, match="reason"):
        config.suspend("  ")
    with pytest.raises(UsageProblem, match="unknown element"):
        config.suspend("maintenance", element="nosuch")
    held = config.suspend("maintenance", element="mivb1", by="ops")
    assert held.suspension is not None and held.suspension.reason == "maintenance"
    assert config.resume("mivb1", by="ops").suspension is not None
    assert config.resume("mivb1", by="ops").suspension is None


def test_open_commit_diffs_two_commits_without_contacting_an_element(sample: Path) -> None:
    git(sample, "init", "-q", "-b", "main")
    git(sample, "add", "-A")
    git(sample, "commit", "-q", "-m", "base")
    sales = sample / "people" / "sales.yaml"
    sales.write_text(sales.read_text().replace("first_name: James", "first_name: Jim"))
    git(sample, "commit", "-q", "-am", "rename")
    head = Config.open_commit(sample, "HEAD", sample.parent / "state")
    base = Config.open_commit(sample, "HEAD~1", sample.parent / "state")
    diff = head.diff_against(base, "HEAD~1..HEAD")
    assert diff.base_valid
    changed = {
        (e.element, op.action, op.collection, op.key)
        for e in diff.plan.elements
        for op in e.operations
    }
    assert ("mivb3", "modify", "users", "jpatel") in changed
    assert all(key == "jpatel" for _, _, _, key in changed)
    assert not (sample.parent / "state" / "elements").exists()  # nothing contacted
    with pytest.raises(UsageProblem):
        Config.open_commit(sample, "no-such-rev")


def test_reconcile_lets_its_plan_go_before_the_reports(
    sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first rollout's reports read the stored target beside whatever the
    run still holds: the plan (every operation and its fields) is let go first."""
    import gc
    import weakref

    from provgit.api import running
    from provgit.api.config import Config as ConfigClass

    plans: list[weakref.ref[object]] = []
    alive_at_report: list[bool] = []
    planned = ConfigClass.plan

    async def plan_and_watch(self: Config, *args: object, **kw: object) -> object:
        run = await planned(self, *args, **kw)  # type: ignore[arg-type]
        plans.append(weakref.ref(run.plan))
        return run

    write_report = running.write_report

    def report(*args: object, **kw: object) -> object:
        gc.collect()
        alive_at_report.append(plans[-1]() is not None)
        return write_report(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(ConfigClass, "plan", plan_and_watch)
    monkeypatch.setattr(running, "write_report", report)
    applied = _reconcile(_open(sample))
    assert applied.exit_code == 0 and applied.result.ok
    assert alive_at_report == [False]
