"""The derived status (issue 12) against real simulators: what `provgit status`
says is what the elements hold, never what the last run remembered."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from apply.helpers import Sim, cli, start_sims
from provgit.render import status_html

from .test_documents import validator

SETTINGS = """\
version: 1
network: t
apply:
  retry_attempts: 1
  retry_base_seconds: 0.02
  retry_max_seconds: 0.1
"""


def write_net(
    root: Path,
    sims: list[Sim],
    *,
    workflow: str = "v1",
    users: tuple[str, ...] = ("ann", "bob"),
    workflows: tuple[str, ...] = ("Main",),
    token_env: dict[str, str] | None = None,
) -> Path:
    """An embedded MiCollab, the simulated call servers (one cluster) and IVR servers."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "provgit.yaml").write_text(SETTINGS)
    lines = ["elements:", "  - {name: mcl, type: micollab, ceid: 1}"]
    for i, sim in enumerate(sims):
        cluster = ", cluster: east" if sim.type == "mivb" else ""
        token = ""
        if token_env and sim.name in token_env:
            token = f", token: {{env: {token_env[sim.name]}}}"
        lines.append(
            f"  - {{name: {sim.name}, type: {sim.type}, ceid: {10 + i}{cluster}, driver: http, "
            f"connection: {{url: '{sim.url}', timeout: 5{token}}}, "
            f"reach_through: 'https://{sim.name}.example.net/{{form}}?key={{key}}'}}"
        )
    hosts = [s.name for s in sims if s.type == "mivb"]
    lines += [
        "classes_of_service:",
        "  - {number: 12, comment: Shared}",
        "templates:",
        "  - name: Basic",
        '    phones: [{label: Desk, device_type: "6920", primary: true}]',
        "    cos: {day: 12}",
        "roles:",
        "  - {name: Agent, template: Basic}",
        "users:",
    ]
    for n, login in enumerate(users):
        lines += [
            f"  - login_id: {login}",
            f"    first_name: {login.title()}",
            "    last_name: Person",
            "    role: Agent",
            f"    host: {hosts[n % len(hosts)]}",
            f'    services: [{{dn: "{4000 + n}"}}]',
        ]
    if any(s.type == "ivr" for s in sims):
        lines += ["ivr_media_servers:", "  - {name: ms1, host: 10.0.0.5}", "workflows:"]
        for name in workflows:
            lines += [
                f"  - name: {name}",
                f"    description: {workflow}",
                "    media_servers: [ms1]",
                '    steps: [{action: transfer, target: "2000"}]',
            ]
    (root / "net.yaml").write_text("\n".join(lines) + "\n")
    return root


def status_json(root: Path, *args: str) -> tuple[int, dict[str, Any]]:
    r = cli("status", str(root), "--format", "json", *args)
    doc = json.loads(r.out)
    assert list(validator().iter_errors(doc)) == []
    return r.code, doc


def resource(doc: dict[str, Any], kind: str, key: str) -> dict[str, Any] | None:
    found = [r for r in doc["resources"] if r["kind"] == kind and r["resource"] == key]
    return found[0] if found else None


@pytest.fixture
def net(tmp_path: Path) -> Iterator[tuple[Path, list[Sim]]]:
    sims = start_sims(
        tmp_path, [("cs1", "mivb"), ("cs2", "mivb"), ("cs3", "mivb"), ("ivr1", "ivr")]
    )
    try:
        yield tmp_path / "config", sims
    finally:
        for s in sims:
            s.stop()


def test_in_sync_after_reconcile_and_cos_counts_the_three_call_servers_it_lands_on(
    net: tuple[Path, list[Sim]],
) -> None:
    root, sims = net
    write_net(root, sims)
    assert cli("reconcile", str(root)).code == 0
    code, doc = status_json(root)
    assert code == 0 and doc["in_sync"] and doc["worst"]["state"] == "completed"
    cos = resource(doc, "classes_of_service", "12")
    assert cos is not None
    assert (cos["status"], cos["completed"], cos["total"], cos["shared"]) == (
        "Sync Completed",
        3,
        3,
        True,
    )
    assert sorted(cos["elements"]) == ["cs1", "cs2", "cs3"]
    # Reach-through per element, from the element's template.
    assert cos["elements"]["cs2"]["url"].startswith("https://cs2.example.net/")
    assert cos["elements"]["cs2"]["url"].endswith("?key=12")


