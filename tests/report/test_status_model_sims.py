"""A model-based test of the derived status (issue 12) over real simulator
processes (`provgit element serve` on 127.0.0.1, one per element, bearer
tokens on): random sequences of config edits (add, change, delete and rename
a user, change a COS, a config provgit refuses and its fix), element faults
through the simulator's admin endpoints (offline and back, locked and
unlocked, a record the element refuses and its end, an out-of-band edit or
delete, a wrong token configured in provgit and its fix), reconciles through
the CLI, a `provgit reconcile` process SIGKILLed at a random write, and a
`provgit watch` resync (a watcher started, one run, SIGTERM).

After every step (but between an element change and the next run: status
reads no element) the status document must agree with an oracle computed from
the config (the targeting code that plans) and the simulators' store files:
every resource's X/Y and state on each element, each element's state (a wrong
token is "Token refused", never Offline), pending updates and distribution
errors against the journal and, right after a run, against what the elements
make of the config, in_sync, and the exit code of `provgit status`.

Seeded (`derandomize`): a failure reproduces; hypothesis prints the steps as
they ran. To explore beyond the CI seed: PROVGIT_MODEL_EXPLORE=1 (a random
seed; hypothesis keeps a failure in .hypothesis/ and replays it first) and
PROVGIT_MODEL_EXAMPLES=N (default 12 examples of up to 20 steps: about 220
steps, some 25 s on a quiet 2-core machine).
"""

from __future__ import annotations

import json
import os
import signal
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from apply.helpers import Sim, cli, cli_killed_at, start_sims
from provgit.journal.db import Journal
from provgit.report import derive as dv
from report.status_oracle import (
    ElementTruth,
    Oracle,
    paths_agree,
    queued_and_refused,
    read_element,
    target_of,
)
from support.kill_after import KILL_HOOK_ENV
from watch.helpers import start_watch

pytestmark = pytest.mark.slow

ELEMENTS = {"mcl": "micollab", "cs1": "mivb", "cs2": "mivb", "ivr1": "ivr"}
HOSTS = ["cs1", "cs2"]
NAMES = ["ann", "bob", "cy", "di", "ed"]
FIRST = ["A", "B", "C"]
# Longer than the call servers' COS comment: provgit refuses the config
# before any element sees it; status is then the last valid config's.
TOO_LONG = "Night shift overflow"
SIM_TOKEN = "model-sim-token-not-a-secret"
WRONG_TOKEN = "a-wrong-token-not-a-secret"
SIM_TOKEN_ENV = "PROVGIT_MODEL_SIM_TOKEN"


def token_env(element: str) -> str:
    """The variable provgit's config reads the element's token from."""
    return f"PROVGIT_MODEL_TOKEN_{element.upper()}"


def write(
    root: Path,
    sims: dict[str, Sim],
    users: dict[str, tuple[str, int]],
    cos_comment: str,
) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "provgit.yaml").write_text(
        "version: 1\nnetwork: m\napply: {retry_attempts: 1, retry_base_seconds: 0.01, "
        "retry_max_seconds: 0.05}\n"
        # The watcher's resync applies at once: no removal held for a later read.
        "watch: {delete_grace_seconds: 0, settle_seconds: 0}\n"
    )
    lines = ["elements:"]
    for i, (name, kind) in enumerate(ELEMENTS.items()):
        cluster = ", cluster: east" if kind == "mivb" else ""
        lines.append(
            f"  - {{name: {name}, type: {kind}, ceid: {i + 1}{cluster}, driver: http, "
            f"connection: {{url: '{sims[name].url}', timeout: 5, "
            f"token: {{env: {token_env(name)}}}}}}}"
        )
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
    for login, (first, dn) in sorted(users.items()):
        lines += [
            f"  - login_id: {login}",
            f"    first_name: {first}",
            "    last_name: Person",
            "    role: Agent",
            f"    host: {HOSTS[dn % 2]}",
            f'    services: [{{dn: "{dn}"}}]',
        ]
    lines += [
        "ivr_media_servers:",
        "  - {name: ms1, host: 10.0.0.5}",
        "workflows:",
        '  - {name: Main, media_servers: [ms1], steps: [{action: transfer, target: "2000"}]}',
    ]
    (root / "net.yaml").write_text("\n".join(lines) + "\n")


