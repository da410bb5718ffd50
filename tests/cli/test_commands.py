"""The commands people reach for: show PLAN_FILE, list, version, init, shell
completion, and the sample's .gitignore (in-process through click's runner, or
real processes where the shell or git is involved)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from apply.helpers import cli
from provgit import __version__, scaffold

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample-config"


@pytest.fixture(autouse=True)
def _no_state_dir_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)


def _git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
    }
    p = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout


def _initialised(tmp_path: Path) -> Path:
    config = tmp_path / "voice"
    r = cli("init", str(config))
    assert r.code == 0, r.out + r.err
    return config


# ---- init ------------------------------------------------------------------------


def test_init_scaffolds_a_config_that_validates_and_plans(tmp_path: Path) -> None:
    config = _initialised(tmp_path)
    for rel in (
        "provgit.yaml",
        ".gitignore",
        "elements.yaml",
        "users.yaml",
        scaffold.WORKFLOW_PATH,
    ):
        assert (config / rel).is_file(), rel
    assert "network: voice" in (config / "provgit.yaml").read_text()
    assert ".provgit/" in (config / ".gitignore").read_text().splitlines()
    valid = cli("validate", str(config))
    assert valid.code == 0, valid.out + valid.err
    plan = cli("plan", str(config), "--detailed-exitcode")
    assert plan.code == 2, plan.out + plan.err
    assert "+ add    users/jdoe" in plan.out


def test_init_refuses_to_overwrite_and_writes_nothing(tmp_path: Path) -> None:
    config = tmp_path / "voice"
    config.mkdir()
    (config / "provgit.yaml").write_text("version: 1\nnetwork: mine\n")
    r = cli("init", str(config))
    assert r.code == 1
    assert "not overwriting" in r.err and "provgit.yaml" in r.err
    assert "nothing was written" in r.err
    assert (config / "provgit.yaml").read_text() == "version: 1\nnetwork: mine\n"
    assert sorted(p.name for p in config.iterdir()) == ["provgit.yaml"]


def test_init_takes_a_network_name_and_refuses_a_bad_one(tmp_path: Path) -> None:
    r = cli("init", str(tmp_path / "a"), "--network", "east-voice")
    assert r.code == 0 and "network: east-voice" in (tmp_path / "a/provgit.yaml").read_text()
    bad = cli("init", str(tmp_path / "b"), "--network", "east voice")
    assert bad.code == 1 and "'east-voice'" in bad.err
    assert not (tmp_path / "b").exists()


def test_init_workflow_is_the_readme_caller_example() -> None:
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"```yaml\n(# \.github/workflows/provgit\.yml\n.*?)```", readme, re.S)
    assert found, "the README's caller example moved"
    assert found.group(1) == scaffold.WORKFLOW


def test_init_gitignore_keeps_state_out_of_git(tmp_path: Path) -> None:
    config = _initialised(tmp_path)
    assert cli("reconcile", str(config)).code == 0
    assert (config / ".provgit" / "elements").is_dir()
    _git(config, "init", "-q")
    _git(config, "add", "-A")
    staged = _git(config, "ls-files").split()
    assert ".provgit" not in " ".join(staged)
    assert "provgit.yaml" in staged and scaffold.WORKFLOW_PATH in staged


def test_a_copy_of_the_sample_does_not_stage_its_state(tmp_path: Path) -> None:
    copy = tmp_path / "net"
    shutil.copytree(SAMPLE, copy, ignore=shutil.ignore_patterns(".provgit"))
    assert cli("plan", str(copy)).code == 0
    assert (copy / ".provgit" / "secret.key").is_file()
    _git(copy, "init", "-q")
    _git(copy, "add", "-A")
    staged = _git(copy, "ls-files").split()
    assert not [p for p in staged if p.startswith(".provgit")]
    assert "provgit.yaml" in staged


# ---- show PLAN_FILE ------------------------------------------------------------------


def _saved_plan(tmp_path: Path) -> tuple[Path, Path]:
    config = _initialised(tmp_path)
    plan = tmp_path / "voice.plan"
    r = cli("plan", str(config), "--out", str(plan))
    assert r.code == 0, r.out + r.err
    return config, plan


def test_show_plan_file_prints_the_plan_and_checks_its_signature(tmp_path: Path) -> None:
    _, plan = _saved_plan(tmp_path)
    r = cli("show", str(plan))
    assert r.code == 0, r.out + r.err
    assert f"Saved plan {plan}" in r.out
    assert "signature: holds under the key of the config at" in r.out
    assert "Plan for network voice" in r.out
    assert "+ add    users/jdoe" in r.out
    assert "Summary: 7 to add, 0 to modify, 0 to delete on 2 of 2 element(s)" in r.out


def test_show_plan_file_as_json(tmp_path: Path) -> None:
    _, plan = _saved_plan(tmp_path)
    r = cli("show", str(plan), "--format", "json")
    assert r.code == 0, r.out + r.err
    doc = json.loads(r.out)
    assert doc["network"] == "voice" and doc["totals"] == {"add": 7, "modify": 0, "delete": 0}
    assert doc["signature"]["algorithm"] == "HMAC-SHA256"
    assert doc["signature_check"].startswith("signature: holds")


def test_show_of_an_edited_plan_says_the_signature_does_not_hold(tmp_path: Path) -> None:
    _, plan = _saved_plan(tmp_path)
    plan.write_text(plan.read_text().replace('"jdoe"', '"jdoe2"'))
    r = cli("show", str(plan))
    assert r.code == 0
    assert "signature: DOES NOT HOLD" in r.out


def test_show_of_a_file_that_is_not_a_plan_is_a_usage_error(tmp_path: Path) -> None:
    config = _initialised(tmp_path)
    r = cli("show", str(config / "users.yaml"))
    assert r.code == 1 and "is not a provgit plan" in r.err
    kind_key = cli("show", "users/jdoe", str(config))
    assert kind_key.code == 0 and "user jdoe" in kind_key.out
    neither = cli("show", "nosuch", str(config))
    assert neither.code == 1 and "or a plan file ('nosuch' is not a file)" in neither.err


def test_show_of_a_plan_missing_a_field_names_it(tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.json"
    damaged.write_text('{"format": "provgit.plan/2"}')
    r = cli("show", str(damaged))
    assert r.code == 1
    assert "plan file is damaged: field 'network' is missing" in r.err
    assert "Traceback" not in r.err and "KeyError" not in r.err


# ---- list ------------------------------------------------------------------------------


def test_list_names_every_resource_with_its_elements(tmp_path: Path) -> None:
    r = cli("list", "-C", str(SAMPLE), "--state-dir", str(tmp_path))
    assert r.code == 0, r.out + r.err
    lines = {
        line.split("  ", 1)[0].strip(): line.split("  ", 1)[1].strip()
        for line in r.out.splitlines()
    }
    assert lines["users/jfortin"] == "micollab1, mivb3"
    assert lines["cos/10"] == "mivb1, mivb2, mivb3"
    assert lines["templates/Lab Phone"] == "(lands on no element)"  # excluded from sharing
    assert not any(k.startswith("elements/") for k in lines)
    assert len([k for k in lines if k.startswith("users/")]) == 64


def test_list_of_one_kind_and_as_json(tmp_path: Path) -> None:
    cos = cli("list", "cos", "-C", str(SAMPLE), "--state-dir", str(tmp_path))
    assert cos.code == 0
    assert {line.split()[0] for line in cos.out.splitlines()} == {
        "cos/1",
        "cos/2",
        "cos/10",
        "cos/12",
        "cos/20",
        "cos/30",
        "cos/40",
        "cos/60",
    }
    elements = cli("list", "elements", "-C", str(SAMPLE), "--state-dir", str(tmp_path))
    assert "elements/mivb1" in elements.out and "mivb" in elements.out
    doc = json.loads(
        cli(
            "list", "users", "-C", str(SAMPLE), "--state-dir", str(tmp_path), "--format", "json"
        ).out
    )
    (row,) = [r for r in doc["resources"] if r["key"] == "jfortin"]
    assert row == {
        "kind": "users",
        "key": "jfortin",
        "address": "users/jfortin",
        "elements": ["micollab1", "mivb3"],
    }
    bad = cli("list", "phones", "-C", str(SAMPLE))
    assert bad.code == 1 and "unknown kind 'phones'" in bad.err


# ---- version, completion --------------------------------------------------------------


def test_version_command_and_option_agree() -> None:
    assert cli("version").out == f"provgit {__version__}\n"
    assert cli("--version").out == f"provgit {__version__}\n"
    doc = json.loads(cli("version", "--format", "json").out)
    assert doc["provgit"] == __version__ and doc["plan_format"].startswith("provgit.plan/")


def _completion(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from provgit.cli import main; main(prog_name='provgit')"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )


def test_shell_completion_script_and_answers() -> None:
    script = _completion({"_PROVGIT_COMPLETE": "bash_source"})
    assert script.returncode == 0 and "_provgit_completion()" in script.stdout
    answer = _completion(
        {"_PROVGIT_COMPLETE": "bash_complete", "COMP_WORDS": "provgit er", "COMP_CWORD": "1"}
    )
    assert answer.stdout.split() == ["plain,errors"]
    sub = _completion(
        {"_PROVGIT_COMPLETE": "bash_complete", "COMP_WORDS": "provgit errors de", "COMP_CWORD": "2"}
    )
    assert sub.stdout.split() == ["plain,delete"]
