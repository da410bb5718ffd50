"""`provgit validate` after edits answers from each file's stored facts exactly
what a full validation of the same tree answers: the same problems, located
alike, and the same counts; never "valid" from a stale file."""

from __future__ import annotations

import copy
import random
import shutil
from pathlib import Path
from typing import Any

import pytest

from provgit.api import Config
from provgit.load.cache import CACHE_FORMAT
from provgit.source import read_directory
from provgit.validate import validate_source
from provgit.validate.by_file import FORMAT

from .base import BASE, write

SETTINGS = "version: 1\nnetwork: test\n"

ROLES = ("Staff",)
FIRST = ("Ann", "Bob", "Cy", "Dee", "Eve", "Fay", "Gus", "Hal", "Ivy")


def _users(n_files: int, per_file: int) -> dict[str, list[dict[str, Any]]]:
    people: dict[str, list[dict[str, Any]]] = {}
    for f in range(n_files):
        people[f"people/p{f}.yaml"] = [
            {
                "login_id": f"user{f}x{i}",
                "first_name": FIRST[(f + i) % len(FIRST)],
                "last_name": "Lee",
                "department": "Sales",
                "location": "Ottawa",
                "role": "Staff",
                "host": "cs1",
                "voicemail_pin": {"env": f"PIN_{f}_{i}"},
                "services": [{"dn": str(2000 + 10 * f + i), "cos": {"day": 1}, "cor": {"day": 1}}],
            }
            for i in range(per_file)
        ]
    return people


def _render(users: list[dict[str, Any]]) -> str:
    lines = ["users:"]
    for u in users:
        first = True
        for k, v in u.items():
            lead = "  - " if first else "    "
            first = False
            if k == "services":
                lines.append(f"{lead}services:")
                for s in v:
                    items = [f"{sk}: {_flow(sv)}" for sk, sv in s.items()]
                    lines.append("      - " + items[0])
                    lines += [f"        {x}" for x in items[1:]]
            else:
                lines.append(f"{lead}{k}: {_flow(v)}")
    return "\n".join(lines) + "\n"


def _flow(v: Any) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_flow(x)}" for k, x in v.items()) + "}"
    if isinstance(v, str) and v.isdigit():
        return f'"{v}"'
    return str(v)


class Tree:
    """A config on disk whose users files are kept as data and edited at random."""

    def __init__(self, root: Path, rng: random.Random, key_in_file: bool = False) -> None:
        self.root = root
        self.rng = rng
        self.key = {"file": "/etc/provgit/netkey"} if key_in_file else {"env": "NET_KEY"}
        self.people = _users(3, 3)
        self.serial = 3000  # fresh DNs and login ids
        self.raw: dict[str, str | bytes] = {}  # a file written as is this step
        self.telephony = str(BASE["telephony.yaml"])
        write(root, {**BASE, "provgit.yaml": SETTINGS + f"secret_key: {_flow(self.key)}\n"})

    def flush(self) -> None:
        for rel in list(self.root.glob("people/*.yaml")):
            rel.unlink()
        files: dict[str, str | bytes] = {p: _render(u) for p, u in self.people.items() if u}
        files["telephony.yaml"] = self.telephony
        files.update(self.raw)
        write(self.root, files)
        self.raw = {}

    def user(self) -> dict[str, Any]:
        path = self.rng.choice(sorted(p for p, u in self.people.items() if u))
        return self.rng.choice(self.people[path])

    def other(self, than: dict[str, Any]) -> dict[str, Any]:
        while True:
            u = self.user()
            if u is not than:
                return u

    def edit(self, edits: list[Any]) -> str:
        what = self.rng.choice(edits)
        what(self, self.user())
        return str(what.__name__)

    def snapshot(self) -> tuple[dict[str, list[dict[str, Any]]], str]:
        return copy.deepcopy(self.people), self.telephony

    def restore(self, saved: tuple[dict[str, list[dict[str, Any]]], str]) -> None:
        self.people, self.telephony = copy.deepcopy(saved[0]), saved[1]


