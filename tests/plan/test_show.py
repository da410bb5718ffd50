"""`provgit show KIND/KEY`: where a resource lands, its shared fields, reach-through links."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
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


MARKUP_NET = """\
elements:
  - {name: mcl, type: micollab, ceid: 1}
  - {name: cs1, type: mivb, ceid: 10, cluster: east}
classes_of_service:
  - {number: 1, comment: Default}
templates:
  - name: Basic
    phones: [{label: Desk, device_type: "6920", primary: true}]
    cos: {day: 1}
roles:
  - {name: Agent, template: Basic}
users:
  - login_id: "[red]u0"
    first_name: "[link=https://evil.example/]Ann[/link]"
    last_name: "[/bold]Lee"
    directory_name: "Lee Ann"
    role: Agent
    host: cs1
    services:
      - {dn: "3000"}
"""


def test_show_prints_rich_markup_in_names_as_written_never_as_styles_or_links(
    tmp_path: Path,
) -> None:
    # "[/bold]" in a last name crashed `show` with a MarkupError traceback;
    # "[link=...]" in a first name became a hidden terminal hyperlink.
    config = tmp_path / "config"
    config.mkdir()
    (config / "provgit.yaml").write_text("version: 1\nnetwork: t\n")
    (config / "net.yaml").write_text(MARKUP_NET)
    env = {**os.environ, "FORCE_COLOR": "1", "COLUMNS": "200"}
    argv = [sys.executable, "-m", "provgit", "show", "users/[red]u0", str(config)]
    p = subprocess.run(
        [*argv, "--state-dir", str(tmp_path / "state")],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    assert "\x1b]8;" not in p.stdout  # no OSC 8 hyperlink
    plain = re.sub(r"\x1b\[[0-9;]*m", "", p.stdout)
    assert '"[link=https://evil.example/]Ann[/link]"' in plain, plain
    assert '"[/bold]Lee"' in plain
    assert "user [red]u0" in plain and "users/[red]u0" in plain
