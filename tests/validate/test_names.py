"""validate names a resource the way plan names its records (`cos/12`)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from provgit.cli import main

from .base import BASE, TELEPHONY, write

LONG_COMMENT = "  - number: 12\n    comment: international calls\n"
FIXED = "  - number: 12\n    comment: intl\n"


def test_validate_and_plan_both_call_a_class_of_service_cos_slash_number(tmp_path: Path) -> None:
    config = tmp_path / "config"
    bad_telephony = TELEPHONY.replace("cor_groups:", LONG_COMMENT + "cor_groups:")
    write(config, {**BASE, "telephony.yaml": bad_telephony})
    runner = CliRunner()
    bad = runner.invoke(main, ["validate", str(config)])
    assert bad.exit_code == 1
    assert "[cos/12]" in bad.stderr + bad.stdout
    assert "classes_of_service/12" not in bad.stderr + bad.stdout
    github = runner.invoke(main, ["validate", str(config), "--format", "github"])
    assert "title=provgit cos/12::" in github.stdout

    write(config, {"telephony.yaml": TELEPHONY.replace("cor_groups:", FIXED + "cor_groups:")})
    plan = runner.invoke(main, ["plan", str(config), "--state-dir", str(tmp_path / "state")])
    assert plan.exit_code == 0, plan.output
    assert "cos/12" in plan.stdout