def rename(t: Tree, u: dict[str, Any]) -> None:
    u["first_name"] = t.rng.choice(FIRST)


def fresh_login(t: Tree, u: dict[str, Any]) -> None:
    t.serial += 1
    u["login_id"] = f"new{t.serial}"


def same_login(t: Tree, u: dict[str, Any]) -> None:
    u["login_id"] = t.other(u)["login_id"]


def login_in_other_case(t: Tree, u: dict[str, Any]) -> None:
    u["login_id"] = t.other(u)["login_id"].upper()


def look_alike_login(t: Tree, u: dict[str, Any]) -> None:
    u["login_id"] = t.other(u)["login_id"].replace("0", t.rng.choice("Oo"), 1)


def login_is_a_dn(t: Tree, u: dict[str, Any]) -> None:
    u["login_id"] = t.other(u)["services"][0]["dn"]


def same_dn(t: Tree, u: dict[str, Any]) -> None:
    u["services"][0]["dn"] = t.other(u)["services"][0]["dn"]


def fresh_dn(t: Tree, u: dict[str, Any]) -> None:
    t.serial += 1
    u["services"][0]["dn"] = str(t.serial)


def unknown_role(t: Tree, u: dict[str, Any]) -> None:
    u["role"] = "Stafff"


def unknown_host(t: Tree, u: dict[str, Any]) -> None:
    u["host"] = t.rng.choice(["cs9", "ivr1", "mc"])


def unknown_cos(t: Tree, u: dict[str, Any]) -> None:
    u["services"][0]["cos"] = {"day": 1, "night1": 7}


def pin_is_the_key(t: Tree, u: dict[str, Any]) -> None:
    u["voicemail_pin"] = dict(t.key)


def pin_file_inside_root(t: Tree, u: dict[str, Any]) -> None:
    u["voicemail_pin"] = {"file": str(t.root / "pins.txt"), "key": "A"}


def pin_file_outside(t: Tree, u: dict[str, Any]) -> None:
    u["voicemail_pin"] = {"file": "/etc/provgit/pins", "key": "A"}


def long_name(t: Tree, u: dict[str, Any]) -> None:
    u["last_name"] = "Vandermeulenbroek"


def broken_record(t: Tree, u: dict[str, Any]) -> None:
    u["services"][0]["dn"] = "12ab"


def role_removed(t: Tree, u: dict[str, Any]) -> None:
    t.telephony = t.telephony.replace("- name: Staff", "- name: Crew")


def bad_yaml(t: Tree, u: dict[str, Any]) -> None:
    path = t.rng.choice(sorted(t.people))
    t.raw[path] = _render(t.people[path]).replace("users:", "users: [", 1)


def not_utf8(t: Tree, u: dict[str, Any]) -> None:
    path = t.rng.choice(sorted(t.people))
    t.raw[path] = _render(t.people[path]).encode().replace(b"Lee", b"L\xe9e", 1)


def move_to_other_file(t: Tree, u: dict[str, Any]) -> None:
    for users in t.people.values():
        if u in users:
            users.remove(u)
    t.people[t.rng.choice(sorted(t.people))].append(u)


def new_file(t: Tree, u: dict[str, Any]) -> None:
    t.serial += 1
    n = t.serial
    t.people[f"people/extra{n}.yaml"] = [
        {**u, "login_id": f"extra{n}", "services": [{"dn": str(n)}]}
    ]


# Edits that keep the tree valid, and edits that break it in one place.
VALID = [rename, fresh_login, fresh_dn, move_to_other_file, new_file, pin_file_outside]
BREAKING = [
    same_login,
    login_in_other_case,
    look_alike_login,
    login_is_a_dn,
    same_dn,
    unknown_role,
    unknown_host,
    unknown_cos,
    pin_is_the_key,
    pin_file_inside_root,
    long_name,
    broken_record,
    role_removed,
    bad_yaml,
    not_utf8,
]


