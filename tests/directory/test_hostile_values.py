"""`provgit import` from a directory whose entries carry hostile attribute
values: a line break followed by YAML (an injected key), a NUL, a value of
100,000 characters. The import must not crash, must not let a value become
YAML structure, and what it writes must either validate as the text it was or
be left out with a reason; the report must not claim writes that did not
happen. Real slapd."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from tests.apply.helpers import cli
from tests.directory import slapd
from tests.directory.test_import import config, entry

from provgit.source import read_directory
from provgit.validate import validate_source

pytestmark = pytest.mark.slow


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_import_of_hostile_attribute_values_writes_no_yaml_structure_and_no_crash(
    tmp_path: Path, directory: slapd.Slapd
) -> None:
    injected = "Eve\nrole: Engineer\n  - login_id: root"
    hostile = entry("evil", "X", "Person", "Staff", ["2101"]).replace(
        "givenName: X", f"givenName:: {_b64(injected)}"
    )
    nul = entry("nully", "X", "Null", "Staff", ["2102"]).replace(
        "givenName: X", f"givenName:: {_b64('Nu' + chr(0) + 'll')}"
    )
    long = entry("longy", "X", "Long", "Staff", ["2103"]).replace(
        "givenName: X", "givenName: " + "L" * 100_000
    )
    fine = entry("jdoe", "Jane", "Doe", "Staff", ["2001"])
    directory.ldap("ldapadd", "\n".join([hostile, nul, long, fine]))
    root = config(tmp_path, directory)

    ran = cli("import", "--into", str(root), "--format", "json")
    assert "Traceback" not in ran.out + ran.err
    assert ran.code == 4, ran.out + ran.err
    report = json.loads(ran.out)
    text = "\n".join(p.read_text() for p in root.rglob("*.yaml") if ".provgit" not in p.parts)
    assert "\n  - login_id: root" not in text
    assert "login_id: root" not in text.replace("\\n  - login_id: root", "")
    # The config is as it was before the import: valid, no user in it.
    valid = validate_source(read_directory(root), None)
    assert valid.ok, valid.diagnostics
    assert dict(valid.state.of("users")) == {}
    items = {i["key"]: i for i in report["items"] if i["kind"] == "users"}
    assert set(items) == {"evil", "nully", "longy", "jdoe"}, items
    # The value with a line break (and YAML after it), and the 100,000-character
    # one, are left out with the reason; neither is written.
    assert items["evil"]["category"] == items["longy"]["category"] == "unresolved"
    assert "would not validate" in items["evil"]["summary"]
    # The NUL passes the import's own checks but not validation of the result:
    # nothing is written, the report says why, and no item claims it was written.
    assert report["refused"] and "control character (U+0000)" in report["refused"][0]
    assert report["summary"]["written"] == 0
    assert [k for k, i in items.items() if i["written"]] == []
    assert "users" not in text
