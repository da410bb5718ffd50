"""Every classification case as data: elements -> Automatic / For Review / Unresolved.

Each case takes the test network as its elements hold it, changes it the way a
real network drifts, and names the items expected with their category and a
phrase of their reason (the choice made, for For Review).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from provgit.importing.analysis import Item, Options

from .helpers import Records, run


def _set(element: str, coll: str, key: str, **values: object) -> Callable[[Records], None]:
    def mutate(r: Records) -> None:
        r[element][coll][key].update(values)

    return mutate


def _both(*fns: Callable[[Records], None]) -> Callable[[Records], None]:
    def mutate(r: Records) -> None:
        for fn in fns:
            fn(r)

    return mutate


def _phone_cos(r: Records) -> None:
    r["mivb1"]["users"]["fali"]["services"][0]["cos_day"] = "1"


def _mcl_label(r: Records) -> None:
    r["micollab1"]["users"]["eclarke"]["services"][0]["label"] = "Office"


def _stray_phone(r: Records) -> None:
    r["mivb1"]["users"]["eclarke"] = copy.deepcopy(r["mivb3"]["users"]["eclarke"])


def _renamed_on_call_server(r: Records) -> None:
    rec = r["mivb3"]["users"].pop("eclarke")
    r["mivb3"]["users"]["emily.c"] = {**rec, "login_id": "emily.c"}


def _dn_twice(r: Records) -> None:
    base = r["micollab1"]["users"]["jokafor"]
    r["micollab1"]["users"]["tbrown"] = {
        **copy.deepcopy(base),
        "login_id": "tbrown",
        "first_name": "Tom",
        "last_name": "Brown",
        "directory_name": "Brown, Tom",
        "host": "mivb1",
        "services": [{"dn": "2190", "label": "Desk", "device_type": "6930"}],
    }
    phone = copy.deepcopy(r["mivb3"]["users"]["jokafor"])
    phone.update(
        login_id="tbrown", first_name="Tom", last_name="Brown", directory_name="Brown, Tom"
    )
    phone["services"] = phone["services"][:1]  # DN 3106: jokafor's on mivb3
    r["mivb1"]["users"]["tbrown"] = phone


def _intern_role(r: Records) -> None:
    r["micollab1"]["roles"]["Intern"] = {"name": "Intern", "template": "Intern Phone"}


def _intern_user(r: Records) -> None:
    _intern_role(r)
    user = copy.deepcopy(r["micollab1"]["users"]["reception"])
    user.update(login_id="intern1", role="Intern", template=None, directory_name="Intern, One")
    user["services"] = [{"dn": "2199", "label": "Desk", "device_type": "6920"}]
    r["micollab1"]["users"]["intern1"] = user
    phone = copy.deepcopy(r["mivb1"]["users"]["reception"])
    phone.update(login_id="intern1", directory_name="Intern, One")
    phone["services"] = [
        {
            "dn": "2199",
            "label": "Desk",
            "device_type": "6920",
            "cos_day": "10",
            "cos_night1": "60",
            "cos_night2": "60",
            "cor_day": 2,
            "cor_night1": 2,
            "cor_night2": 2,
        }
    ]
    r["mivb1"]["users"]["intern1"] = phone


def _no_host(r: Records) -> None:
    user = copy.deepcopy(r["micollab1"]["users"]["eclarke"])
    user.update(login_id="ghost", host="mivb9", email="ghost@example.net")
    user["services"] = [{"dn": "2999", "label": "Desk", "device_type": "6930"}]
    r["micollab1"]["users"]["ghost"] = user


SALES_YAML = {"sales.yaml": "departments:\n  - name: Sales\n    description: Sales team\n"}
WZHANG_YAML = {
    "wzhang.yaml": (
        "users:\n  - login_id: wzhang\n    first_name: Wei\n    last_name: Zhang\n"
        "    email: w.zhang@elsewhere.example\n    host: mivb1\n    services:\n"
        '      - dn: "2113"\n'
    )
}


@dataclass
class Case:
    id: str
    mutate: Callable[[Records], None] | None
    expect: list[tuple[str, str, str]]  # (kind/key, category, phrase in its reasons)
    files: dict[str, str] = field(default_factory=dict)
    options: Options = field(default_factory=Options)
    audio: bool = True
    action: dict[str, str] = field(default_factory=dict)  # kind/key -> action


CASES = [
    Case(
        "automatic: elements agree, no YAML yet",
        None,
        [("users/wzhang", "automatic", "new"), ("templates/Lab Phone", "automatic", "new")],
        action={"users/wzhang": "add"},
    ),
    Case(
        "review: a user with different names on host and partner (MiCollab wins)",
        _set("mivb1", "users", "fali", first_name="Fatimah"),
        [("users/fali", "review", "user data: micollab1")],
    ),
    Case(
        "review: phone data differs between host and partner (host wins)",
        _phone_cos,
        [("users/fali", "review", "phone data: mivb2")],
    ),
    Case(
        "review: MiCollab's phone list differs from the host's (host wins)",
        _mcl_label,
        [("users/eclarke", "review", "phone data: mivb3")],
    ),
    Case(
        "review: phone record on a call server that is not the host's partner",
        _stray_phone,
        [("users/eclarke", "review", "host: mivb3")],
    ),
    Case(
        "review: paired by DN under another login (MiCollab's login wins)",
        _renamed_on_call_server,
        [("users/eclarke", "review", "login id: micollab1")],
    ),
    Case(
        "review: template differs between MiCollab and a call server",
        _set("mivb1", "templates", "Standard Desk", description="Old desk set"),
        [("templates/Standard Desk", "review", "the elements disagree: micollab1")],
    ),
    Case(
        "review: a role's template differs between MiCollab and a call server",
        _set("mivb1", "roles", "Receptionist", template="Desk and Softphone"),
        [("roles/Receptionist", "review", "the elements disagree: micollab1")],
    ),
    Case(
        "review: call servers disagree on a class of service (most win)",
        _set("mivb3", "cos", "10", comment="Std"),
        [("classes_of_service/10", "review", "the elements disagree: mivb1, mivb2")],
    ),
    Case(
        "review: an element disagrees with existing YAML (YAML wins)",
        None,
        [("departments/Sales", "review", "existing YAML: yaml")],
        files=SALES_YAML,
        action={"departments/Sales": "keep"},
    ),
    Case(
        "review: an element disagrees with existing YAML (--prefer-element)",
        None,
        [("departments/Sales", "review", "existing YAML: elements")],
        files=SALES_YAML,
        options=Options(prefer_element=True),
        action={"departments/Sales": "modify"},
    ),
    Case(
        "unresolved: two users claim one DN",
        _dn_twice,
        [
            ("users/tbrown", "unresolved", "DN 3106 is claimed by two users"),
            ("users/jokafor", "unresolved", "DN 3106 is claimed by two users"),
        ],
    ),
    Case(
        "unresolved: a role whose template is missing everywhere",
        _intern_role,
        [("roles/Intern", "unresolved", "template 'Intern Phone' is not defined")],
    ),
    Case(
        "unresolved: a user whose role is unresolved",
        _intern_user,
        [
            ("roles/Intern", "unresolved", "template 'Intern Phone'"),
            ("users/intern1", "unresolved", "role 'Intern'"),
        ],
    ),
    Case(
        "unresolved: prompt audio not in the repository, and what plays it",
        None,
        [
            ("prompts/welcome:en-US", "unresolved", "audio is not in the config repository"),
            ("prompts/welcome:fr-CA", "unresolved", "audio is not in the config repository"),
            ("subroutines/Language Select", "unresolved", "would not validate"),
            ("workflows/Main Line", "unresolved", "would not validate"),
        ],
        audio=False,
    ),
    Case(
        "unresolved: same login, different email in the YAML",
        None,
        [("users/wzhang", "unresolved", "login id and email must both match")],
        files=WZHANG_YAML,
    ),
    Case(
        "unresolved: a record that would not validate",
        _set("micollab1", "users", "fali", directory_name="Ali, Fatima (Engineering)"),
        [("users/fali", "unresolved", "directory_name")],
    ),
    Case(
        "unresolved: no call server holds the phone, MiCollab names an unknown host",
        _no_host,
        [("users/ghost", "unresolved", "no call server holds a phone record")],
    ),
]


def _reasons(item: Item) -> str:
    parts = [item.summary, *item.unresolved]
    parts += [f"{c.what}: {c.chosen} ({c.rule})" for c in item.conflicts]
    return " | ".join(parts)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_classification(case: Case, tmp_path: Path) -> None:
    analysis = run(tmp_path, case.mutate, case.files, case.options, case.audio)
    items = {i.ref: i for i in analysis.items}
    for ref, category, phrase in case.expect:
        assert ref in items, f"{ref} not among {sorted(items)}"
        item = items[ref]
        assert item.category == category, f"{ref}: {item.category}: {_reasons(item)}"
        assert phrase in _reasons(item), f"{ref}: {_reasons(item)}"
        assert item.written == (category != "unresolved" and item.action != "keep")
    for ref, action in case.action.items():
        assert items[ref].action == action
    expected = {ref for ref, _, _ in case.expect}
    # Nothing else needs a person: every other item is Automatic.
    others = {i.ref: i.category for i in analysis.items if i.ref not in expected}
    assert set(others.values()) <= {"automatic"}, others


def test_unresolved_is_never_written(tmp_path: Path) -> None:
    analysis = run(tmp_path, _dn_twice)
    refs = {i.ref for i in analysis.writes}
    assert "users/tbrown" not in refs and "users/jokafor" not in refs
    assert "users/wzhang" in refs


def test_losing_sides_are_listed_as_what_apply_changes(tmp_path: Path) -> None:
    analysis = run(tmp_path, _set("mivb1", "users", "fali", first_name="Fatimah"))
    item = next(i for i in analysis.items if i.ref == "users/fali")
    assert {(c["element"], c["op"]) for c in item.overwrites} == {("mivb1", "modify")}
    assert "first_name" in item.overwrites[0]["fields"]


def test_secrets_become_placeholders_and_are_listed(tmp_path: Path) -> None:
    def with_pins(r: Records) -> None:
        r["micollab1"]["users"]["wzhang"]["voicemail_pin"] = {"$sensitive": "abc"}

    analysis = run(tmp_path, with_pins)
    item = next(i for i in analysis.items if i.ref == "users/wzhang")
    assert item.data is not None
    assert item.data["voicemail_pin"] == {"env": "VOICEMAIL_PIN_WZHANG"}
    assert [s.env for s in item.secrets] == ["VOICEMAIL_PIN_WZHANG"]
    assert "abc" not in repr(item.data)