def _cold(root: Path) -> tuple[list[Any], dict[str, int], int]:
    full = validate_source(read_directory(root), None)
    return full.diagnostics, full.state.counts(), full.files


@pytest.mark.parametrize("seed", range(8))
def test_cached_validate_after_random_edits_equals_a_cold_validation(
    tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    tree = Tree(tmp_path / "cfg", rng, key_in_file=seed % 2 == 1)
    state = tmp_path / "state"
    answered = {"valid": 0, "invalid": 0}

    def compare(done: list[str]) -> None:
        tree.flush()
        cached = Config.at(tree.root, state).validate()
        diags, counts, files = _cold(tree.root)
        assert cached.diagnostics == diags, (seed, done)
        assert cached.counts == counts and cached.files == files, (seed, done)
        answered["valid" if cached.ok else "invalid"] += 1

    for _ in range(25):
        # A few files edited at once, as between two runs of an admin's editor.
        compare([tree.edit(VALID) for _ in range(rng.choice((1, 1, 2, 3)))])
        if rng.random() < 0.7:
            saved = tree.snapshot()
            compare([tree.edit(BREAKING) for _ in range(rng.choice((1, 1, 1, 2)))])
            # Undone, in whichever file it was: the error goes with it.
            tree.restore(saved)
            compare(["undo"])
    # Both answers were given along the way, so both paths were compared.
    assert answered["valid"] and answered["invalid"], answered


def test_one_edited_file_is_the_only_one_read_again(tmp_path: Path) -> None:
    tree = Tree(tmp_path / "cfg", random.Random(0))
    tree.flush()
    state = tmp_path / "state"
    assert Config.at(tree.root, state).validate().ok
    # Without the parse cache a full validation would parse every file again.
    shutil.rmtree(state / "cache" / f"v{CACHE_FORMAT}")
    tree.people["people/p1.yaml"][0]["first_name"] = "Zed"
    tree.flush()
    verdict = Config.at(tree.root, state).validate()
    assert verdict.ok and verdict.parsed == 1 and verdict.cached == verdict.files - 1
    assert verdict.counts == _cold(tree.root)[1]


def test_a_duplicate_login_across_files_goes_when_the_other_file_is_fixed(
    tmp_path: Path,
) -> None:
    tree = Tree(tmp_path / "cfg", random.Random(0))
    tree.flush()
    state = tmp_path / "state"
    assert Config.at(tree.root, state).validate().ok
    tree.people["people/p2.yaml"][1]["login_id"] = "user0x0"
    tree.flush()
    verdict = Config.at(tree.root, state).validate()
    assert [d.message for d in verdict.diagnostics] == [
        "duplicate user 'user0x0': already defined at people/p0.yaml:2:5"
    ]
    # Fixed in the file that was not edited before: p2's stored facts stay, the error goes.
    tree.people["people/p0.yaml"][0]["login_id"] = "someone"
    tree.flush()
    assert Config.at(tree.root, state).validate().ok


def test_corrupt_stored_facts_are_not_an_answer(tmp_path: Path) -> None:
    tree = Tree(tmp_path / "cfg", random.Random(0))
    tree.flush()
    state = tmp_path / "state"
    assert Config.at(tree.root, state).validate().ok
    stored = list((state / "cache" / FORMAT).rglob("*.marshal"))
    assert stored
    for p in stored:
        p.write_bytes(b"\xff not marshal")
    (state / "cache" / "verdict.marshal").unlink()
    tree.people["people/p2.yaml"][1]["services"][0]["dn"] = "2000"
    tree.flush()
    verdict = Config.at(tree.root, state).validate()
    assert not verdict.ok and verdict.diagnostics == _cold(tree.root)[0]
