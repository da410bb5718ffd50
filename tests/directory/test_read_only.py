"""`read_only: true` on an element: observed (plan, status, import read it),
never written. Validation says when a directory and a MiCollab make sense
together: only with one of the two read_only."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from tests.apply.helpers import cli
from tests.directory.test_directory_validation import messages, network
from tests.validate.base import validate

from provgit.plan.compute import READ_ONLY_NOTE

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample-config"


def read_only(text: str, element: str) -> str:
    """`text` with `read_only: true` on `element`."""
    marked, n = re.subn(rf"(  - name: {element}\n)", r"\1    read_only: true\n", text, count=1)
    assert n == 1, element
    return marked


@pytest.mark.parametrize("which", ["mc", "dir1"])
def test_a_directory_beside_a_micollab_validates_when_one_is_read_only(
    tmp_path: Path, which: str
) -> None:
    assert messages(tmp_path, read_only(network(micollab=True), which)) == []


def test_a_directory_beside_a_writable_micollab_names_both_and_the_way_out(
    tmp_path: Path,
) -> None:
    found = messages(tmp_path, network(micollab=True))
    assert len(found) == 1, found
    # Located at the directory element's type, naming where the MiCollab is.
    assert re.match(r"^network\.yaml:\d+:\d+: directory element 'dir1'", found[0]), found
    assert re.search(r"MiCollab 'mc' at network\.yaml:\d+:\d+", found[0]), found
    hint = _hint(tmp_path, network(micollab=True))
    assert "mark one read_only: true" in hint, hint


def _hint(tmp_path: Path, text: str) -> str:
    result = validate(tmp_path / "hint", {"network.yaml": text})
    return " ".join(d.hint or "" for d in result.diagnostics)


def sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "config"
    shutil.copytree(SAMPLE, root, ignore=shutil.ignore_patterns(".provgit"))
    for line in (ROOT / "scripts" / "demo-secrets.env").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            monkeypatch.setenv(name, value)
    return root


def plan_json(root: Path) -> dict[str, dict[str, object]]:
    ran = cli("plan", str(root), "--format", "json")
    assert ran.code in (0, 2), ran.out + ran.err
    return {e["element"]: e for e in json.loads(ran.out)["elements"]}


@pytest.mark.slow
def test_a_read_only_element_is_observed_but_never_planned_or_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = sample(tmp_path, monkeypatch)
    first = cli("reconcile", str(root))
    assert first.code == 0, first.out + first.err
    elements = root / "network" / "elements.yaml"
    elements.write_text(read_only(elements.read_text(), "micollab1"))
    before = plan_json(root)["micollab1"]
    # One user removed (mchen) and one renamed: provgit's own records on
    # micollab1 now differ from the config.
    finance = root / "people" / "finance.yaml"
    text = finance.read_text()
    text = re.sub(r"  - login_id: mchen\n(?:    .*\n|      .*\n)+", "", text, count=1)
    finance.write_text(text.replace("last_name: Tremblay", "last_name: Renamed", 1))

    plan = plan_json(root)

    mc = plan["micollab1"]
    assert mc["operations"] == [], mc["operations"]
    assert mc["warnings"] == [READ_ONLY_NOTE]
    assert mc["observed_revision"] is not None  # observed all the same
    assert mc["observed_records"] == before["observed_records"]
    # The writable elements get the change and the delete.
    ops = {(op["action"], op["key"]) for op in plan["mivb1"]["operations"]}
    assert ("delete", "mchen") in ops and ("modify", "rtremblay") in ops, ops
    text_plan = cli("plan", str(root))
    assert READ_ONLY_NOTE in text_plan.out, text_plan.out

    applied = cli("apply", str(root), "--yes")
    assert applied.code == 0, applied.out + applied.err
    # The users are still on micollab1: nothing was written there.
    after = plan_json(root)["micollab1"]
    assert after["observed_records"] == before["observed_records"]
    # Status treats it as a source: no resource is waiting on it.
    status = cli("status", str(root), "--format", "json")
    doc = json.loads(status.out)
    assert "micollab1" not in json.dumps(doc.get("resources", [])), status.out


def test_the_apply_result_line_of_a_read_only_element_says_observed_not_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from provgit.report.states import READ_ONLY_TEXT

    root = sample(tmp_path, monkeypatch)
    first = cli("reconcile", str(root))
    assert first.code == 0, first.out + first.err
    elements = root / "network" / "elements.yaml"
    elements.write_text(read_only(elements.read_text(), "micollab1"))
    for command in (["reconcile", str(root)], ["apply", str(root), "--yes"]):
        ran = cli(*command)
        assert ran.code == 0, ran.out + ran.err
        lines = {line.split()[0]: line for line in ran.out.splitlines() if line[:1].isalnum()}
        # The same words as the status: observed, not written; never "Sync Completed".
        assert lines["micollab1"].split(None, 1)[1] == READ_ONLY_TEXT, ran.out
        assert lines["mivb1"].split(None, 1)[1] == "Sync Completed", ran.out
        assert f"micollab1: {READ_ONLY_TEXT}" in ran.err
        assert "micollab1: Sync Completed" not in ran.err
    status = cli("status", str(root), "--format", "json")
    doc = json.loads(status.out)
    assert doc["elements"]["micollab1"]["status"] == READ_ONLY_TEXT
