"""The drift round trip as a property, over real simulator processes.

The sample network runs on one simulator per element (127.0.0.1), reconciled
and committed in git. Each example makes random out-of-band edits through the
simulators' admin endpoint (what an element admin does in the element's own
forms: user data on the MiCollab or a call server, phone data on the host and
its partner, a reach-through COS edit on every call server), commits them with
`import --drift` or a running `watch --drift propose`, merges the branch and
reconciles. Then every element sharing a record holds the same value, the
plan is empty, and the config's bytes outside the changed records are what
they were. The examples run one after the other on the same network (each
starts from the previous one's merged, reconciled state), so shrinking is off.
"""

from __future__ import annotations

import copy
import json
import random
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from tests.importing.conftest import cli
from tests.importing.sample_network import SAMPLE, SECRETS, git, snapshot
from tests.importing.test_drift_property import CALL_SERVERS, _edits, _outside, _set

from apply.helpers import Sim, start_sims
from watch.helpers import TOKEN, Watch, start_watch

pytestmark = pytest.mark.slow

ELEMENTS = [
    ("micollab1", "micollab"),
    ("mivb1", "mivb"),
    ("mivb2", "mivb"),
    ("mivb3", "mivb"),
    ("ivr1", "ivr"),
    ("ivr2", "ivr"),
]


class Network:
    def __init__(self, root: Path, sims: dict[str, Sim], watch: Watch) -> None:
        self.root = root
        self.sims = sims
        self.watch = watch
        self.round = 0

    def records(self, element: str, collection: str) -> dict[str, dict[str, Any]]:
        return self.sims[element].records().get(collection, {})


def _on_simulators(root: Path, sims: dict[str, Sim]) -> None:
    """The sample's elements file, each element reached over HTTP on its simulator."""
    path = root / "network" / "elements.yaml"
    out, name = [], None
    for line in path.read_text().splitlines():
        out.append(line)
        if line.startswith("  - name: "):
            name = line.removeprefix("  - name: ").strip()
        elif line.startswith("    ceid: ") and name is not None:
            out += ["    driver: http", f"    connection: {{url: '{sims[name].url}', timeout: 10}}"]
    path.write_text("\n".join(out) + "\n")


@pytest.fixture
def network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Network]:
    # One provgit for the network: the commands and the watcher share the state
    # (journal, network key: secrets fingerprint alike).
    state = tmp_path / "state"
    monkeypatch.setenv("PROVGIT_STATE_DIR", str(state))
    for line in SECRETS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            k, _, v = line.partition("=")
            monkeypatch.setenv(k.strip(), v.strip())
    sims = {s.name: s for s in start_sims(tmp_path, ELEMENTS)}
    watch: Watch | None = None
    try:
        root = tmp_path / "sample-config"
        shutil.copytree(SAMPLE, root, ignore=shutil.ignore_patterns(".provgit"))
        _on_simulators(root, sims)
        r = cli("reconcile", str(root))
        assert r.exit_code == 0, r.output
        git(root, "init", "-q", "-b", "main")
        git(root, "config", "user.email", "t@example.net")
        git(root, "config", "user.name", "t")
        (root / ".gitignore").write_text(".provgit/\n")
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "config")
        # Runs only when asked (POST /reconcile): the examples decide when it looks.
        watch = start_watch(
            [
                "--repo",
                str(root),
                "--state-dir",
                str(state),
                "--fetch-seconds",
                "0",
                # Not the ref watch either: the test's own merge and reconcile
                # must not race a run of the watcher.
                "--ref-check-seconds",
                "0",
                "--resync-seconds",
                "0",
                "--drift",
                "propose",
            ]
        )
        first = watch.wait_log("run_finished", timeout=120)
        assert first["outcome"] in ("Sync Completed", "in sync"), watch.logs[-10:]
        yield Network(root, sims, watch)
    finally:
        try:
            if watch is not None:
                problems = watch.shutdown_problems()
                assert not problems, problems
        finally:
            for s in sims.values():
                s.stop()


def _edit(sim: Sim, collection: str, key: str, change: Any) -> None:
    fields = copy.deepcopy(sim.records()[collection][key])
    change(fields)
    sim.admin("/admin/edit", {"op": "put", "collection": collection, "key": key, "fields": fields})


