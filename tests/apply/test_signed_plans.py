"""A saved plan is signed, and apply re-checks it against the config it names.

Whoever can write a plan file between the plan job and the apply job must not
be able to change what reaches the elements: every kind of edit is refused
(exit 3) before anything is contacted, and the element stores stay as they were.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from provgit.drivers.base import WriteOp
from provgit.plan import Operation, Plan, signing
from provgit.plan.model import canonical
from provgit.plan.signing import key_id
from provgit.secrets import NetworkKey, network_key
from provgit.simulator.store import ElementStore

from .helpers import Sim, cli, journal, read_store, start_sims, write_config

PIN = "86420975"
STOLEN = "value-the-attacker-wants-9131"
ELEMENTS = ("mcl", "mivb1", "mivb2")

SETTINGS = """\
version: 1
network: smoke
safety:
  protected: [users/reception]
{extra}"""

NET = """\
elements:
  - {name: mcl, type: micollab, ceid: 1}
  - {name: mivb1, type: mivb, ceid: 2, cluster: east, admin_group: east}
  - {name: mivb2, type: mivb, ceid: 3, cluster: east, admin_group: east}
classes_of_service:
  - {number: 1, comment: Default}
templates:
  - name: Basic
    phones: [{label: Desk, device_type: "6920", primary: true}]
    cos: {day: 1}
roles:
  - {name: Agent, template: Basic}
users:
"""


def _user(login: str, first: str, dn: str, pin: str | None = None) -> str:
    lines = [
        f"  - login_id: {login}",
        f"    first_name: {first}",
        "    last_name: Person",
        "    role: Agent",
        "    host: mivb1",
        f'    services: [{{dn: "{dn}"}}]',
    ]
    if pin:
        lines.append(f"    voicemail_pin: {{env: {pin}}}")
    return "\n".join(lines) + "\n"


def _write(root: Path, users: list[str], extra: str = "") -> None:
    (root / "provgit.yaml").write_text(SETTINGS.format(extra=extra))
    (root / "net.yaml").write_text(NET + "".join(users))


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A network in sync with reception, jdoe and asmith; then a config that
    renames jdoe, removes asmith and adds blee (adds, modifies and deletes)."""
    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)
    monkeypatch.delenv("PROVGIT_SECRET_KEY", raising=False)
    monkeypatch.setenv("SIGN_TEST_PIN", PIN)
    monkeypatch.setenv("SIGN_TEST_STOLEN", STOLEN)
    root = tmp_path / "config"
    root.mkdir()
    reception = _user("reception", "Front", "2000")
    _write(
        root,
        [
            reception,
            _user("jdoe", "John", "2001", "SIGN_TEST_PIN"),
            _user("asmith", "Ann", "2002"),
        ],
    )
    first = cli("reconcile", str(root))
    assert first.code == 0, first.out + first.err
    _write(
        root,
        [
            reception,
            _user("jdoe", "Johnny", "2001", "SIGN_TEST_PIN"),
            _user("blee", "Bo", "2003", "SIGN_TEST_PIN"),
        ],
    )
    return root


@pytest.fixture
def plan_file(config: Path, tmp_path: Path) -> Path:
    path = tmp_path / "plan.json"
    made = cli("plan", str(config), "--out", str(path))
    assert made.code == 0, made.out + made.err
    return path


Stores = dict[str, dict[str, dict[str, dict[str, Any]]]]


def _stores(config: Path) -> Stores:
    return {n: read_store(config / ".provgit" / "elements" / f"{n}.sqlite") for n in ELEMENTS}


def _runs(config: Path) -> int:
    with journal(config / ".provgit") as j:
        return len(j.runs())


def _ops(doc: dict[str, Any], element: str) -> list[dict[str, Any]]:
    found = next(e for e in doc["elements"] if e["element"] == element)
    ops: list[dict[str, Any]] = found["operations"]
    return ops


def _op(doc: dict[str, Any], element: str, collection: str, key: str) -> dict[str, Any]:
    return next(o for o in _ops(doc, element) if (o["collection"], o["key"]) == (collection, key))