def test_offline_ivr_server_and_a_changed_workflow_is_not_sync_completed(
    net: tuple[Path, list[Sim]],
) -> None:
    root, sims = net
    ivr = sims[3]
    write_net(root, sims)
    assert cli("reconcile", str(root)).code == 0
    assert cli("status", str(root), "--kind", "workflows").code == 0
    ivr.faults(offline=True)
    write_net(root, sims, workflow="v2")
    # Before any run: the change is not applied yet, and status says so.
    code, doc = status_json(root, "--kind", "workflows")
    main = resource(doc, "workflows", "Main")
    assert code != 0 and main is not None
    assert main["status"] == "Syncing IVRs 0/1 Completed" and main["state"] == "not_applied"
    # After a run that found the IVR server stopped.
    assert cli("reconcile", str(root)).code != 0
    code, doc = status_json(root, "--kind", "workflows")
    main = resource(doc, "workflows", "Main")
    assert code != 0 and not doc["in_sync"] and main is not None
    assert main["status"] != "Sync Completed" and (main["completed"], main["total"]) == (0, 1)
    assert main["status"] in (
        "IVR services are stopped or the server is offline",
        "Syncing IVRs 0/1 Completed",  # queued as a pending update at once
    )
    code, doc = status_json(root)
    assert doc["elements"]["ivr1"]["status"] == "IVR services are stopped or the server is offline"
    assert doc["elements"]["cs1"]["status"] == "Sync Completed"
    # The IVR service alarm stands beside the data distribution alarm.
    assert doc["alarm"]["ivr_service"] == ["ivr1"]
    text = cli("status", str(root)).out
    assert "Worst: ivr1: IVR services are stopped or the server is offline" in text
    assert "IVR service alarm: IVR services are stopped or the server is offline (ivr1)" in text
    assert "ivr1: IVR services are stopped or the server is offline" in status_html.render(doc)
    assert "IVR service alarm: ivr1" in status_html.render(doc)
    # Back online and reconciled: completed again, the alarm cleared.
    ivr.faults(offline=False)
    assert cli("reconcile", str(root)).code == 0
    assert status_json(root)[1]["alarm"]["ivr_service"] == []
    code, doc = status_json(root, "--kind", "workflows")
    main = resource(doc, "workflows", "Main")
    assert code == 0 and main is not None and main["status"] == "Sync Completed"


def test_an_out_of_band_edit_of_a_cos_is_drift_and_the_network_is_not_in_sync(
    net: tuple[Path, list[Sim]],
) -> None:
    root, sims = net
    write_net(root, sims)
    assert cli("reconcile", str(root)).code == 0
    cs2 = sims[1]
    fields = cs2.records()["cos"]["12"]
    edited = {k: v for k, v in fields.items() if not k.startswith("_") or k == "_managed_by"}
    edited["comment"] = "Changed"
    cs2.admin("/admin/edit", {"op": "put", "collection": "cos", "key": "12", "fields": edited})
    # `plan` reads the elements (and shows the modify); status derives from that reading.
    planned = cli("plan", str(root), "--detailed-exitcode")
    assert planned.code == 2 and "cos" in planned.out
    code, doc = status_json(root)
    cos = resource(doc, "classes_of_service", "12")
    assert code != 0 and not doc["in_sync"] and cos is not None
    assert cos["elements"]["cs2"]["state"] == "drift" and cos["state"] == "drift"
    assert cos["elements"]["cs1"]["state"] == "completed"
    assert (cos["completed"], cos["total"]) == (2, 3)
    assert doc["counts"]["drift"] == 1 and doc["worst"]["state"] == "drift"
    # The page header shows the worst state, and the seeds' pointer.
    page = status_html.render(doc)
    assert '<div id="worst" class="status failed">Drift on cs2</div>' in page
    assert "See the Server page to view the Status of Remote Servers." in page
    assert cli("status", str(root), "--kind", "cos").code != 0
    # Corrected by a reconcile: in sync again.
    assert cli("reconcile", str(root)).code == 0
    code, doc = status_json(root)
    assert code == 0 and doc["in_sync"]


def test_deleted_user_and_workflow_leave_the_status(net: tuple[Path, list[Sim]]) -> None:
    root, sims = net
    write_net(root, sims, users=("ann", "bob"), workflows=("Main", "Night"))
    assert cli("reconcile", str(root)).code == 0
    write_net(root, sims, users=("ann",), workflows=("Main",))
    # Not applied yet: the records are still on the elements, so not in sync,
    # but the removed resources are not listed.
    code, doc = status_json(root)
    assert code != 0 and doc["counts"]["records_not_deleted"] > 0
    assert resource(doc, "users", "bob") is None and resource(doc, "workflows", "Night") is None
    assert cli("reconcile", str(root)).code == 0
    code, doc = status_json(root)
    assert code == 0 and doc["in_sync"]
    assert resource(doc, "users", "bob") is None and resource(doc, "workflows", "Night") is None
    assert resource(doc, "users", "ann") is not None
    # ... and the feed says where they went, once each.
    removed = [e for e in doc["events"] if e["type"] == "resource_removed"]
    assert sorted(e["resource"] for e in removed) == ["users/bob", "workflows/Night"]
    bob = next(e for e in removed if e["resource"] == "users/bob")
    assert bob["message"].startswith("users/bob removed from ") and "cs1" in bob["message"]


def test_a_refused_token_is_its_own_state_not_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STATUS_SIM_TOKEN", "right-token")
    sims = start_sims(tmp_path, [("cs1", "mivb")], "--token-env", "STATUS_SIM_TOKEN")
    try:
        root = tmp_path / "config"
        monkeypatch.setenv("STATUS_TEST_TOKEN", "wrong-token")
        write_net(root, sims, users=("ann",), token_env={"cs1": "STATUS_TEST_TOKEN"})
        assert cli("reconcile", str(root)).code != 0
        code, doc = status_json(root)
        assert code != 0 and not doc["in_sync"]
        cs1 = doc["elements"]["cs1"]
        assert cs1["sync"] == "token_refused" and cs1["status"] == "Token refused"
        assert doc["worst"]["state"] == "token_refused"
        ann = resource(doc, "users", "ann")
        assert ann is not None and ann["elements"]["cs1"]["state"] == "token_refused"
        assert "Token refused" in cli("status", str(root)).out
    finally:
        for s in sims:
            s.stop()