# The states a (resource, element) cell may show, from what the element is.
NOT_HELD = frozenset({dv.NOT_APPLIED, dv.PENDING, dv.DISTRIBUTION_ERROR, dv.DRIFT})
QUEUED = frozenset({dv.PENDING, dv.DISTRIBUTION_ERROR})


def allowed(truth: ElementTruth, held: bool) -> frozenset[str]:
    if not truth.token_ok:
        return QUEUED | {dv.TOKEN_REFUSED}
    if truth.state == "offline":
        return QUEUED | {dv.OFFLINE, dv.STOPPED}
    return frozenset({dv.COMPLETED}) if held else NOT_HELD


class SimsModel(RuleBasedStateMachine):
    def __init__(self, sims: dict[str, Sim], tmp: Path, serial: int) -> None:
        super().__init__()
        self.sims = sims
        self.base = tmp / f"example-{serial}"
        self.root = self.base / "config"
        self.good = self.base / "good"  # the last config provgit accepts
        self.users: dict[str, tuple[str, int]] = {}
        self.next_dn = 4000
        self.cos = "Shared"
        self.wrong_token: set[str] = set()
        self.refuses: dict[str, set[tuple[str, str]]] = {n: set() for n in ELEMENTS}
        # status reads no element: after an element change, it is checked
        # again once a run has read the elements
        self.observed = False
        self.just_ran = False
        # a run was SIGKILLed and no run has finished since
        self.killed = False
        self.watches = 0
        # elements changed out of band since provgit last read them
        self.unseen: set[str] = set()
        self.edited: set[str] = set()  # ... ever
        # records changed out of band and not yet put back by provgit
        self.oob: set[tuple[str, str, str]] = set()
        # records a run in drift "report" mode found changed and left alone
        self.held_drift: set[tuple[str, str, str]] = set()
        self.kills = 0
        self.once_refused: set[tuple[str, str, str]] = set()
        for name in ELEMENTS:
            os.environ[token_env(name)] = SIM_TOKEN
            sims[name].admin("/admin/reset")

    # ---- the model ----------------------------------------------------------

    def _write(self) -> None:
        write(self.root, self.sims, self.users, self.cos)
        self.just_ran = False

    def _planned(self) -> None:
        if self.cos != TOO_LONG:
            write(self.good, self.sims, self.users, self.cos)

    def _config(self) -> Path:
        return self.good if self.cos == TOO_LONG else self.root

    def _truth(self) -> Oracle:
        elements = {
            name: read_element(
                self.sims[name].db,
                kind,
                token_ok=name not in self.wrong_token,
                refuses=frozenset(self.refuses[name]),
            )
            for name, kind in ELEMENTS.items()
        }
        return Oracle(target_of(self._config(), self.base / "oracle-state"), elements)

    def _ran(self, code: int, report: bool = False) -> None:
        """A run finished; `report`: in drift report mode (changes made out of
        band left in place), else they were overwritten."""
        refused = self.cos == TOO_LONG
        assert code in ((1,) if refused else (0, 3, 4)), code
        if not refused:  # a refused config reads no element
            self.observed = True
            self.just_ran = True
            self.killed = False
            truth = self._truth()
            readable = {n for n, e in truth.elements.items() if e.readable}
            self.unseen -= readable
            if report:
                self.held_drift = {r for r in self.oob if r[0] in readable and r in truth.differs}
            else:
                self.held_drift = set()
                self.oob = {r for r in self.oob if r in truth.differs or r[0] not in readable}
            self.check_queued_for_down_elements(truth)
            with Journal.open(self.root / ".provgit") as j:
                # A write whose fate a SIGKILL left unknown is settled once
                # its element is read again.
                unknown = {i.element for i in j.open_intents()}
                assert not unknown & readable, (unknown, readable)
                assert j.unfinished_runs() == []

    @initialize()
    def start(self) -> None:
        for login in ("ann", "bob"):
            self.users[login] = ("A", self.next_dn)
            self.next_dn += 1
        self._write()
        self._planned()
        r = cli("reconcile", str(self.root))
        assert r.code == 0, r.out + r.err
        self._ran(r.code)

    # ---- config edits ---------------------------------------------------------

    @rule(login=st.sampled_from(NAMES), first=st.sampled_from(FIRST))
    def add_or_change_user(self, login: str, first: str) -> None:
        if login in self.users:
            self.users[login] = (first, self.users[login][1])
        else:
            self.users[login] = (first, self.next_dn)
            self.next_dn += 1
        self._write()

    @precondition(lambda self: len(self.users) > 0)
    @rule(data=st.data())
    def delete_user(self, data: st.DataObject) -> None:
        del self.users[data.draw(st.sampled_from(sorted(self.users)))]
        self._write()

    @precondition(lambda self: 0 < len(self.users) < len(NAMES))
    @rule(data=st.data())
    def rename_user(self, data: st.DataObject) -> None:
        """The same person (name, DN) under another login: a delete and an add."""
        old = data.draw(st.sampled_from(sorted(self.users)))
        new = data.draw(st.sampled_from([n for n in NAMES if n not in self.users]))
        self.users[new] = self.users.pop(old)
        self._write()

    @rule(comment=st.sampled_from(["Shared", "Sales", TOO_LONG]))
    def change_cos(self, comment: str) -> None:
        self.cos = comment
        self._write()

    # ---- element faults ---------------------------------------------------------

    @rule(element=st.sampled_from(["cs2", "ivr1", "mcl"]), down=st.booleans())
    def element_offline(self, element: str, down: bool) -> None:
        self.sims[element].faults(offline=down)
        self.observed = False

    @rule(element=st.sampled_from(["cs1", "mcl"]), locked=st.booleans())
    def element_locked(self, element: str, locked: bool) -> None:
        self.sims[element].faults(locked=locked)
        self.observed = False

    # Records are picked by a number drawn up front, not drawn from what the
    # elements hold: the draws must not depend on anything outside the model
    # (a replay would draw differently).
    @rule(element=st.sampled_from(["cs1", "cs2"]), pick=st.integers(0, 99))
    def element_refuses_a_record(self, element: str, pick: int) -> None:
        """The element refuses to write one of the records provgit puts there
        (or, one pick in four, refuses nothing any more)."""
        desired = self._truth().target.records.get(element, {})
        refs = sorted((c, k) for c, recs in desired.items() for k in recs)
        chosen = None if pick % 4 == 0 or not refs else refs[pick % len(refs)]
        self.refuses[element] = set() if chosen is None else {chosen}
        if chosen is not None:
            self.once_refused.add((element, *chosen))
        body = [] if chosen is None else [{"collection": chosen[0], "key": chosen[1]}]
        self.sims[element].faults(refuse=body)
        self.observed = False

    @rule(element=st.sampled_from(list(ELEMENTS)), pick=st.integers(0, 99), delete=st.booleans())
    def out_of_band_edit(self, element: str, pick: int, delete: bool) -> None:
        """The element's own admin changes or deletes a record provgit put there."""
        held = read_element(self.sims[element].db, ELEMENTS[element]).records
        refs = sorted((c, k) for c, recs in held.items() for k in recs)
        if not refs:
            return
        coll, key = refs[pick % len(refs)]
        if delete:
            body: dict[str, Any] = {"op": "delete", "collection": coll, "key": key}
        else:
            fields = {k: v for k, v in held[coll][key].items() if not k.startswith("_")}
            text = next((k for k in ("comment", "first_name", "name") if k in fields), None)
            if text is None:
                return
            body = {
                "op": "put",
                "collection": coll,
                "key": key,
                "fields": {**fields, text: "Edited"},
            }
        try:
            self.sims[element].admin("/admin/edit", body)
            self.unseen.add(element)
            self.edited.add(element)
            self.oob.add((element, coll, key))
        except urllib.error.HTTPError as e:
            # The element's own rules refuse it (a COS still in use), or it
            # is offline: nothing changed.
            assert e.code in (422, 503), e
            return
        self.observed = False

    @rule(element=st.sampled_from(list(ELEMENTS)), wrong=st.booleans())
    def token(self, element: str, wrong: bool) -> None:
        """provgit is configured with a wrong token for the element (or the right one)."""
        os.environ[token_env(element)] = WRONG_TOKEN if wrong else SIM_TOKEN
        (self.wrong_token.add if wrong else self.wrong_token.discard)(element)
        self.observed = False

    # ---- runs -----------------------------------------------------------------

    @rule()
    def reconcile(self) -> None:
        self._planned()
        r = cli("reconcile", str(self.root))
        self._ran(r.code)

    @rule(write=st.integers(min_value=1, max_value=5), before=st.booleans())
    def reconcile_killed(self, write: int, before: bool) -> None:
        """A real `provgit reconcile` SIGKILLed at its Nth element write (after
        the write returned, or after its intent was committed and before it
        was sent)."""
        point = f"{write}:before" if before else str(write)
        self._planned()
        killed = cli_killed_at(point, "reconcile", str(self.root))
        # Fewer writes than N: the run finishes and is not killed.
        if killed.code != -signal.SIGKILL:
            self._ran(killed.code)
            return
        self.killed = True
        self.kills += 1
        self.observed = True
        self.just_ran = False

    @rule()
    def plan(self) -> None:
        """`provgit plan --detailed-exitcode` reads every element (status then
        derives from what it found) and answers 5 when one could not be read,
        else 2 when there is something to write or delete, else 0."""
        r = cli("plan", str(self.root), "--detailed-exitcode")
        if self.cos == TOO_LONG:
            assert r.code == 1, (r.code, r.err)
            return
        truth = self._truth()
        readable = {n for n, e in truth.elements.items() if e.readable}
        changes = 2 if truth.differs or truth.leftover else 0
        expected = 5 if readable != set(ELEMENTS) else changes
        assert r.code == expected, (r.code, r.err[-2000:], truth.differs, truth.leftover)
        self.unseen -= readable
        self.observed = True
        self.killed = False
        self.just_ran = False

    @precondition(lambda self: self.watches < 2 and self.cos != TOO_LONG)
    @rule(drift=st.sampled_from(["correct", "report"]))
    def watch_resync(self, drift: str) -> None:
        """`provgit watch` started on the config: its first run reads every
        element and applies, drift corrected (as reconcile does) or reported
        and left in place; then SIGTERM."""
        self.watches += 1
        self._planned()
        w = start_watch(
            [str(self.root), "--resync-seconds", "0", "--debounce-ms", "50", "--drift", drift]
        )
        try:
            w.wait_log("run_finished", timeout=60)
        finally:
            code = w.stop()
        assert code == 0, w.logs[-10:]
        self._ran(0, report=drift == "report")

    def check_queued_for_down_elements(self, truth: Oracle) -> None:
        """SDS: what a run could not send to an element that is down (offline,
        token refused) is queued at once as pending updates, not forgotten
        until it is back: every record the element does not hold as desired
        (as provgit last saw it) is pending or a distribution error."""
        with Journal.open(self.root / ".provgit") as j:
            queued = {(p.element, p.collection, p.key) for p in j.pending()}
            queued |= {(e.element, e.collection, e.key) for e in j.distribution_errors()}
        owed = {
            ref
            for ref in truth.differs
            if not truth.elements[ref[0]].readable and ref[0] not in self.unseen
        }
        assert owed <= queued, (owed - queued, queued)

    # ---- the check ----------------------------------------------------------------

    @invariant()
    def status_agrees_with_the_oracle(self) -> None:
        STEPS["steps"] += 1
        if not self.observed:
            return
        STEPS["checked"] += 1
        sdir = self.root / ".provgit"
        r = cli("status", str(self.root), "--format", "json")
        doc = json.loads(r.out)
        truth = self._truth()
        refused = self.cos == TOO_LONG
        shown = {(x["kind"], x["resource"]): x for x in doc["resources"]}
        assert doc["counts"]["resources_omitted"] == 0
        schema_errors(doc, sdir / "status" / "status.json")
        # No run is going on between steps: a killed run's elements are not "Synching".
        assert not [e for e in doc["elements"].values() if e["status"].startswith("Synching")]
        if self.killed:
            # The elements may hold a write the journal does not know took:
            # status must never claim more than they hold.
            for res, x in shown.items():
                done, total = truth.resources[res]
                assert x["completed"] <= done and x["total"] == total, (x, done, total)
            assert set(shown) == set(truth.resources)
            assert not doc["in_sync"] or truth.in_sync
            assert r.code == (1 if refused else 0 if doc["in_sync"] else 4)
            return
        counts = {res: (x["completed"], x["total"]) for res, x in shown.items()}
        assert counts == truth.resources, (counts, truth.resources)
        for res, x in shown.items():
            cells = x["elements"]
            assert set(cells) == set(truth.per[res]), (res, cells)
            for element, cell in cells.items():
                held = (element, *cell_ref(cell)) not in truth.differs
                ok = allowed(truth.elements[element], held)
                if element not in self.edited or (self.just_ran and not self.held_drift):
                    # Drift is a change provgit did not make, and a run
                    # (reconcile, or watch correcting drift) overwrites it.
                    ok = ok - {dv.DRIFT}
                assert cell["state"] in ok, (res, element, cell, sorted(ok))
            worst = dv.COMPLETED
            for cell in cells.values():
                worst = dv.worst(worst, cell["state"])
            assert x["state"] == worst, (res, x)
            assert (x["status"] == "Sync Completed") == (x["completed"] == x["total"]), x
        for name, truth_el in truth.elements.items():
            el = doc["elements"][name]
            if not truth_el.token_ok:
                assert (el["sync"], el["status"]) == (dv.TOKEN_REFUSED, "Token refused"), el
            elif truth_el.state == "offline":
                assert el["sync"] in (dv.OFFLINE, dv.STOPPED), el
                assert el["status"] == dv.label(el["sync"], ELEMENTS[name]), el
            else:
                assert el["observed"] and el["sync"] != dv.TOKEN_REFUSED, el
        assert doc["in_sync"] == truth.in_sync, (doc["counts"], doc["worst"], truth.leftover)
        assert r.code == (1 if refused else 0 if truth.in_sync else 4), (r.code, r.err)
        assert ("does not validate" in r.err) == refused
        # Records left in place as drift are not written: neither refused nor queued.
        truth.forced -= self.held_drift
        truth.unwritable -= self.held_drift
        queued_and_refused(
            sdir,
            doc,
            truth,
            self.just_ran,
            frozenset(self.once_refused),
            frozenset(r[0] for r in self.held_drift),
        )
        self.check_held_drift(doc, truth)
        self.check_elements(doc, truth)
        self.check_kind(doc, truth, KINDS[STEPS["checked"] % len(KINDS)])
        readable = {n for n, e in truth.elements.items() if e.readable}
        leftover = {r for r in truth.leftover if r[0] in readable}
        assert doc["counts"]["records_not_deleted"] == len(leftover), (doc["counts"], leftover)
        paths_agree(sdir)

    def check_elements(self, doc: dict[str, Any], truth: Oracle) -> None:
        """An element readable is Sync Completed exactly when every resource
        on it is, nothing is queued or refused there and no record provgit
        put there is left over."""
        for name, el in truth.elements.items():
            if not el.readable:
                continue
            here = [x["elements"] for x in doc["resources"]]
            cells = [e[name]["state"] for e in here if name in e]
            owed = [
                d
                for d in (*doc["pending_updates"], *doc["distribution_errors"])
                if d["element"] == name
            ]
            done = (
                all(c == dv.COMPLETED for c in cells)
                and not owed
                and not any(r[0] == name for r in truth.leftover)
            )
            shown = doc["elements"][name]
            assert (shown["sync"] == dv.COMPLETED) == done, (name, shown, cells, owed)
            assert (shown["status"] == "Sync Completed") == done, (name, shown)

    def check_kind(self, doc: dict[str, Any], truth: Oracle, kind: str) -> None:
        """`status --kind K` exits 0 exactly when every resource of K is
        completed and nothing of K is queued or refused."""
        if truth.leftover:
            return  # (which kind a record left over was is the element's secret)
        r = cli("status", str(self.root), "--kind", kind, "--format", "json")
        part = json.loads(r.out)
        done = all(c == t for (k, _), (c, t) in truth.resources.items() if k == kind) and not any(
            d["kind"] == kind for d in (*doc["pending_updates"], *doc["distribution_errors"])
        )
        shown = {x["resource"] for x in part["resources"]}
        assert shown == {res for k, res in truth.resources if k == kind}, (kind, shown)
        assert part["in_sync"] == done, (kind, part["counts"])
        expected = 1 if self.cos == TOO_LONG else 0 if done else 4
        assert r.code == expected, (kind, r.code, r.err)

    def check_held_drift(self, doc: dict[str, Any], truth: Oracle) -> None:
        """Right after a run in drift report mode: every record changed out of
        band since provgit wrote it is left as it is and shows as drift
        (unless queued or refused); none other does."""
        if not (self.just_ran and self.held_drift) or self.kills:
            # (after a SIGKILL, a write's fate may be unknown: no baseline, no drift)
            return
        with Journal.open(self.root / ".provgit") as j:
            queued = {(p.element, p.collection, p.key) for p in j.pending()}
            queued |= {(e.element, e.collection, e.key) for e in j.distribution_errors()}
        drifted = self.held_drift - queued
        shown = {(x["kind"], x["resource"]): x["elements"] for x in doc["resources"]}
        for element, coll, key in drifted:
            res = truth.target.resource_of(element, coll, key)
            assert shown[res][element]["state"] == dv.DRIFT, (res, element, shown[res])
        assert doc["counts"]["drift"] == len(drifted), (doc["counts"], drifted)


SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "schemas" / "status.schema.json").read_text()
)


def schema_errors(doc: dict[str, Any], written: Path) -> None:
    """The status document, and the one the last run wrote, follow the published schema."""
    validator = jsonschema.Draft202012Validator(SCHEMA)
    docs = [("status --format json", doc)]
    if written.exists():
        docs.append((str(written), json.loads(written.read_text())))
    for name, d in docs:
        found = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(d)]
        assert not found, (name, found[:5])


KINDS = ["users", "classes_of_service", "workflows"]
# Steps run and steps whose status was checked, over every example.
STEPS = {"steps": 0, "checked": 0}


def cell_ref(cell: dict[str, Any]) -> tuple[str, str]:
    return cell["collection"], cell["key"]


@pytest.fixture
def model_sims(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Sim]]:
    """One simulator per element, tokens on, for every example of the model
    (reset at the start of each); the token variables restored after."""
    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)
    monkeypatch.delenv(KILL_HOOK_ENV, raising=False)
    monkeypatch.setenv(SIM_TOKEN_ENV, SIM_TOKEN)
    for name in ELEMENTS:
        monkeypatch.setenv(token_env(name), SIM_TOKEN)
    started = start_sims(tmp_path, list(ELEMENTS.items()), "--token-env", SIM_TOKEN_ENV)
    for s in started:
        s.token = SIM_TOKEN
    try:
        yield {s.name: s for s in started}
    finally:
        for s in started:
            s.stop()


def test_status_agrees_with_the_simulators_after_every_step(
    model_sims: dict[str, Sim], tmp_path: Path
) -> None:
    serial = iter(range(1_000_000))
    STEPS.update(steps=0, checked=0)
    run_state_machine_as_test(
        lambda: SimsModel(model_sims, tmp_path, next(serial)),
        settings=settings(
            max_examples=int(os.environ.get("PROVGIT_MODEL_EXAMPLES", "12")),
            stateful_step_count=20,
            derandomize=not os.environ.get("PROVGIT_MODEL_EXPLORE"),
            deadline=None,
            # No shrinking: each step runs provgit; the failing steps are
            # printed as they ran.
            phases=(Phase.explicit, Phase.reuse, Phase.generate),
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
    print(STEPS)
    assert STEPS["steps"] >= 200, STEPS