def _recount(doc: dict[str, Any]) -> None:
    """What a careful attacker does after an edit: counts, totals and the old
    checksum made to agree with the new content."""
    totals = dict.fromkeys(("add", "modify", "delete"), 0)
    for e in doc["elements"]:
        counts = dict.fromkeys(("add", "modify", "delete"), 0)
        for op in e["operations"]:
            counts[op["action"]] += 1
            totals[op["action"]] += 1
        e["counts"] = counts
    doc["totals"] = totals
    body = {k: v for k, v in doc.items() if k not in ("signature", "checksum")}
    doc["checksum"] = "sha256:" + hashlib.sha256(canonical(body)).hexdigest()


def add_protected_delete(doc: dict[str, Any]) -> None:
    _ops(doc, "mcl").append(
        {
            "action": "delete",
            "collection": "users",
            "key": "reception",
            "kind": "users",
            "resource": "reception",
            "changes": {},
            "if_revision": 1,
            "managed": True,
        }
    )


def point_pin_elsewhere(doc: dict[str, Any]) -> None:
    _op(doc, "mcl", "users", "jdoe")["fields"]["voicemail_pin"]["ref"] = "env:SIGN_TEST_STOLEN"


def plain_pin(doc: dict[str, Any]) -> None:
    _op(doc, "mcl", "users", "jdoe")["fields"]["voicemail_pin"] = "1234"


def remove_an_op(doc: dict[str, Any]) -> None:
    ops = _ops(doc, "mcl")
    ops.remove(_op(doc, "mcl", "users", "blee"))


def swap_element_names(doc: dict[str, Any]) -> None:
    for e in doc["elements"]:
        if e["element"] in ("mivb1", "mivb2"):
            e["element"] = "mivb2" if e["element"] == "mivb1" else "mivb1"


def change_a_field(doc: dict[str, Any]) -> None:
    _op(doc, "mcl", "users", "jdoe")["fields"]["first_name"] = "Mallory"


def strip_signature(doc: dict[str, Any]) -> None:
    del doc["signature"]


def misleading_changes(doc: dict[str, Any]) -> None:
    """An add shown to a reviewer as other than what it writes (format 3 adds
    carry no `changes`: a forger adds some)."""
    blee = _op(doc, "mcl", "users", "blee")
    assert "changes" not in blee
    blee["changes"] = {"first_name": {"after": "Harmless"}}


Edit = Callable[[dict[str, Any]], None]
MISMATCH = (
    "plan signature does not match: the plan was changed after it was made, or was made "
    "with another key; run provgit plan again"
)


def _tamper(path: Path, edit: Edit, resign: NetworkKey | None = None) -> None:
    doc = json.loads(path.read_text())
    edit(doc)
    _recount(doc)
    if resign is None:
        path.write_text(json.dumps(doc, indent=1))
        return
    # Signed again with the network's own key (it leaked, or the plan predates
    # the rules): the re-checks against the config still hold.
    doc.pop("signature", None)
    path.write_text(signing.signed_text(Plan.from_json(doc), resign))


def _assert_refused(config: Path, plan: Path, before: Stores, runs: int, *messages: str) -> None:
    r = cli("apply", str(plan), "--config", str(config), "--yes")
    assert r.code == 3, r.out + r.err
    for message in messages:
        assert message in r.err, r.err
    assert "Nothing was applied." in r.err
    after = _stores(config)
    assert after == before  # nothing reached any element
    assert STOLEN not in json.dumps(after)
    assert _runs(config) == runs  # no apply run was even started


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (add_protected_delete, MISMATCH),
        (point_pin_elsewhere, MISMATCH),
        (remove_an_op, MISMATCH),
        (swap_element_names, MISMATCH),
        (change_a_field, MISMATCH),
        (strip_signature, "the plan is not signed (was its signature removed?)"),
        (misleading_changes, MISMATCH),
    ],
)
def test_plan_edited_after_signing_is_refused_and_nothing_reaches_an_element(
    config: Path, plan_file: Path, edit: Edit, message: str
) -> None:
    before, runs = _stores(config), _runs(config)
    _tamper(plan_file, edit)
    _assert_refused(config, plan_file, before, runs, message)


