"""One registry of kinds: a kind is its model, its projection and a registry
entry. A toy kind registered here, with nothing else edited, is validated,
planned in reference order, applied to an embedded element and shown in status."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from apply.helpers import cli, read_store
from provgit import registry
from provgit.model.common import Model
from provgit.model.kinds import KINDS, Kind, resolve_kind
from provgit.plan import ordering
from provgit.projection.context import NO_DEPS, Context, Emit, rec
from provgit.projection.extend import register_kind, registered_kind
from provgit.projection.project import COLLECTION_KIND, PROJECTIONS
from provgit.records import COLLECTIONS, MIVB, form_name
from provgit.simulator.store import ElementStore
from provgit.wire.protocol import WriteOp


class SpeedDial(Model):
    name: str
    number: str
    department: str | None = None


def _speed_dial(ctx: Context, emit: Emit, key: str, m: SpeedDial) -> None:
    fields = rec(name=m.name, number=m.number, department=m.department)
    deps = (("departments", m.department),) if m.department else NO_DEPS
    for el in ctx.topo.call_servers:
        emit(el, "speed_dials", key, fields, deps)


ENTRY = registry.KindEntry(
    "speed_dials",
    (registry.CollectionEntry("speed_dials", {MIVB: "System Speed Call"}, order=15),),
    aliases=("speed_dial",),
    layout="network/speed-dials.yaml",
)
MODEL = Kind("speed_dials", "speed dial", SpeedDial, "name", lambda m: str(m.name))


@pytest.fixture
def speed_dials() -> Iterator[None]:
    with registered_kind(ENTRY, MODEL, _speed_dial):
        yield


def write_net(root: Path, dials: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "provgit.yaml").write_text("version: 1\nnetwork: t\n")
    (root / "net.yaml").write_text(
        "elements:\n"
        "  - {name: cs1, type: mivb, ceid: 10, cluster: east}\n"
        "departments:\n"
        "  - {name: Sales}\n" + dials
    )
    return root


def test_builtin_tables_come_from_the_registry() -> None:
    assert list(KINDS) == list(registry.ENTRIES)
    assert ordering.COLLECTION_ORDER[:3] == ["departments", "locations", "cos"]
    assert {"users", "remote_directory", "workflows"} == ordering.DELETE_FIRST
    assert COLLECTION_KIND["remote_directory"] == "users"
    assert COLLECTIONS[MIVB]["remote_directory"] == "Remote Directory Number Assignment"
    assert registry.SHORT_KINDS == {
        "classes_of_service": "cos",
        "ivr_media_servers": "media_servers",
    }
    assert list(PROJECTIONS) == [k for k in KINDS if k != "elements"]


def test_a_registered_kind_reaches_every_table_and_leaves_none_behind() -> None:
    with registered_kind(ENTRY, MODEL, _speed_dial):
        assert form_name(MIVB, "speed_dials") == "System Speed Call"
        assert COLLECTION_KIND["speed_dials"] == "speed_dials"
        order = ordering.COLLECTION_ORDER
        assert order.index("departments") < order.index("speed_dials") < order.index("cos")
        assert resolve_kind("speed-dial") is MODEL
        assert "speed_dials" in registry.SIMPLE_KINDS
        assert registry.LAYOUT["speed_dials"] == "network/speed-dials.yaml"
    assert "speed_dials" not in COLLECTION_KIND
    assert "speed_dials" not in COLLECTIONS[MIVB]
    assert "speed_dials" not in ordering.COLLECTION_ORDER
    assert "speed_dials" not in KINDS and "speed_dials" not in PROJECTIONS
    assert resolve_kind("speed_dial") is None


def test_a_kind_whose_collection_another_kind_has_is_refused_and_changes_nothing() -> None:
    clash = registry.KindEntry(
        "dials", (registry.CollectionEntry("users", {MIVB: "Users again"}, order=1),)
    )
    before = json.dumps(registry.COLLECTIONS, sort_keys=True)
    with pytest.raises(registry.RegistryError, match="collection 'users' already belongs"):
        register_kind(clash, Kind("dials", "dial", SpeedDial, "name", str), _speed_dial)
    assert json.dumps(registry.COLLECTIONS, sort_keys=True) == before
    assert "dials" not in KINDS and "dials" not in PROJECTIONS


def test_a_toy_kind_is_validated_planned_in_order_applied_and_shown_in_status(
    tmp_path: Path, speed_dials: None
) -> None:
    state = tmp_path / "state"
    bad = write_net(tmp_path / "bad", "speed_dials:\n  - {name: Reception, nmber: '100'}\n")
    ran = cli("validate", str(bad), "--no-cache")
    assert ran.code != 0
    assert "net.yaml:6:23: error: [speed_dials/Reception] unknown field 'nmber'" in ran.out

    root = write_net(
        tmp_path / "cfg", "speed_dials:\n  - {name: Reception, number: '100', department: Sales}\n"
    )
    assert cli("validate", str(root), "--no-cache").code == 0
    ran = cli("plan", str(root), "--state-dir", str(state), "--format", "json")
    assert ran.code == 0, ran.err
    ops = json.loads(ran.out)["elements"][0]["operations"]
    listed = [(o["collection"], o["key"], o["kind"]) for o in ops]
    assert listed == [
        ("departments", "Sales", "departments"),
        ("speed_dials", "Reception", "speed_dials"),
    ]

    ran = cli("apply", str(root), "--state-dir", str(state), "--yes")
    assert ran.code == 0, ran.out + ran.err
    held = read_store(state / "elements" / "cs1.sqlite")
    assert held["speed_dials"]["Reception"]["number"] == "100"

    ran = cli(
        "status", str(root), "--state-dir", str(state), "--kind", "speed_dial", "--format", "json"
    )
    assert ran.code == 0, ran.err
    shown = [(r["kind"], r["resource"], r["status"]) for r in json.loads(ran.out)["resources"]]
    assert shown == [("speed_dials", "Reception", "Sync Completed")]


def test_a_toy_kind_is_read_back_by_import_with_no_other_module_edited(
    tmp_path: Path, speed_dials: None
) -> None:
    state = tmp_path / "state"
    root = write_net(
        tmp_path / "cfg", "speed_dials:\n  - {name: Reception, number: '100', department: Sales}\n"
    )
    assert cli("apply", str(root), "--state-dir", str(state), "--yes").code == 0

    def imported(*extra: str) -> dict[str, Any]:
        ran = cli("import", "--into", str(root), "--state-dir", str(state), *extra)
        assert ran.code == 0, ran.out + ran.err
        report: dict[str, Any] = json.loads((state / "import" / "import.json").read_text())
        return report

    # In sync: the element's record reads back as exactly the YAML's resource.
    summary = imported("--dry-run")["summary"]
    assert (summary["automatic"], summary["review"], summary["unchanged"]) == (0, 0, 2)

    held = read_store(state / "elements" / "cs1.sqlite")["speed_dials"]["Reception"]
    store = ElementStore(state / "elements" / "cs1.sqlite")
    try:
        store.write(
            WriteOp("put", "speed_dials", "Reception", {**held, "number": "101"}), force=True
        )
    finally:
        store.close()
    # Read back and compared field by field: the element's side is shown for review.
    (item,) = imported("--dry-run")["items"]
    assert (item["kind"], item["key"], item["category"]) == ("speed_dials", "Reception", "review")
    sides = {s["source"]: s["values"] for s in item["conflicts"][0]["sides"]}
    assert sides == {"yaml": {"number": "100"}, "cs1": {"number": "101"}}
    assert imported("--prefer-element")["summary"]["written"] == 1
    assert "number: '101'" in (root / "net.yaml").read_text()
    assert cli("validate", str(root), "--no-cache").code == 0
    ran = cli("plan", str(root), "--state-dir", str(state), "--detailed-exitcode")
    assert ran.code == 0, ran.out
