"""The sample network, reconciled onto its embedded elements, imports as nothing to do."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from tests.importing.conftest import cli
from tests.importing.sample_network import edit_user, git, snapshot, synced

__all__ = ["synced"]  # the fixture, used by name


def test_in_sync_network_imports_as_nothing_to_do(synced: Path) -> None:
    r = cli("import", "--dry-run", "--into", str(synced), "--format", "json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    summary = report["summary"]
    assert (summary["automatic"], summary["review"], summary["unresolved"]) == (0, 0, 0)
    assert report["items"] == []


def test_in_sync_network_prefer_element_writes_nothing(synced: Path) -> None:
    before = snapshot(synced)
    r = cli("import", "--prefer-element", "--into", str(synced))
    assert r.exit_code == 0, r.output
    assert snapshot(synced) == before


def test_in_sync_network_drift_makes_no_branch(synced: Path) -> None:
    heads = git(synced, "branch", "--list")
    r = cli("import", "--drift", "--into", str(synced))
    assert r.exit_code == 0, r.output
    assert git(synced, "branch", "--list") == heads
    assert "No drift" in r.output


def _record_lines(text: str, login: str) -> tuple[int, int]:
    lines = text.splitlines()
    start = lines.index(f"  - login_id: {login}")
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("  - "))
    return start, end


def test_an_element_edit_changes_only_that_records_lines(synced: Path) -> None:
    def relabel(fields: dict[str, Any]) -> None:
        fields["services"][0]["label"] = "Front"

    for element in ("micollab1", "mivb3"):
        edit_user(synced, element, "manderson", relabel)
    before = snapshot(synced)
    r = cli("import", "--prefer-element", "--into", str(synced))
    assert r.exit_code == 0, r.output
    after = snapshot(synced)
    changed = {rel for rel in before if before[rel] != after[rel]}
    assert changed == {"people/sales.yaml"}
    old, new = before["people/sales.yaml"].decode(), after["people/sales.yaml"].decode()
    (s, e), (s2, e2) = _record_lines(old, "manderson"), _record_lines(new, "manderson")
    assert old.splitlines()[:s] == new.splitlines()[:s2]
    assert old.splitlines()[e:] == new.splitlines()[e2:]
    record = "\n".join(new.splitlines()[s2:e2])
    assert "label: Front" in record
    assert "# The front desk stays reachable after hours." in record
    assert "cos: {day: 40, night1: 40}" in record  # same meaning as {day: 40}: left as written
    assert cli("validate", str(synced)).exit_code == 0


def test_import_into_a_config_without_micollab_writes_nothing_invalid(synced: Path) -> None:
    elements = synced / "network" / "elements.yaml"
    text = elements.read_text()
    start, end = text.index("  # The collaboration server"), text.index("  # Ottawa")
    elements.write_text(text[:start] + text[end:])
    shutil.rmtree(synced / "people")
    (synced / "roles-and-templates.yaml").unlink()
    assert cli("validate", str(synced)).exit_code == 0
    before = snapshot(synced)
    r = cli("import", "--into", str(synced), "--format", "json")
    assert r.exit_code == 4, r.output
    report = json.loads(r.output)
    users = [i for i in report["items"] if i["kind"] == "users"]
    assert users and all(i["category"] == "unresolved" for i in users)
    assert any("no element has type micollab" in u for i in users for u in i["unresolved"])
    assert snapshot(synced) == before  # nothing else differs, so nothing is written
    assert cli("validate", str(synced)).exit_code == 0


def test_drift_commit_names_only_what_drifted_field_by_field(synced: Path) -> None:
    def relabel(fields: dict[str, Any]) -> None:
        fields["services"][0]["label"] = "Front"

    edit_user(synced, "mivb3", "manderson", relabel)
    edit_user(synced, "micollab1", "manderson", relabel)
    before = snapshot(synced)
    r = cli("import", "--drift", "--branch", "drift/front", "--into", str(synced))
    assert r.exit_code == 0, r.output
    assert snapshot(synced) == before  # the checkout is left alone
    message = git(synced, "log", "-1", "--format=%B", "drift/front")
    subject = message.splitlines()[0]
    assert subject == "provgit: drift on micollab1, mivb3: users/manderson"
    assert (
        '- mivb3 User and Device Configuration manderson, services[0].label: "Desk" -> "Front"'
        in message
    )
    assert (
        '- micollab1 User and Services manderson, services[0].label: "Desk" -> "Front"' in message
    )
    for other in ("mivb1", "mivb2", "ivr1", "ivr2"):
        assert other not in message
    # The branch changes the one label line of that record, nothing else.
    diff = git(synced, "diff", "--unified=0", "main", "drift/front")
    changed = [
        line
        for line in diff.splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    assert changed == ["-        label: Desk", "+        label: Front"]