@pytest.mark.parametrize("keep", [0.25, 0.5, 0.999])
def test_a_truncated_plan_is_refused_and_nothing_reaches_an_element(
    config: Path, plan_file: Path, keep: float
) -> None:
    # A plan artifact cut short in transfer is a damaged plan, not a usage slip.
    before, runs = _stores(config), _runs(config)
    data = plan_file.read_bytes()
    plan_file.write_bytes(data[: int(len(data) * keep)])
    _assert_refused(config, plan_file, before, runs, "the plan file is truncated or damaged")


def test_a_plan_applied_to_another_network_with_the_same_key_is_refused(
    config: Path, plan_file: Path, tmp_path: Path
) -> None:
    # A lab and production signing with one key: production's plan must not
    # reach the lab (or the reverse) however it is pointed at it.
    other = tmp_path / "other"
    shutil.copytree(config, other)  # the state directory (and its key) too
    settings = other / "provgit.yaml"
    settings.write_text(settings.read_text().replace("network: smoke", "network: lab"))
    before, runs = _stores(other), _runs(other)
    _assert_refused(other, plan_file, before, runs, "the plan is for network 'smoke'")


def test_mismatch_names_the_key_it_was_checked_with(config: Path, plan_file: Path) -> None:
    _tamper(plan_file, change_a_field)
    r = cli("apply", str(plan_file), "--config", str(config), "--yes")
    assert r.code == 3
    assert "it names the key used here, state-dir key " in r.err
    assert "so its content changed since" in r.err


def test_plan_signed_with_another_state_dir_key_is_refused(
    config: Path, plan_file: Path, tmp_path: Path
) -> None:
    other = network_key(None, tmp_path / "elsewhere")
    assert other is not None
    before, runs = _stores(config), _runs(config)
    _tamper(plan_file, lambda doc: None, resign=other)
    _assert_refused(config, plan_file, before, runs, MISMATCH, "it names state-dir key ")


def test_plan_in_the_old_unsigned_format_is_refused(config: Path, plan_file: Path) -> None:
    before, runs = _stores(config), _runs(config)

    def old(doc: dict[str, Any]) -> None:
        doc["format"] = "provgit.plan/1"
        del doc["signature"]

    _tamper(plan_file, old)
    _assert_refused(
        config, plan_file, before, runs, "this plan is in an old, unsigned format (provgit.plan/1)"
    )


def _key(config: Path) -> NetworkKey:
    key = network_key(None, config / ".provgit", create=False)
    assert key is not None
    return key


def rename_element(doc: dict[str, Any]) -> None:
    next(e for e in doc["elements"] if e["element"] == "mivb2")["element"] = "mivb9"


def delete_unmanaged(doc: dict[str, Any]) -> None:
    _ops(doc, "mivb1").append(
        {
            "action": "delete",
            "collection": "users",
            "key": "ghost",
            "kind": "users",
            "resource": "ghost",
            "if_revision": 1,
            "managed": False,
        }
    )


def add_unplanned_record(doc: dict[str, Any]) -> None:
    _ops(doc, "mivb2").append(
        {
            "action": "add",
            "collection": "users",
            "key": "mallory",
            "kind": "users",
            "resource": "mallory",
            "fields": {"login_id": "mallory", "first_name": "Mal"},
        }
    )


def relabel_a_delete(doc: dict[str, Any]) -> None:
    """A protected record's delete dressed up as another kind and resource."""
    add_protected_delete(doc)
    op = _ops(doc, "mcl")[-1]
    op["kind"], op["resource"] = "departments", "nobody"


def relabel_an_unprotected_delete(doc: dict[str, Any]) -> None:
    """A delete passed off as another kind, out of reach of that kind's threshold."""
    _op(doc, "mcl", "users", "asmith")["kind"] = "departments"


