"""A model-based test of the derived status (issue 12): random sequences of
config edits (add, change, delete, rename), out-of-band edits on the elements,
elements going offline and back, elements locked (busy) and unlocked, a record
the element refuses (a COS comment longer than the call servers take) and its
fix, reconciles, and a real `provgit reconcile` process SIGKILLed at a random
write, on embedded elements (real element stores). After every step (but
between an element change and the next run, which status cannot know of
without reading the elements) the status document must agree with an oracle
computed straight from the element stores, the elements' own rules and the
config: every resource's completed/total, in_sync, the pending updates (a write
the locked or offline element did not take) and distribution errors (a record
the element refused) against the journal's, and the exit code of `provgit
status`.

A wrong element token is not modelled here: the embedded driver has no token;
tests/apply/test_truth.py covers it over the HTTP simulator.

Seeded (`derandomize`), so a failure reproduces; hypothesis prints the steps.
"""

from __future__ import annotations

import json
import shutil
import signal
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from apply.helpers import cli, cli_killed_at
from provgit.drivers.base import WriteOp
from provgit.journal.db import Journal
from provgit.simulator.store import ElementStore
from report.status_oracle import Oracle, paths_agree, queued_and_refused, read_element, target_of

ELEMENTS = {"mcl": "micollab", "cs1": "mivb", "cs2": "mivb", "cs3": "mivb", "ivr1": "ivr"}
NAMES = ["ann", "bob", "cy", "di", "ed"]
# Longer than rules.MAX_COS_COMMENT: provgit refuses the config before any
# element sees it (so a record an embedded element refuses cannot be made from
# the config), and status derives from the target of the last run's plan.
TOO_LONG = "Night shift overflow"
FIRST = ["A", "B", "C"]


def write(root: Path, users: dict[str, str], cos_comment: str, workflow: str) -> None:
    (root / "provgit.yaml").write_text(
        "version: 1\nnetwork: m\napply: {retry_attempts: 1, retry_base_seconds: 0.01, "
        "retry_max_seconds: 0.05}\n"
    )
    lines = ["elements:"]
    for i, (name, kind) in enumerate(ELEMENTS.items()):
        cluster = ", cluster: east" if kind == "mivb" else ""
        lines.append(f"  - {{name: {name}, type: {kind}, ceid: {i + 1}{cluster}}}")
    lines += [
        "classes_of_service:",
        f"  - {{number: 12, comment: {cos_comment}}}",
        "templates:",
        "  - name: Basic",
        '    phones: [{label: Desk, device_type: "6920", primary: true}]',
        "    cos: {day: 12}",
        "roles:",
        "  - {name: Agent, template: Basic}",
        "users:" if users else "users: []",
    ]
    for n, (login, first) in enumerate(sorted(users.items())):
        host = ["cs1", "cs2", "cs3"][n % 3]
        lines += [
            f"  - login_id: {login}",
            f"    first_name: {first}",
            "    last_name: Person",
            "    role: Agent",
            f"    host: {host}",
            f'    services: [{{dn: "{4000 + NAMES.index(login)}"}}]',
        ]
    lines += [
        "ivr_media_servers:",
        "  - {name: ms1, host: 10.0.0.5}",
        "workflows:",
        f"  - {{name: {workflow}, media_servers: [ms1], "
        'steps: [{action: transfer, target: "2000"}]}',
    ]
    (root / "net.yaml").write_text("\n".join(lines) + "\n")


def oracle(root: Path, config: Path | None = None) -> Oracle:
    """The oracle of the config at `config` (default `root`) and the embedded
    element stores under ROOT/.provgit."""
    sdir = root / ".provgit"
    elements = {
        name: read_element(sdir / "elements" / f"{name}.sqlite", kind)
        for name, kind in ELEMENTS.items()
    }
    return Oracle(target_of(config or root, sdir), elements)


class StatusModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="status-model-"))
        self.root = self.tmp / "config"
        self.root.mkdir()
        self.users: dict[str, str] = {}
        self.cos = "Shared"
        self.workflow = "Main"
        self.offline: set[str] = set()
        self.observed = False
        # Right after a completed run: what it should have queued and refused.
        self.just_ran = False
        # The last config provgit accepts (a refused one leaves it applied).
        self.good = self.tmp / "good"
        self.good.mkdir()

    def teardown(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _write(self) -> None:
        write(self.root, self.users, self.cos, self.workflow)

    def _planned(self) -> None:
        # A run is about to plan: a valid config becomes the one a refused
        # config leaves status deriving from (the last planned target).
        if self.cos != TOO_LONG:
            write(self.good, self.users, self.cos, self.workflow)

    def _oracle(self) -> Oracle:
        return oracle(self.root, self.good if self.cos == TOO_LONG else None)

    def _store(self, element: str) -> ElementStore:
        return ElementStore(self.root / ".provgit" / "elements" / f"{element}.sqlite")

    @initialize()
    def start(self) -> None:
        self.users = {"ann": "A", "bob": "B"}
        self._write()
        self._planned()
        assert cli("reconcile", str(self.root)).code == 0
        self.observed = True

    @rule(login=st.sampled_from(NAMES), first=st.sampled_from(FIRST))
    def add_or_change_user(self, login: str, first: str) -> None:
        self.users[login] = first
        self._write()
        self.just_ran = False

    @precondition(lambda self: len(self.users) > 0)
    @rule(data=st.data())
    def delete_user(self, data: st.DataObject) -> None:
        del self.users[data.draw(st.sampled_from(sorted(self.users)))]
        self._write()
        self.just_ran = False

    @rule(comment=st.sampled_from(["Shared", "Sales", "Night", TOO_LONG]))
    def change_cos(self, comment: str) -> None:
        # TOO_LONG is a refused config; the next change is its fix.
        self.cos = comment
        self._write()
        self.just_ran = False

    @rule(name=st.sampled_from(["Main", "Other"]))
    def rename_workflow(self, name: str) -> None:
        self.workflow = name  # a rename: delete + add
        self._write()
        self.just_ran = False

    @rule(element=st.sampled_from(["cs1", "cs2", "cs3"]), comment=st.sampled_from(["X", "Y"]))
    def out_of_band_cos_edit(self, element: str, comment: str) -> None:
        store = self._store(element)
        try:
            if store.state == "offline":
                return
            row = store._db.execute(
                "SELECT fields FROM records WHERE collection = 'cos' AND key = '12'"
            ).fetchone()
            if row is None:
                return
            fields = {k: v for k, v in json.loads(row[0]).items() if not k.startswith("_")}
            store.write(WriteOp("put", "cos", "12", {**fields, "comment": comment}), force=True)
        finally:
            store.close()
        self.observed = False

    @rule(element=st.sampled_from(["cs2", "ivr1"]), down=st.booleans())
    def element_offline(self, element: str, down: bool) -> None:
        store = self._store(element)
        try:
            store.set_state("offline" if down else "running")
        finally:
            store.close()
        (self.offline.add if down else self.offline.discard)(element)
        self.observed = False

    @rule(element=st.sampled_from(["cs1", "cs3", "mcl"]), locked=st.booleans())
    def element_locked(self, element: str, locked: bool) -> None:
        # A busy element: readable, refuses every write until unlocked.
        store = self._store(element)
        try:
            store.set_state("locked" if locked else "running")
        finally:
            store.close()
        self.observed = False

    @rule()
    def reconcile(self) -> None:
        self._planned()
        r = cli("reconcile", str(self.root))
        assert r.code in ((1,) if self.cos == TOO_LONG else (0, 3, 4)), (r.code, r.err)
        if self.cos != TOO_LONG:  # a refused config reads no element
            self.observed = True
            self.just_ran = True

    @rule(write=st.integers(min_value=1, max_value=6), before=st.booleans())
    def reconcile_killed(self, write: int, before: bool) -> None:
        """A real `provgit reconcile` SIGKILLed at its Nth element write (after
        the write returned, or after its intent was committed and before it was
        sent); then `status`, then a reconcile that must converge."""
        point = f"{write}:before" if before else str(write)
        self._planned()
        killed = cli_killed_at(point, "reconcile", str(self.root))
        # Fewer writes than N: the run finishes and is not killed.
        assert killed.code in (-signal.SIGKILL, 0, 1, 3, 4), killed.err[-2000:]
        if killed.code == -signal.SIGKILL:
            # The element may hold a write the journal does not know of: status
            # cannot know it took, but must never claim more than the elements hold.
            r = cli("status", str(self.root), "--format", "json")
            doc = json.loads(r.out)
            truth = self._oracle()
            for x in doc["resources"]:
                done, total = truth.resources[(x["kind"], x["resource"])]
                assert x["completed"] <= done and x["total"] == total, (x, done, total)
            assert not doc["in_sync"] or truth.in_sync
            assert r.code == (1 if self.cos == TOO_LONG else 0 if doc["in_sync"] else 4)
        self.reconcile()
        with Journal.open(self.root / ".provgit") as j:
            assert j.open_intents() == []
            assert j.unfinished_runs() == []

    @invariant()
    def status_agrees_with_the_oracle(self) -> None:
        if not self.observed:
            # status reads no element: an out-of-band change is known once a run read it
            return
        r = cli("status", str(self.root), "--format", "json")
        doc = json.loads(r.out)
        truth = self._oracle()
        in_sync, resources = truth.in_sync, truth.resources
        shown = {(x["kind"], x["resource"]): (x["completed"], x["total"]) for x in doc["resources"]}
        omitted = doc["counts"]["resources_omitted"]
        assert omitted == 0
        assert shown == resources, (shown, resources)
        assert doc["in_sync"] == in_sync, (doc["counts"], doc["worst"])
        # A refused config: the last good one's status, but never exit 0.
        refused = self.cos == TOO_LONG
        assert r.code == (1 if refused else 0 if in_sync else 4)
        assert ("does not validate" in r.err) == refused
        queued_and_refused(self.root / ".provgit", doc, truth, self.just_ran)
        paths_agree(self.root / ".provgit")


StatusModel.TestCase.settings = settings(
    max_examples=10,
    stateful_step_count=20,
    derandomize=True,
    deadline=None,
    # No shrinking or explaining: each step runs provgit, and a shrink could
    # take many minutes; the failing steps are printed as they ran.
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow],
)
test_status_model = StatusModel.TestCase