def _commit_by_import(net: Network, branch: str) -> tuple[str | None, set[str]]:
    r = cli("import", "--drift", "--branch", branch, "--into", str(net.root), "--format", "json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    written = {f"{i['kind']}/{i['key']}" for i in report["items"] if i["written"]}
    made = git(net.root, "branch", "--list", branch).strip()
    assert bool(made) == bool(written), (made, written)  # a branch only for real drift
    return (branch if written else None), written


def _commit_by_watch(net: Network) -> tuple[str | None, set[str]]:
    mark = net.watch.mark()
    assert net.watch.post("/reconcile", TOKEN)[0] == 202
    net.watch.wait_log("run_finished", after=mark, timeout=60)
    proposed = [line for line in net.watch.logs[mark:] if line.get("event") == "drift_proposed"]
    if not proposed:
        return None, set()
    assert proposed[0]["created"] is True, proposed
    branch = str(proposed[0]["branch"])
    message = git(net.root, "log", "-1", "--format=%B", branch)
    # The commit lists each record it wrote as "kind/key:" on a line of its own.
    written = {line[:-1] for line in message.splitlines() if line.endswith(":") and "/" in line}
    assert written, message
    return branch, written


@settings(
    max_examples=4,
    derandomize=True,  # seeded: the same examples every run
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # examples share the network: no shrinking
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@example(seed=2, via="watch", ivr=True)
@example(seed=1, via="import", ivr=True)
@given(
    seed=st.integers(min_value=0, max_value=2**16),
    via=st.sampled_from(["import", "watch"]),
    ivr=st.booleans(),
)
def test_element_edits_committed_merged_and_reconciled_leave_one_value_everywhere(
    network: Network, seed: int, via: str, ivr: bool
) -> None:
    net = network
    net.round += 1
    rng = random.Random(seed)
    edits = _edits(rng, net.records("micollab1", "users"))
    if ivr:  # an edit on one IVR server (listed first, so its value wins the tie)
        text = f"Edited on ivr1 {net.round}"
        edits.append(("ivr1", "media_servers", "media-ottawa", _set(("description",), text)))
    for element, collection, key, change in edits:
        _edit(net.sims[element], collection, key, change)
    before = snapshot(net.root)

    if via == "import":
        branch, written = _commit_by_import(net, f"drift/round-{net.round}")
    else:
        branch, written = _commit_by_watch(net)
    # No branch when the rules keep none of the edits (the MiCollab wins a
    # call server's edit of user data): the reconcile then puts them back.
    if branch is not None:
        git(net.root, "merge", "-q", "--ff-only", branch)
    r = cli("reconcile", str(net.root))
    assert r.exit_code == 0, r.output
    r = cli("plan", str(net.root), "--detailed-exitcode")
    assert r.exit_code == 0, r.output

    # Every element sharing a record holds the same value.
    mcl = net.records("micollab1", "users")
    for login, user in mcl.items():
        phone = net.records(str(user["host"]), "users")[login]
        assert phone["first_name"] == user["first_name"], login
        assert [s["label"] for s in phone["services"]] == [s["label"] for s in user["services"]]
    assert len({net.records(e, "cos")["10"]["comment"] for e in CALL_SERVERS}) == 1
    media = [net.records(e, "media_servers")["media-ottawa"] for e in ("ivr1", "ivr2")]
    assert media[0]["description"] == media[1]["description"]
    if ivr:
        assert "ivr_media_servers/media-ottawa" in written, written

    # The watcher applies the merged commit too (nothing left to write), so
    # that the next example's edits are drift to it, not an older config.
    mark = net.watch.mark()
    assert net.watch.post("/reconcile", TOKEN)[0] == 202
    done = net.watch.wait_log("run_finished", after=mark, timeout=60)
    problems = [line for line in net.watch.logs[mark:] if line.get("level") == "error"]
    assert done["outcome"] in ("Sync Completed", "in sync"), (done, problems)

    # Bytes outside the changed records are identical (comments included).
    after = snapshot(net.root)
    assert set(after) == set(before)
    for rel in before:
        if before[rel] != after[rel]:
            assert _outside(before[rel].decode(), written) == _outside(
                after[rel].decode(), written
            ), rel