def claim_without_the_option(doc: dict[str, Any]) -> None:
    """A modify turned into taking ownership, in a plan not made with --claim."""
    _op(doc, "mcl", "users", "jdoe")["claim"] = True


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            claim_without_the_option,
            "mcl: modify users/jdoe takes ownership of a record provgit did not create, "
            "but the plan was not made with --claim",
        ),
        (
            add_protected_delete,
            "mcl: delete users/reception: protected (safety.protected in provgit.yaml)",
        ),
        (relabel_a_delete, "mcl: delete users/reception: protected"),
        (
            relabel_an_unprotected_delete,
            "mcl: delete users/asmith: the plan says it comes from departments 'asmith'; "
            "a delete of this record belongs to users",
        ),
        (
            point_pin_elsewhere,
            "mcl: modify users/jdoe field voicemail_pin: secret reference "
            "env:SIGN_TEST_STOLEN is not the one the config uses (env:SIGN_TEST_PIN)",
        ),
        (
            plain_pin,
            "mcl: modify users/jdoe field voicemail_pin: no secret reference where the config "
            "uses env:SIGN_TEST_PIN",
        ),
        (rename_element, "the plan names element(s) the config no longer has: mivb9"),
        (
            delete_unmanaged,
            "mivb1: delete users/ghost: provgit did not create this record, "
            "the plan was not made with --prune",
        ),
        (add_unplanned_record, "mivb2: add users/mallory: the config does not put this record"),
    ],
)
def test_signed_plan_is_still_held_to_the_config_rules(
    config: Path, plan_file: Path, edit: Edit, message: str
) -> None:
    before, runs = _stores(config), _runs(config)
    _tamper(plan_file, edit, resign=_key(config))
    _assert_refused(config, plan_file, before, runs, message)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda root: (root / "provgit.yaml").write_text(
                SETTINGS.replace("[users/reception]", "[users/reception, users/asmith]").format(
                    extra=""
                )
            ),
            "mcl: delete users/asmith: protected",
        ),
        (
            lambda root: (root / "provgit.yaml").write_text(
                SETTINGS.format(extra="  max_deletes: {count: 0}\n")
            ),
            "refused for mcl: 1 deletes (more than 0); pass --allow-mass-delete to allow",
        ),
        (
            lambda root: (root / "net.yaml").write_text(
                (root / "net.yaml").read_text().replace("env: SIGN_TEST_PIN}", "env: OTHER_PIN}")
            ),
            "secret reference env:SIGN_TEST_PIN is not the one the config uses (env:OTHER_PIN)",
        ),
    ],
)
def test_plan_older_than_the_rules_is_refused(
    config: Path, plan_file: Path, change: Callable[[Path], Any], message: str
) -> None:
    before, runs = _stores(config), _runs(config)
    change(config)
    _assert_refused(config, plan_file, before, runs, message)


def test_untampered_signed_plan_applies(config: Path, plan_file: Path) -> None:
    text = plan_file.read_text()
    key = _key(config)
    assert key.secret.hex() not in text and PIN not in text
    assert json.loads(text)["signature"]["key"] == "state-dir key"
    key_file = config / ".provgit" / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    r = cli("apply", str(plan_file), "--config", str(config), "--yes")
    assert r.code == 0, r.out + r.err
    users = _stores(config)["mcl"]["users"]
    assert set(users) == {"reception", "jdoe", "blee"}
    assert users["jdoe"]["first_name"] == "Johnny"


def test_a_saved_add_is_its_record_once_and_shows_without_secrets(
    config: Path, plan_file: Path
) -> None:
    """Format 3: an add carries its `fields` (what apply writes), not its
    record a second time as `changes`; `show` derives them from the fields."""
    doc = json.loads(plan_file.read_text())
    assert doc["format"] == "provgit.plan/3"
    adds = [o for e in doc["elements"] for o in e["operations"] if o["action"] == "add"]
    assert adds and not [o for o in adds if "changes" in o]
    modifies = [o for e in doc["elements"] for o in e["operations"] if o["action"] == "modify"]
    assert modifies and all(o["changes"] for o in modifies)
    blee = _op(doc, "mcl", "users", "blee")
    assert blee["fields"]["first_name"] == "Bo" and PIN not in plan_file.read_text()
    shown = cli("show", str(plan_file), "--full")
    assert shown.code == 0, shown.out + shown.err
    assert "signature: holds" in shown.out and 'first_name: "Bo"' in shown.out
    assert 'voicemail_pin: "(sensitive)"' in shown.out
    pin_ref = blee["fields"]["voicemail_pin"]
    assert pin_ref["$sensitive"] not in shown.out and PIN not in shown.out


