"""`provgit status`: the journal's latest state, filters and exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from provgit.cli import main

from .conftest import Lab
from .test_documents import validator


def status(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, ["status", *args], catch_exceptions=False)
    return r.exit_code, r.stdout, r.stderr


def test_text_lists_problems_in_the_seeds_words(lab: Lab) -> None:
    code, out, _ = status(str(lab.root))
    assert code == 4
    first = out.splitlines()[0]
    assert first == (
        "lab: Sync Incomplete — 1 distribution error(s), 0 pending update(s), warning alarm"
    )
    assert "  mivb2    Failed mivb2" in out and "  mcl      Sync Completed" in out
    assert "users/asmith ⇄  Sync Incomplete" in out
    assert "DN 2002 is already used by users/intruder" in out


def test_json_is_the_status_document(lab: Lab) -> None:
    code, out, _ = status(str(lab.root), "--format", "json")
    doc = json.loads(out)
    assert code == 4 and list(validator().iter_errors(doc)) == []
    assert doc["distribution_errors"][0]["element"] == "mivb2"


def test_filters(lab: Lab) -> None:
    code, out, _ = status(str(lab.root), "--element", "mivb1", "--format", "json")
    doc = json.loads(out)
    assert code == 0 and list(doc["elements"]) == ["mivb1"]
    assert doc["distribution_errors"] == [] and doc["in_sync"]
    code, out, _ = status(str(lab.root), "--element", "mivb2", "--format", "json")
    shown = json.loads(out)["resources"]
    # Every resource landing on mivb2, each as it stands there: only asmith is not completed.
    assert code == 4 and [r["resource"] for r in shown if r["state"] != "completed"] == ["asmith"]
    assert all(list(r["elements"]) == ["mivb2"] and r["total"] == 1 for r in shown)
    # A kind answers for that kind alone; "cos" is an alias.
    code, out, _ = status(str(lab.root), "--kind", "cos", "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["filter"] == {"element": None, "kind": "classes_of_service"}
    assert {r["kind"] for r in doc["resources"]} == {"classes_of_service"}
    code, out, _ = status(str(lab.root), "--kind", "users")
    assert code == 4 and "Showing kind users only" in out


def test_markdown_format(lab: Lab) -> None:
    code, out, _ = status(str(lab.root), "--format", "markdown", "--max-bytes", "1000")
    assert code == 4 and out.startswith("## provgit: Sync Incomplete — lab")
    assert len(out.encode()) <= 1000


def test_usage_errors(lab: Lab, tmp_path: Path) -> None:
    code, _, err = status(str(lab.root), "--kind", "phones")
    assert code == 1 and "unknown kind 'phones'" in err
    code, _, err = status(str(lab.root), "--element", "nope")
    assert code == 1 and "no status for element 'nope'; known: ivr1, mcl, mivb1, mivb2" in err
    code, _, err = status(str(tmp_path))
    assert code == 1 and "no runs recorded" in err and "Traceback" not in err
    assert not (tmp_path / ".provgit").exists(), "status creates no state"


def test_a_config_that_does_not_validate_is_not_reported_in_sync(lab: Lab, tmp_path: Path) -> None:
    # A copy: the lab is shared by the session's tests.
    root = tmp_path / "config"
    shutil.copytree(lab.root, root, ignore=shutil.ignore_patterns(".git"))
    net = next(p for p in root.glob("*.yaml") if "role: Agent" in p.read_text())
    net.write_text(net.read_text().replace("role: Agent", "role: Nope", 1))
    code, out, err = status(str(root))
    assert code == 1
    assert "does not validate (1 problem(s); `provgit validate" in err
    assert "this is the status of the last valid config" in err
    assert out.startswith("lab: ")  # the last valid config's status is still shown
