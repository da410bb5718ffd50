"""A model-based test of the derived status (issue 12): random sequences of
config edits (add, change, delete, rename), out-of-band edits on the elements,
elements going offline and back, and reconciles, on embedded elements (real
element stores). After every step (but between an element change and the next
run, which status cannot know of without reading the elements) the status
document must agree with an oracle computed straight from the element stores
and the config: every resource's completed/total, in_sync, and the exit code
of `provgit status`.

Seeded (`derandomize`), so a failure reproduces; hypothesis prints the steps.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from apply.helpers import cli
from provgit.compose import desired_target
from provgit.drivers.base import WriteOp
from provgit.elements.store import ElementStore
from provgit.observe import own_fields
from provgit.plan.compute import field_changes
from provgit.plan.memo import PlanMemo
from provgit.records import MANAGED_BY, MANAGED_BY_VALUE
from provgit.report import derive as dv
from provgit.source import read_directory
from provgit.target.store import TargetStore
from provgit.validate import validate_source

ELEMENTS = {"mcl": "micollab", "cs1": "mivb", "cs2": "mivb", "cs3": "mivb", "ivr1": "ivr"}
NAMES = ["ann", "bob", "cy", "di", "ed"]
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


def oracle(root: Path) -> tuple[bool, dict[tuple[str, str], tuple[int, int]]]:
    """From the config and the element stores alone: each resource's
    (completed, total) and whether the network is in sync."""
    source = read_directory(root)
    state = validate_source(source, None).state
    sdir = root / ".provgit"
    target = desired_target(state, source.read_other, sdir)
    per: dict[tuple[str, str], dict[str, bool]] = {}
    in_sync = True
    for element in ELEMENTS:
        store = ElementStore(sdir / "elements" / f"{element}.sqlite")
        try:
            online = store.state != "offline"
            held: dict[str, dict[str, Any]] = {}
            rows = store._db.execute("SELECT collection, key, fields FROM records").fetchall()
            for coll, key, fields in rows:
                held.setdefault(coll, {})[key] = own_fields(json.loads(fields))
        finally:
            store.close()
        in_sync = in_sync and online
        desired = target.records.get(element, {})
        for coll, recs in desired.items():
            for key, want in recs.items():
                res = target.resource_of(element, coll, key)
                got = held.get(coll, {}).get(key)
                ok = online and got is not None and not field_changes(want, got)
                here = per.setdefault(res, {})
                here[element] = here.get(element, True) and ok
        for coll, recs in held.items():
            for key, fields in recs.items():
                if key not in desired.get(coll, {}) and fields.get(MANAGED_BY) == MANAGED_BY_VALUE:
                    in_sync = False  # provgit's record the config no longer has
    out = {res: (sum(v.values()), len(v)) for res, v in per.items()}
    in_sync = in_sync and all(c == t for c, t in out.values())
    return in_sync, out


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

    def teardown(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _write(self) -> None:
        write(self.root, self.users, self.cos, self.workflow)

    def _store(self, element: str) -> ElementStore:
        return ElementStore(self.root / ".provgit" / "elements" / f"{element}.sqlite")

    @initialize()
    def start(self) -> None:
        self.users = {"ann": "A", "bob": "B"}
        self._write()
        assert cli("reconcile", str(self.root)).code == 0
        self.observed = True

    @rule(login=st.sampled_from(NAMES), first=st.sampled_from(FIRST))
    def add_or_change_user(self, login: str, first: str) -> None:
        self.users[login] = first
        self._write()

    @precondition(lambda self: len(self.users) > 0)
    @rule(data=st.data())
    def delete_user(self, data: st.DataObject) -> None:
        del self.users[data.draw(st.sampled_from(sorted(self.users)))]
        self._write()

    @rule(comment=st.sampled_from(["Shared", "Sales", "Night"]))
    def change_cos(self, comment: str) -> None:
        self.cos = comment
        self._write()

    @rule(name=st.sampled_from(["Main", "Other"]))
    def rename_workflow(self, name: str) -> None:
        self.workflow = name  # a rename: delete + add
        self._write()

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

    @rule()
    def reconcile(self) -> None:
        r = cli("reconcile", str(self.root))
        assert r.code in (0, 3, 4), r.err
        self.observed = True

    @invariant()
    def status_agrees_with_the_oracle(self) -> None:
        if not self.observed:
            # status reads no element: an out-of-band change is known once a run read it
            return
        r = cli("status", str(self.root), "--format", "json")
        doc = json.loads(r.out)
        in_sync, resources = oracle(self.root)
        shown = {(x["kind"], x["resource"]): (x["completed"], x["total"]) for x in doc["resources"]}
        omitted = doc["counts"]["resources_omitted"]
        assert omitted == 0
        assert shown == resources, (shown, resources)
        assert doc["in_sync"] == in_sync, (doc["counts"], doc["worst"])
        assert r.code == (0 if in_sync else 4)
        paths_agree(self.root / ".provgit")


def paths_agree(sdir: Path) -> None:
    """The summary paths (stored target, target in memory) say what reading
    every record says."""
    store = TargetStore(PlanMemo(sdir).target_path)
    target, meta = store.load(), PlanMemo(sdir).load_meta()
    if target is None or meta is None:
        return
    types = {n: str(e.type) for n, e in meta.elements.items()}
    journal = sdir / "journal.sqlite"
    facts = dv.element_facts(types, sdir, dv.element_rows(journal), None, store.digest())
    jf = dv.journal_facts(journal, {n: f.revision for n, f in facts.items()})
    full = dv.derive(target, facts, jf)
    expected = {k: (r.state, r.completed, r.total) for k, r in full.resources.items()}
    for view in (store, dv.MemoryView(target)):
        fast = dv.derive_fast(view, facts, jf)
        if fast is None:
            return
        got = {k: (r.state, r.completed, r.total) for k, r in fast.resources.items()}
        assert got == {k: v for k, v in expected.items() if k in got}
        assert {k for k, v in expected.items() if v[0] != "completed"} <= set(got)
        assert len(got) + fast.completed_extra == len(expected)
        assert fast.elements == full.elements


StatusModel.TestCase.settings = settings(
    max_examples=10,
    stateful_step_count=20,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_status_model = StatusModel.TestCase