def _as_format_2(doc: dict[str, Any], key: NetworkKey) -> str:
    """`doc` as a provgit that wrote plan format 2 saved it: every add with
    its changes (the shown record) beside its fields, signed the same way."""
    doc.pop("signature")
    doc["format"] = "provgit.plan/2"
    for e in doc["elements"]:
        for o in e["operations"]:
            if "changes" not in o:
                o["changes"] = Operation.from_json(o).shown_changes()
    doc["signature"] = {"algorithm": "HMAC-SHA256", "key": key.source, "key_id": key_id(key)}
    doc["signature"]["value"] = signing._mac(key, canonical(doc))
    return canonical(doc).decode()


def test_a_plan_saved_in_format_2_still_applies(config: Path, plan_file: Path) -> None:
    doc = json.loads(plan_file.read_text())
    text = _as_format_2(doc, _key(config))
    assert '"first_name":{"after":"Bo"}' in text
    plan_file.write_text(text)
    r = cli("apply", str(plan_file), "--config", str(config), "--yes")
    assert r.code == 0, r.out + r.err
    users = _stores(config)["mcl"]["users"]
    assert set(users) == {"reception", "jdoe", "blee"}
    assert users["blee"]["first_name"] == "Bo" and users["jdoe"]["first_name"] == "Johnny"


def test_plan_json_on_stdout_is_signed_and_applies(config: Path, tmp_path: Path) -> None:
    shown = cli("plan", str(config), "--format", "json")
    assert shown.code == 0
    path = tmp_path / "from-stdout.json"
    path.write_text(shown.out)
    assert cli("apply", str(path), "--config", str(config), "--yes").code == 0


def test_state_dir_key_file_made_readable_by_others_is_made_private(config: Path) -> None:
    key_file = config / ".provgit" / "secret.key"
    key_file.chmod(0o644)
    assert network_key(None, config / ".provgit") == _key(config)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


@pytest.fixture
def sims(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Sim]]:
    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)
    started = start_sims(tmp_path, [("mcl", "micollab"), ("cs1", "mivb"), ("cs2", "mivb")])
    try:
        yield started
    finally:
        for s in started:
            s.stop()


