"""`import.rules` in provgit.yaml: who wins when the elements disagree."""

from __future__ import annotations

from pathlib import Path

from provgit.importing import report
from provgit.importing.analysis import Analysis, Item

from .conftest import SETTINGS
from .helpers import Records, run


def _rules(**rules: str) -> dict[str, str]:
    body = "".join(f"    {k}: {v}\n" for k, v in rules.items())
    return {"provgit.yaml": SETTINGS + "import:\n  rules:\n" + body}


def _renamed_on_call_servers(r: Records) -> None:
    for element in ("mivb1", "mivb2"):  # fali's host and its resilient partner
        r[element]["users"]["fali"]["first_name"] = "Fatimah"


def _relabelled_on_micollab(r: Records) -> None:
    r["micollab1"]["users"]["eclarke"]["services"][0]["label"] = "Front desk"


def _item(analysis: Analysis, ref: str) -> Item:
    return next(i for i in analysis.items if i.ref == ref)


def test_by_default_micollab_wins_user_data_and_the_host_phone_data(tmp_path: Path) -> None:
    a = run(tmp_path / "a", _renamed_on_call_servers)
    fali = _item(a, "users/fali")
    assert fali.category == "review" and fali.data is not None
    assert fali.data["first_name"] != "Fatimah"
    assert fali.conflicts[0].chosen == "micollab1"
    assert "import.rules.user_data: micollab" in fali.conflicts[0].rule
    b = run(tmp_path / "b", _relabelled_on_micollab)
    eclarke = _item(b, "users/eclarke")
    assert eclarke.data is not None
    assert eclarke.data["services"][0].get("label") != "Front desk"
    assert "import.rules.phone_data: call_server" in eclarke.conflicts[0].rule


def test_user_data_from_the_hosting_call_server_when_the_rule_says_so(tmp_path: Path) -> None:
    a = run(tmp_path, _renamed_on_call_servers, _rules(user_data="call_server"))
    fali = _item(a, "users/fali")
    assert fali.category == "review" and fali.data is not None
    assert fali.data["first_name"] == "Fatimah"
    conflict = next(c for c in fali.conflicts if c.what == "user data")
    assert conflict.chosen == "mivb2"
    assert "import.rules.user_data: call_server" in conflict.rule
    # Email, role and template are only on the MiCollab: still taken from there.
    assert fali.data["email"] and fali.data["role"]
    # For Review shows both sides and the rule in force.
    text = report.text(report.build(a, network="n", files=[], dry_run=True))
    assert "micollab1: " in text and "Fatimah" in text
    assert "import.rules.user_data: call_server" in text
    assert any("import.rules.user_data: call_server" in r for r in a.rules)


def test_phone_labels_from_micollab_when_the_rule_says_so(tmp_path: Path) -> None:
    a = run(tmp_path, _relabelled_on_micollab, _rules(phone_data="micollab"))
    eclarke = _item(a, "users/eclarke")
    assert eclarke.data is not None
    assert eclarke.data["services"][0]["label"] == "Front desk"
    conflict = next(c for c in eclarke.conflicts if c.what == "phone data")
    assert conflict.chosen == "micollab1"
    assert "import.rules.phone_data: micollab" in conflict.rule


def test_an_unknown_rule_value_is_a_located_settings_error(tmp_path: Path) -> None:
    from provgit.source import read_directory
    from provgit.validate import validate_source

    from .helpers import config

    root = config(tmp_path, _rules(user_data="whoever"))
    result = validate_source(read_directory(root), None)
    assert not result.ok
    [d] = result.diagnostics
    assert (d.location.file, d.location.line) == ("provgit.yaml", 5)
    assert "user_data" in d.message and "call_server" in d.message
