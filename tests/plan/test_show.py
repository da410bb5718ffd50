"""`provgit show KIND/KEY`: where a resource lands, its shared fields, reach-through links."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from provgit.cli import main

SAMPLE = Path(__file__).resolve().parents[2] / "sample-config"


def test_show_user_lists_landings_shared_fields_and_links(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["show", "users/jfortin", str(SAMPLE), "--format", "json", "--state-dir", str(tmp_path)],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["defined_in"] == "people/finance.yaml"
    assert [(r["element"], r["collection"]) for r in doc["landings"]] == [
        ("micollab1", "users"),
        ("mivb3", "users"),
    ]
    # Name fields land on both elements; role and email only on MiCollab.
    assert "first_name" in doc["shared_fields"] and "role" not in doc["shared_fields"]
    links = {r["element"]: r["link"] for r in doc["landings"]}
    assert links["mivb3"] == (
        "https://mivb3.example.net/admin/User%20and%20Device%20Configuration?key=jfortin"
    )
    assert all("value" not in str(r["fields"].get("voicemail_pin", "")) for r in doc["landings"])


def test_show_accepts_kind_aliases_and_case_insensitive_role_names(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["show", "cos/1", str(SAMPLE), "--state-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "Class of Service Options" in result.output
    result = CliRunner().invoke(
        main, ["show", "role/finance analyst", str(SAMPLE), "--state-dir", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "role Finance Analyst" in result.output


def test_show_unknown_resource_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["show", "users/nobody", str(SAMPLE), "--state-dir", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert "no user 'nobody'" in result.output
