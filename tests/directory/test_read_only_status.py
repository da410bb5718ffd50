"""Status of a read_only directory element on a real slapd: never a landing.

Nothing provgit writes lands there, so the element says `Read only: observed,
not written by provgit` (not `Sync Completed`), no resource counts it in
`completed/total`, and it never holds back `in_sync`, whether the entries match
the config or not. How they differ is listed in status.json as information."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from tests.apply.helpers import cli
from tests.directory import slapd
from tests.directory.test_claim import rename, search
from tests.directory.test_import import CORPORATE
from tests.directory.test_import import config as import_config

from provgit.render import status_html
from provgit.report.states import READ_ONLY_TEXT

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "src" / "provgit" / "schemas" / "status.schema.json").read_text())


def status(root: Path) -> tuple[int, dict[str, Any]]:
    ran = cli("status", str(root), "--format", "json")
    doc = json.loads(ran.out)
    jsonschema.Draft202012Validator(SCHEMA).validate(doc)
    return ran.code, doc


def read_only_directory(tmp_path: Path, server: slapd.Slapd) -> Path:
    """Users imported from the directory, which is then marked read_only (a
    source): the call server is what provgit writes."""
    server.ldap("ldapadd", CORPORATE)
    root = import_config(tmp_path, server)
    assert cli("import", "--into", str(root)).code == 4  # cguest stays Unresolved
    elements = root / "network" / "elements.yaml"
    marked, n = re.subn(r"(  - name: dir1\n)", r"\1    read_only: true\n", elements.read_text())
    assert n == 1
    elements.write_text(marked)
    applied = cli("reconcile", str(root))
    assert applied.code == 0, applied.out + applied.err
    return root


def test_a_read_only_directory_that_matches_is_read_only_not_completed_and_counts_nowhere(
    tmp_path: Path, directory: slapd.Slapd
) -> None:
    root = read_only_directory(tmp_path, directory)

    code, doc = status(root)

    assert code == 0 and doc["in_sync"] is True, doc["elements"]
    dir1 = doc["elements"]["dir1"]
    assert (dir1["sync"], dir1["status"], dir1["class"]) == ("read_only", READ_ONLY_TEXT, "info")
    ro = dir1["read_only"]
    assert (ro["matching"], ro["missing"], ro["differing"]) == (3, 0, 0), ro
    assert ro["not_in_config"] == 1  # cguest: in the directory, not in the config
    assert doc["counts"]["elements_read_only"] == 1
    assert doc["counts"]["elements_not_completed"] == 0
    users = {r["resource"]: r for r in doc["resources"] if r["kind"] == "users"}
    assert set(users) == {"jdoe", "asmith", "bwong"}
    for r in users.values():  # landed on the call server only: 1/1, never 1/2
        assert (r["completed"], r["total"]) == (1, 1) and set(r["elements"]) == {"cs1"}, r
    text = cli("status", str(root))
    assert re.search(rf"dir1\s+{re.escape(READ_ONLY_TEXT)}\s+as the config says", text.out), (
        text.out
    )
    row = status_html.render(doc).split('data-element="dir1"')[1].split("</tr>")[0]
    assert f'<span class="status info">{READ_ONLY_TEXT}</span>' in row, row
    # The status.json the reconcile published says the same.
    published = json.loads((root / ".provgit" / "status" / "status.json").read_text())
    assert published["elements"]["dir1"]["read_only"] == ro, published["elements"]
    assert published["in_sync"] is True


def test_differences_on_a_read_only_directory_are_information_and_nothing_is_written(
    tmp_path: Path, directory: slapd.Slapd
) -> None:
    root = read_only_directory(tmp_path, directory)
    rename(root, "jdoe", "Doe", "Doe-Smith")
    directory.ldap("ldapdelete", f"cn=bwong,{slapd.BASE_OU}\n")
    applied = cli("reconcile", str(root))
    assert applied.code == 0, applied.out + applied.err

    code, doc = status(root)

    # The call server has the change: in sync, though the directory differs.
    assert code == 0 and doc["in_sync"] is True, doc
    ro = doc["elements"]["dir1"]["read_only"]
    assert (ro["matching"], ro["missing"], ro["differing"]) == (1, 1, 1), ro
    diffs = {(d["key"], d["change"]): d["fields"] for d in ro["differences"]}
    assert set(diffs) == {("jdoe", "differs"), ("bwong", "missing")}, diffs
    assert diffs[("jdoe", "differs")] == ["last_name"]
    assert "Doe-Smith" not in json.dumps(doc["elements"])  # names, not values
    assert doc["elements"]["dir1"]["detail"].startswith("2 of 3 record(s) differ")
    users = {r["resource"]: r for r in doc["resources"] if r["kind"] == "users"}
    assert users["jdoe"]["status"] == "Sync Completed" and users["jdoe"]["total"] == 1
    # Observed, never written: the entry is as the directory's admin left it.
    assert "sn: Doe\n" in search(directory, slapd.BASE_OU, "(sAMAccountName=jdoe)")
    text = cli("status", str(root)).out
    assert "Read-only dir1: differs from the config" in text, text
    assert re.search(r"users/jdoe\s+differs\s+last_name", text), text


def test_a_read_only_directory_that_is_down_does_not_hold_back_in_sync(
    tmp_path: Path, directory: slapd.Slapd
) -> None:
    root = read_only_directory(tmp_path, directory)
    directory.stop()
    assert cli("reconcile", str(root)).code in (0, 4, 5)

    code, doc = status(root)

    dir1 = doc["elements"]["dir1"]
    assert dir1["sync"] == "read_only" and dir1["observed"] is False, dir1
    assert dir1["status"].startswith("Read only: not observed"), dir1
    assert doc["in_sync"] is True and code == 0, doc["elements"]
