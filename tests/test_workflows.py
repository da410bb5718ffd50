"""The GitHub workflows are valid (actionlint), pass a security audit (zizmor), and the
reusable one keeps its contract: annotations placed for any config-path, one comment
under GitHub's size limit."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed; the test extra has it (pip install -e '.[test]')")
    return found


def _actionlint() -> str:
    return _tool("actionlint")


def _zizmor(*paths: Path) -> subprocess.CompletedProcess[str]:
    # Offline: no GitHub API (the online audits need a token and the network).
    # Pedantic: every audit, including the ones that only ask for an explanation.
    return subprocess.run(
        [_tool("zizmor"), "--offline", "--persona", "pedantic", "--no-progress", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1"},
    )


def _workflow(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = YAML(typ="safe").load((ROOT / ".github/workflows" / name).read_text())
    return doc


def _steps(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for job in doc["jobs"].values() for s in job.get("steps", [])]


def test_every_workflow_passes_actionlint() -> None:
    assert WORKFLOWS, "no workflows found"
    result = subprocess.run(
        [_actionlint(), *map(str, WORKFLOWS)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n"
        "    steps:\n      - run: echo ${{ github.nope }}\n"
    )
    result = subprocess.run([_actionlint(), str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0


def test_every_workflow_passes_zizmor() -> None:
    result = _zizmor(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_catches_an_unpinned_action_and_persisted_credentials(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\npermissions: {}\njobs:\n  x:\n    runs-on: ubuntu-latest\n"
        "    steps:\n      - uses: actions/checkout@v4\n"
    )
    result = _zizmor(bad)
    assert result.returncode != 0
    assert "unpinned-uses" in result.stdout and "artipacked" in result.stdout


def test_every_action_is_pinned_to_a_commit_with_its_version_in_a_comment() -> None:
    for path in WORKFLOWS:
        for line in path.read_text().splitlines():
            if "uses:" in line:
                assert re.search(r"uses: [\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$", line), (
                    f"{path.name}: {line.strip()}"
                )


def test_only_the_comment_job_may_write_to_pull_requests() -> None:
    doc = _workflow("provgit-config.yml")
    assert doc["permissions"] == {}
    jobs = doc["jobs"]
    assert jobs["check"]["permissions"] == {"contents": "read"}
    assert jobs["comment"]["permissions"] == {"pull-requests": "write"}
    # The comment job runs nothing from the pull request: no checkout, no install.
    assert not any("checkout" in s.get("uses", "") or "run" in s for s in jobs["comment"]["steps"])


def test_reusable_workflow_is_callable_and_comments_once() -> None:
    doc = _workflow("provgit-config.yml")
    assert "workflow_call" in doc["on"]
    steps = _steps(doc)
    runs = " ".join(s.get("run", "") for s in steps)
    assert "provgit validate" in runs and "--format github" in runs
    assert "provgit diff" in runs and "provgit plan" in runs
    script = next(s["with"]["script"] for s in steps if "github-script" in s.get("uses", ""))
    # Updated in place: the comment is found by the marker the markdown renderer writes.
    from provgit.render.plan_markdown import MARKER

    assert MARKER in script and "updateComment" in script


def test_ci_workflow_runs_the_readme_test_command() -> None:
    doc = _workflow("ci.yml")
    runs = [s.get("run", "") for s in doc["jobs"]["test"]["steps"]]
    assert "bash .ci/run" in runs
    assert "scripts/test" in (ROOT / ".ci/run").read_text()


def _step(name: str) -> dict[str, Any]:
    return next(s for s in _steps(_workflow("provgit-config.yml")) if s.get("name") == name)


def _run_validate_step(cwd: Path, config: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    # GitHub runs a `run:` block as `bash -e {0}`.
    script = tmp / "validate.sh"
    script.write_text(_step("Validate")["run"])
    env = {
        **os.environ,
        "CONFIG": config,
        "RUNNER_TEMP": str(tmp),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    return subprocess.run(
        ["bash", "-e", str(script)], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("config", "prefix"),
    [
        (".", ""),
        ("configs/north", "configs/north/"),
        ("./configs/north/", "configs/north/"),
        ("configs/a,b", "configs/a%2Cb/"),
    ],
)
def test_validate_annotations_name_files_from_the_repository_root(
    tmp_path: Path, config: str, prefix: str
) -> None:
    repo = tmp_path / "repo"
    root = repo / config
    shutil.copytree(ROOT / "sample-config", root)
    (root / "people" / "bad.yaml").write_text("departments:\n  - name: Sales2\n    colour: red\n")
    result = _run_validate_step(root if config == "." else repo, config, tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    annotations = [line for line in result.stdout.splitlines() if line.startswith("::error ")]
    assert annotations, result.stdout + result.stderr
    assert any(f" file={prefix}people/bad.yaml,line=3," in a for a in annotations), annotations
    for a in annotations:
        assert f" file={prefix}" in a and "file=./" not in a


def _run_comment_script(tmp_path: Path, body: str, existing: list[dict[str, Any]]) -> Any:
    node = _tool("node")
    script = _step("Comment on the pull request (one comment, updated in place)")["with"]["script"]
    (tmp_path / "provgit-report").mkdir()
    (tmp_path / "provgit-report" / "comment.md").write_text(body, encoding="utf-8")
    # github-script runs the script as the body of an async function with `github`
    # (an Octokit) and `context` in scope; here they record what would be sent.
    harness = (
        "const calls = [];\n"
        f"const existing = {json.dumps(existing)};\n"
        "const record = (kind) => async (args) => { calls.push({kind, ...args}); };\n"
        "const github = {paginate: async () => existing, rest: {issues: {listComments: null,"
        " updateComment: record('update'), createComment: record('create')}}};\n"
        "const context = {serverUrl: 'https://github.com', runId: 42,"
        " repo: {owner: 'o', repo: 'r'}, issue: {number: 7}};\n"
        f"(async () => {{\n{script}\n}})().then(() => console.log(JSON.stringify(calls)));\n"
    )
    (tmp_path / "harness.js").write_text(harness, encoding="utf-8")
    result = subprocess.run(
        [node, "harness.js"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_pr_comment_is_cut_under_githubs_limit_and_points_at_the_whole_report(
    tmp_path: Path,
) -> None:
    from provgit.render.plan_markdown import MARKER

    rows = "".join(f"| user{n} | Zoë ✓ 𝄞 | add |\n" for n in range(6000))
    body = f"{MARKER}\n### plan\n\n{rows}"
    assert len(body) > 120_000
    calls = _run_comment_script(tmp_path, body, existing=[])
    assert [c["kind"] for c in calls] == ["create"] and calls[0]["issue_number"] == 7
    sent = calls[0]["body"]
    # GitHub counts characters; JavaScript's length counts UTF-16 units, never fewer.
    assert len(sent.encode("utf-16-le")) // 2 <= 65_536
    assert sent.startswith(MARKER)
    assert "https://github.com/o/r/actions/runs/42" in sent
    kept = sent.split("\n\n**Cut at")[0]
    assert body.startswith(kept) and kept.endswith("|")


def test_pr_comment_updates_the_marked_comment_and_keeps_a_short_body_whole(
    tmp_path: Path,
) -> None:
    from provgit.render.plan_markdown import MARKER

    body = f"{MARKER}\n### plan\n\nno changes\n"
    existing = [{"id": 1, "body": "LGTM"}, {"id": 9, "body": f"{MARKER}\nold"}]
    calls = _run_comment_script(tmp_path, body, existing)
    assert calls == [{"kind": "update", "owner": "o", "repo": "r", "comment_id": 9, "body": body}]
