"""Random out-of-band edits -> `import --drift` -> merge -> reconcile: one value everywhere.

Seeded random edits on the sample network's embedded elements (the rules in
force decide which edits become the config's value: MiCollab for user data,
the hosting call server for phone data, the majority elsewhere). Whatever
they decide, after merging the drift branch and a reconcile every element
that shares a record holds the same value, the plan is empty, and the
config's bytes outside the records the branch changed are what they were.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from tests.importing.conftest import cli
from tests.importing.sample_network import edit, git, records, snapshot, synced

__all__ = ["synced"]  # the fixture, used by name

CALL_SERVERS = ("mivb1", "mivb2", "mivb3")
Edit = tuple[str, str, str, Callable[[dict[str, Any]], None]]  # element, collection, key, change


def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(fields: dict[str, Any]) -> None:
        node: Any = fields
        for p in path[:-1]:
            node = node[p]
        node[path[-1]] = value

    return change


def _edits(rng: random.Random, users: dict[str, dict[str, Any]]) -> list[Edit]:
    """Random element edits, given the users the MiCollab holds."""
    out: list[Edit] = []
    for n, login in enumerate(rng.sample(sorted(users), 4)):
        host = str(users[login]["host"])
        partner = {"mivb1": "mivb2", "mivb2": "mivb1"}.get(host)
        choice = rng.randrange(4)
        if choice == 0:  # user data on the MiCollab (the master): it wins
            out.append(("micollab1", "users", login, _set(("first_name",), f"Edited{n}")))
        elif choice == 1:  # phone data on the host (and its resilient partner): it wins
            for element in (host, partner):
                if element:
                    out.append((element, "users", login, _set(("services", 0, "label"), f"L{n}")))
        elif choice == 2:  # user data on a call server only: MiCollab's value wins
            out.append((host, "users", login, _set(("first_name",), f"Stray{n}")))
        else:  # a reach-through COS edit on every call server (they share the record)
            out += [(e, "cos", "10", _set(("comment",), f"Std {n}")) for e in CALL_SERVERS]
    return out


def _record_key(kind: str, record: Any) -> str:
    for field in ("login_id", "name", "number"):
        if field in record:
            return f"{kind}/{record[field]}"
    return f"{kind}/?"


def _outside(text: str, changed: set[str]) -> list[str]:
    """The file's lines with the lines of the changed records taken out."""
    from provgit.importing.writer import _record_spans  # the writer's own notion of a record

    lines = text.splitlines()
    docs = list(YAML(typ="safe", pure=True).load_all(text))
    drop: set[int] = set()
    for (di, kind), spans in _record_spans(text).items():
        for record, (start, end) in zip(docs[di][kind], spans, strict=True):
            if _record_key(kind, record) in changed:
                drop.update(range(start, end))
    return [line for i, line in enumerate(lines) if i not in drop]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_element_edits_round_trip_through_a_drift_branch(synced: Path, seed: int) -> None:
    rng = random.Random(seed)
    for element, collection, key, change in _edits(rng, records(synced, "micollab1", "users")):
        edit(synced, element, collection, key, change)
    before = snapshot(synced)

    r = cli("import", "--drift", "--branch", "drift/x", "--into", str(synced), "--format", "json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    written = {f"{i['kind']}/{i['key']}" for i in report["items"] if i["written"]}
    assert written, "the random edits changed nothing the rules keep"
    git(synced, "merge", "-q", "--ff-only", "drift/x")

    r = cli("reconcile", str(synced))
    assert r.exit_code == 0, r.output
    r = cli("plan", str(synced), "--detailed-exitcode")
    assert r.exit_code == 0, r.output

    # Every element sharing a record holds the same value.
    mcl = records(synced, "micollab1", "users")
    for login, user in mcl.items():
        phone = records(synced, str(user["host"]), "users")[login]
        assert phone["first_name"] == user["first_name"]
        assert [s["label"] for s in phone["services"]] == [s["label"] for s in user["services"]]
    comments = {records(synced, e, "cos")["10"]["comment"] for e in CALL_SERVERS}
    assert len(comments) == 1

    # Bytes outside the changed records are identical (comments included).
    after = snapshot(synced)
    assert set(after) == set(before)
    for rel in before:
        if before[rel] != after[rel]:
            assert _outside(before[rel].decode(), written) == _outside(
                after[rel].decode(), written
            ), rel
