"""The watcher's counted identities (`fact_index.FactIndex`) say "unique"
exactly when the sets over all files do (`by_file._unique`), as files come and
go commit after commit: repeated login ids (as written, folded, look-alike),
repeated DNs, a login id equal to a DN, within one file or across files."""

from __future__ import annotations

import random

from provgit.validate.by_file import FileFacts, _unique
from provgit.validate.fact_index import FactIndex


def _facts(rng: random.Random) -> FileFacts:
    # A small pool of values, so that repeats and crossings happen often.
    logins = [rng.choice("abcdefgh") + str(rng.randrange(4)) for _ in range(rng.randrange(4))]
    dns = [str(rng.randrange(6)) for _ in range(rng.randrange(3))]
    if rng.random() < 0.2:
        dns.append(rng.choice(logins or ["a0"]))  # a DN written like a login id
    return FileFacts(
        False,
        [],
        logins,
        [x.casefold() for x in logins],
        [x.replace("0", "o") for x in logins],
        dns,
        {},
        set(),
        set(),
        set(),
        set(),
    )


def test_counted_uniqueness_equals_the_sets_over_every_commit() -> None:
    rng = random.Random(7)
    index = FactIndex()
    files: dict[tuple[str, str], FileFacts] = {}
    said = set()
    for step in range(3000):
        path = f"p{rng.randrange(5)}.yaml"
        for key in [k for k in files if k[0] == path]:
            del files[key]  # the file's old blob goes, as a commit replaces it
        if rng.random() < 0.8:
            files[(path, f"blob{step}")] = _facts(rng)
        index.track(dict(files))
        users = list(files.values())
        expected = _unique(users, sum(len(x.logins) for x in users))
        assert index.unique() == expected, step
        said.add(expected)
    assert said == {True, False}  # both answers were compared
    index.track({})
    assert index.unique()
