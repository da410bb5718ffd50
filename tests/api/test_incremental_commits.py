"""The watcher's validation of a git commit (`StageCache.validate` on what
`CommitReader` reads) answers, commit after commit, exactly what a cold
validation of the same commit answers: the same verdict, the same problems at
the same file:line:col, the same counts and the same network; though a valid
commit is judged from each file's kept facts without the rules across users
(`validate.by_file.facts_say_valid`) and its network merged from each file's
keyed models (`model.build.assemble_unique`). And what it projects, only the
records that changed projected again, is the projection of the cold network."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from tests.validate.test_by_file import BREAKING, VALID, Tree
from tests.watch.helpers import git

import provgit.api.incremental as incremental
from provgit.api.incremental import StageCache
from provgit.api.network import desired_target
from provgit.source.git import CommitReader
from provgit.validate import Validated, validate_source


def delete_file(t: Tree, u: dict[str, Any]) -> None:
    if len(t.people) > 1:
        del t.people[t.rng.choice(sorted(t.people))]


def rename_file(t: Tree, u: dict[str, Any]) -> None:
    t.serial += 1
    old = t.rng.choice(sorted(t.people))
    t.people[f"people/renamed{t.serial}.yaml"] = t.people.pop(old)


def add_file(t: Tree, u: dict[str, Any]) -> None:
    t.serial += 1
    n = t.serial
    t.people[f"people/added{n}.yaml"] = [
        {**u, "login_id": f"added{n}", "services": [{"dn": str(n), "cos": {"day": 1}}]}
    ]


EDITS = [*VALID, delete_file, rename_file, add_file]


def _same(fast: Validated, cold: Validated, done: list[str]) -> None:
    assert fast.diagnostics == cold.diagnostics, done
    assert [str(d.location) for d in fast.diagnostics] == [
        str(d.location) for d in cold.diagnostics
    ], done
    assert fast.ok == cold.ok, done
    assert (fast.files, fast.state.counts()) == (cold.files, cold.state.counts()), done
    if cold.ok:
        # The network itself, in the same order, each record where it is written.
        for kind, records in cold.state.resources.items():
            assert list(fast.state.resources[kind].items()) == list(records.items()), done
        assert list(fast.state.origins.items()) == list(cold.state.origins.items()), done
        assert fast.state.settings == cold.state.settings, done
        assert fast.state.sources == cold.state.sources, done


@pytest.mark.parametrize("seed", range(6))
def test_commit_after_commit_the_watcher_validates_as_a_cold_validation(
    tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(seed)
    tree = Tree(tmp_path / "cfg", rng, key_in_file=seed % 2 == 1)
    git(tree.root, "init", "-q", "-b", "main")
    cache = StageCache(tmp_path / "state")
    reader = CommitReader(tree.root, "", "cfg@main")  # keeps blobs between commits
    full_runs = []
    real = incremental.validate_built

    def counted(*args: Any) -> Validated:
        full_runs.append(1)
        return real(*args)

    monkeypatch.setattr(incremental, "validate_built", counted)
    answered = {"fast": 0, "full valid": 0, "invalid": 0}

    def commit_and_compare(done: list[str]) -> None:
        tree.flush()
        git(tree.root, "add", "-A")
        git(tree.root, "commit", "-q", "--allow-empty", "-m", ",".join(done))
        head = git(tree.root, "rev-parse", "HEAD")
        before = len(full_runs)
        source = reader.read(head)
        key, fast = cache.validate(source)
        cold_source = CommitReader(tree.root, "", "cfg@main").read(head)
        cold = validate_source(cold_source, None)
        _same(fast, cold, [str(seed), *done])
        if cold.ok:
            # Reprojected from the last commit: only the users whose record changed.
            target = cache.desired(key, source, fast).target
            full = desired_target(cold.state, cold_source.read_other, tmp_path / "cold")
            for part in ("records", "depends", "origin", "excluded", "read_only"):
                assert getattr(target, part) == getattr(full, part), (part, done)
            # Reprojection keeps the references it has met (project.py: a
            # deleted user's stay listed), so every one the cold one lists.
            assert set(full.unresolved_secrets) <= set(target.unresolved_secrets), done
        kind = "invalid" if not cold.ok else "full valid" if len(full_runs) > before else "fast"
        answered[kind] += 1

    commit_and_compare(["start"])
    for _ in range(20):
        commit_and_compare([tree.edit(EDITS) for _ in range(rng.choice((1, 1, 2, 3)))])
        if rng.random() < 0.6:
            saved = tree.snapshot()
            commit_and_compare([tree.edit(BREAKING) for _ in range(rng.choice((1, 1, 2)))])
            tree.restore(saved)  # reverted by the next commit: the error goes with it
            commit_and_compare(["revert"])
    # Valid commits were answered by the facts, and broken ones were caught.
    assert answered["fast"] and answered["invalid"], answered


def test_commit_after_commit_the_watchers_caches_hold_only_the_current_commits_files(
    tmp_path: Path,
) -> None:
    # A watcher lives for weeks of commits: what it keeps between them is the
    # last commit's files, whatever came before (the #16 soak's bound).
    rng = random.Random(7)
    tree = Tree(tmp_path / "cfg", rng)
    git(tree.root, "init", "-q", "-b", "main")
    cache = StageCache(tmp_path / "state")
    reader = CommitReader(tree.root, "", "cfg@main")
    seen: list[set[tuple[str, str]]] = []  # each commit's files
    for n in range(30):
        edits = BREAKING if n % 5 == 4 else EDITS  # refused commits among them
        saved = tree.snapshot()
        tree.edit(edits)
        tree.flush()
        git(tree.root, "add", "-A")
        git(tree.root, "commit", "-q", "--allow-empty", "-m", str(n))
        source = reader.read(git(tree.root, "rev-parse", "HEAD"))
        cache.validate(source)
        seen.append({(f.path, f.blob_id) for f in source.files})
        if edits is BREAKING:
            tree.restore(saved)
    tree_blobs = {line.split()[2] for line in git(tree.root, "ls-tree", "-r", "HEAD").splitlines()}
    current = {f.blob_id for f in source.files}
    files = {(f.path, f.blob_id) for f in source.files}
    assert current <= set(reader.blobs) <= tree_blobs  # other files read (audio) too
    assert not hasattr(cache, "_docs")  # parsed documents: dropped once built
    assert set(cache._built) <= files
    assert set(cache._facts) <= files
    # Kept from the last commit valid by the facts alone: one commit's, not all.
    assert any(set(cache._keyed) <= f for f in seen)