@pytest.mark.slow
def test_plan_signed_with_secret_key_applies_from_another_state_dir(
    sims: list[Sim], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CI shape: a plan job and an apply job, each with its own state
    directory, sharing PROVGIT_SECRET_KEY; real simulators as the elements."""
    config = write_config(
        tmp_path / "config",
        sims,
        users=2,
        embedded_mcl=False,
        extra_settings="secret_key: {env: PROVGIT_SECRET_KEY}\n",
    )
    plan = tmp_path / "plan.json"
    monkeypatch.setenv("PROVGIT_SECRET_KEY", "the-network-key-0f3a9c41")
    made = cli("plan", str(config), "--out", str(plan), "--state-dir", str(tmp_path / "plan-job"))
    assert made.code == 0, made.out + made.err
    assert json.loads(plan.read_text())["signature"]["key"] == "secret_key"
    apply_job = str(tmp_path / "apply-job")

    # Another secret_key value: refused, nothing written.
    monkeypatch.setenv("PROVGIT_SECRET_KEY", "some-other-network-key")
    r = cli("apply", str(plan), "--config", str(config), "--yes", "--state-dir", apply_job)
    assert r.code == 3 and MISMATCH in r.err, r.err
    assert "it names secret_key " in r.err
    # secret_key unset in the apply job, which has no key of its own: said so.
    monkeypatch.delenv("PROVGIT_SECRET_KEY")
    r = cli("apply", str(plan), "--config", str(config), "--yes", "--state-dir", apply_job)
    assert r.code == 3
    assert (
        "plan signature cannot be checked: it names secret_key " in r.err
        and "the network's secret_key (env:PROVGIT_SECRET_KEY) is not set here" in r.err
    ), r.err
    # ... and when it has a key of its own, that key stands in, and says so.
    assert cli("plan", str(config), "--state-dir", apply_job).code == 0
    r = cli("apply", str(plan), "--config", str(config), "--yes", "--state-dir", apply_job)
    assert r.code == 3 and MISMATCH in r.err
    assert "as secret_key env:PROVGIT_SECRET_KEY is not usable here" in r.err
    assert all(s.records() == {} for s in sims)

    monkeypatch.setenv("PROVGIT_SECRET_KEY", "the-network-key-0f3a9c41")
    r = cli("apply", str(plan), "--config", str(config), "--yes", "--state-dir", apply_job)
    assert r.code == 0, r.out + r.err
    mcl, cs1, cs2 = sims
    assert set(mcl.records()["users"]) == {"user0", "user1"}
    assert set(cs1.records()["users"]) == {"user0"}
    assert set(cs2.records()["users"]) == {"user1"}


def _legacy_department(config: Path) -> None:
    """A record someone made on the MiCollab by hand: provgit did not create it."""
    store = ElementStore(config / ".provgit" / "elements" / "mcl.sqlite")
    try:
        store.write(WriteOp("put", "departments", "Legacy", {"name": "Legacy"}))
    finally:
        store.close()


def test_pruning_plan_deletes_what_provgit_did_not_create(config: Path, tmp_path: Path) -> None:
    _legacy_department(config)
    plan = tmp_path / "prune.json"
    assert cli("plan", str(config), "--prune", "--out", str(plan)).code == 0
    delete = _op(json.loads(plan.read_text()), "mcl", "departments", "Legacy")
    assert delete["action"] == "delete" and delete["managed"] is False
    r = cli("apply", str(plan), "--config", str(config), "--yes")
    assert r.code == 0, r.out + r.err
    assert "Legacy" not in _stores(config)["mcl"].get("departments", {})


def test_prune_rule_dropped_since_the_plan_refuses_its_deletes(
    config: Path, tmp_path: Path
) -> None:
    settings = config / "provgit.yaml"
    settings.write_text(SETTINGS.format(extra="  prune: [departments]\n"))
    # The prune rule applied first: a commit cannot loosen the rules of its own deletes.
    assert cli("reconcile", str(config)).code == 0
    _legacy_department(config)
    plan = tmp_path / "prune.json"
    assert cli("plan", str(config), "--out", str(plan)).code == 0
    assert _op(json.loads(plan.read_text()), "mcl", "departments", "Legacy")["action"] == "delete"
    before, runs = _stores(config), _runs(config)
    settings.write_text(SETTINGS.format(extra=""))
    _assert_refused(
        config,
        plan,
        before,
        runs,
        "mcl: delete departments/Legacy: provgit did not create this record, the plan was not "
        "made with --prune and safety.prune does not name its kind",
    )


def test_refusal_in_json_lists_every_problem(config: Path, plan_file: Path) -> None:
    def two(doc: dict[str, Any]) -> None:
        add_protected_delete(doc)
        point_pin_elsewhere(doc)

    _tamper(plan_file, two, resign=_key(config))
    r = cli("apply", str(plan_file), "--config", str(config), "--yes", "--format", "json")
    assert r.code == 3
    doc = json.loads(r.out)
    assert doc["applied"] is False and len(doc["refused"]) == 2
    assert any("users/reception: protected" in p for p in doc["refused"])


def test_plan_naming_a_config_outside_the_working_directory_needs_config(
    config: Path, plan_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The attacker's own copy of the config, whose key they hold, named by the
    # plan: without --config, apply must not let the plan pick its checker.
    evil = tmp_path / "evil"
    evil.mkdir()
    for f in config.glob("*.yaml"):
        (evil / f.name).write_text(f.read_text())
    evil_key = network_key(None, evil / ".provgit")
    assert evil_key is not None
    doc = json.loads(plan_file.read_text())
    doc["source"] = str(evil)
    add_protected_delete(doc)
    _recount(doc)
    doc.pop("signature", None)
    plan_file.write_text(signing.signed_text(Plan.from_json(doc), evil_key))
    before, runs = _stores(config), _runs(config)
    elsewhere = tmp_path / "job"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    r = cli("apply", str(plan_file), "--yes")
    assert r.code == 1, r.out + r.err
    assert "outside the current directory; pass --config PATH" in r.err
    assert _stores(config) == before
    assert _runs(config) == runs


def test_plan_of_a_config_in_the_working_directory_applies_without_config(
    config: Path, plan_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the checkout the job runs in holds the config
    r = cli("apply", str(plan_file), "--yes")
    assert r.code == 0, r.out + r.err
