"""`provgit import` end to end, from real simulator processes on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import git
import pytest

from provgit.model.kinds import KINDS
from provgit.source import read_directory
from provgit.validate import validate_source

from .conftest import Simulators, cli, edit, empty_config, read

pytestmark = pytest.mark.slow

SECRET_FIELDS = {"voicemail_pin", "hot_desk_pin"}


def _without_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_secrets(v) for k, v in value.items() if k not in SECRET_FIELDS}
    if isinstance(value, list):
        return [_without_secrets(v) for v in value]
    return value


def _report(root: Path, name: str = "import") -> dict[str, Any]:
    data: dict[str, Any] = json.loads((root / ".provgit" / "import" / f"{name}.json").read_text())
    return data


def _plan_ops(root: Path) -> set[tuple[str, str, str, str]]:
    result = cli("plan", str(root), "--format", "json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    return {
        (e["element"], op["action"], op["collection"], op["key"])
        for e in plan["elements"]
        for op in e["operations"]
    }


def test_clean_network_round_trips_and_plan_is_empty(network: Any, tmp_path: Path) -> None:
    sims: Simulators = network(None)
    root = empty_config(tmp_path / "config", sims.urls)

    result = cli("import", "--into", str(root))

    assert result.exit_code == 0, result.output
    assert "0 for review, 0 unresolved" in result.output
    imported = validate_source(read_directory(root), None)
    assert imported.ok, imported.diagnostics
    truth = validate_source(read_directory(tmp_path / "truth"), None).state
    for kind in KINDS:
        if kind == "elements":
            continue
        want = {k: _without_secrets(m.model_dump()) for k, m in truth.of(kind).items()}
        got = {k: _without_secrets(m.model_dump()) for k, m in imported.state.of(kind).items()}
        assert got == want, kind
    # Secrets: placeholders only, and listed to set.
    report = _report(root)
    assert {s["env"] for s in report["set_these_secrets"]} == {
        "VOICEMAIL_PIN_WZHANG",
        "HOT_DESK_PIN_RECEPTION_2155",
    }
    assert imported.state.of("users")["wzhang"].voicemail_pin.env == "VOICEMAIL_PIN_WZHANG"
    assert (root / ".provgit" / "import" / "import.md").read_text().startswith("# Import")
    # A plan against the same elements has nothing to do.
    assert cli("plan", str(root), "--detailed-exitcode").exit_code == 0
    # Importing again changes nothing.
    again = cli("import", "--into", str(root), "--format", "json")
    assert again.exit_code == 0
    assert json.loads(again.output)["summary"]["written"] == 0


def _mess(dbs: dict[str, Path]) -> None:
    # A user whose name differs between the host (mivb2) and its partner (mivb1).
    fali = read(dbs["mivb1"], "users", "fali")
    edit(dbs["mivb1"], "put", "users", "fali", {**fali, "first_name": "Fatimah"})
    # A role whose template differs between MiCollab and a call server.
    role = read(dbs["mivb1"], "roles", "Receptionist")
    edit(dbs["mivb1"], "put", "roles", "Receptionist", {**role, "template": "Desk and Softphone"})
    # A role whose template exists nowhere.
    edit(dbs["micollab1"], "put", "roles", "Intern", {"name": "Intern", "template": "Intern Phone"})
    # Two users claiming one DN: tbrown's phone on mivb1 uses jokafor's 3106.
    base = read(dbs["micollab1"], "users", "jokafor")
    names = {"login_id": "tbrown", "first_name": "Tom", "last_name": "Brown"}
    names["directory_name"] = "Brown, Tom"
    svc = {"dn": "2190", "label": "Desk", "device_type": "6930"}
    edit(dbs["micollab1"], "put", "users", "tbrown", {**base, **names, "services": [svc]})
    phone = read(dbs["mivb3"], "users", "jokafor")
    edit(
        dbs["mivb1"],
        "put",
        "users",
        "tbrown",
        {**phone, **names, "services": phone["services"][:1]},
    )


def test_conflicted_network(network: Any, tmp_path: Path) -> None:
    sims: Simulators = network(_mess)
    root = empty_config(tmp_path / "config", sims.urls)

    result = cli("import", "--into", str(root))

    assert result.exit_code == 4, result.output  # some items Unresolved
    report = _report(root)
    category = {f"{i['kind']}/{i['key']}": i["category"] for i in report["items"]}
    assert category["users/fali"] == "review"
    assert category["roles/Receptionist"] == "review"
    assert category["roles/Intern"] == "unresolved"
    assert category["users/tbrown"] == "unresolved"
    assert category["users/jokafor"] == "unresolved"
    state = validate_source(read_directory(root), None)
    assert state.ok, state.diagnostics
    assert "tbrown" not in state.state.of("users") and "Intern" not in state.state.of("roles")
    assert state.state.of("users")["fali"].first_name == "Fatima"  # MiCollab wins
    assert state.state.of("roles")["Receptionist"].template == "Standard Desk"
    # The plan changes exactly the losing sides the report announced, nothing else.
    announced = {
        (c["element"], c["op"], c["collection"], c["key"])
        for i in report["items"]
        if i["category"] != "unresolved"
        for c in i["apply_will_change"]
    }
    assert announced == {
        ("mivb1", "modify", "users", "fali"),
        ("mivb1", "modify", "roles", "Receptionist"),
    }
    assert _plan_ops(root) == announced
    md = (root / ".provgit" / "import" / "import.md").read_text()
    assert "## Unresolved (3)" in md and "DN 3106 is claimed by two users" in md


def test_dry_run_writes_no_yaml(network: Any, tmp_path: Path) -> None:
    sims: Simulators = network(None)
    root = empty_config(tmp_path / "config", sims.urls)
    before = sorted(p.relative_to(root) for p in root.rglob("*.yaml"))
    result = cli("import", "--into", str(root), "--dry-run", "--format", "markdown")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("# Import analysis") and "Dry run" in result.output
    assert sorted(p.relative_to(root) for p in root.rglob("*.yaml")) == before


def _git(root: Path) -> git.Repo:
    repo = git.Repo.init(root)
    with repo.config_writer() as cw:
        cw.set_value("user", "name", "Test Admin")
        cw.set_value("user", "email", "admin@example.net")
    (root / ".gitignore").write_text(".provgit/\n")
    repo.git.add(".")
    repo.index.commit("config as imported")
    return repo


def test_drift_goes_to_a_new_branch_and_leaves_the_checkout_alone(
    network: Any, tmp_path: Path
) -> None:
    sims: Simulators = network(None)
    root = empty_config(tmp_path / "config", sims.urls)
    assert cli("import", "--into", str(root)).exit_code == 0
    repo = _git(root)
    # No drift yet: no branch is made.
    calm = cli("import", "--drift", "--into", str(root), "--branch", "drift/none")
    assert calm.exit_code == 0 and "No drift" in calm.output, calm.output
    assert "drift/none" not in [h.name for h in repo.heads]
    head, branch = repo.head.commit.hexsha, repo.active_branch.name
    # The user is in the middle of something: an edit and a new file, uncommitted.
    sales = root / "people" / "sales.yaml"
    sales.write_text(sales.read_text() + "# work in progress\n")
    (root / "notes.txt").write_text("todo\n")
    status = repo.git.status("--porcelain")
    # Everything but git's own files and provgit's state dir (caches, reports).
    files = {
        p: p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and not {".git", ".provgit"} & set(p.parts)
    }

    # Out-of-band changes on the running elements, by their own admin tools.
    user = read(sims.dbs["micollab1"], "users", "eclarke")
    body: dict[str, Any] = {"op": "put", "collection": "users", "key": "eclarke"}
    sims.admin(
        "micollab1", "/admin/edit", {**body, "fields": {**user, "last_name": "Clarke-Smith"}}
    )
    phone = read(sims.dbs["mivb3"], "users", "jokafor")
    phone["services"][0]["cos_day"] = "12"
    body = {"op": "put", "collection": "users", "key": "jokafor", "fields": phone}
    sims.admin("mivb3", "/admin/edit", body)

    result = cli("import", "--drift", "--into", str(root), "--branch", "drift/test")

    assert result.exit_code == 0, result.output
    assert "Branch drift/test holds the drift" in result.output
    # The checkout is exactly as it was.
    assert repo.head.commit.hexsha == head and repo.active_branch.name == branch
    assert repo.git.status("--porcelain") == status
    assert {p: p.read_bytes() for p in files} == files
    assert len(repo.git.worktree("list").splitlines()) == 1
    # The branch: one commit on HEAD, listing the changes, touching only sales.
    commit = repo.commit("drift/test")
    assert [p.hexsha for p in commit.parents] == [head]
    assert "users/eclarke" in commit.message and "users/jokafor" in commit.message
    assert set(commit.stats.files) == {"people/sales.yaml"}
    text = (commit.tree / "people" / "sales.yaml").data_stream.read().decode()
    assert "last_name: Clarke-Smith" in text and "cos: {day: 12, night1: 60}" in text
    assert "# work in progress" not in text
