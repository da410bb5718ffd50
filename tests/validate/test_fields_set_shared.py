"""Models that write the same fields share one `model_fields_set`
(`model.build._share_fields_sets`, #16: ~100 MB of sets at 100,000 users), and
each still says exactly which fields its own record wrote."""

from __future__ import annotations

import json

from provgit.load.loader import LoadedFile
from provgit.model.build import build_file


def _file(users: list[dict[str, object]]) -> LoadedFile:
    docs = [{"users": users}]
    return LoadedFile("people/a.yaml", "b" * 40, json.dumps(docs).encode(), docs)


def test_models_writing_the_same_fields_share_one_set_that_stays_each_ones_own() -> None:
    base = {"first_name": "A", "last_name": "B", "role": "Agent", "host": "mivb1"}
    users = [
        {**base, "login_id": "u1", "services": [{"dn": "4001"}]},
        {**base, "login_id": "u2", "services": [{"dn": "4002"}]},
        {**base, "login_id": "u3", "email": "u3@example.com", "services": [{"dn": "4003"}]},
    ]
    built = build_file(_file(users))
    assert not built.findings
    u1, u2, u3 = (m for _, m in built.models["users"])
    assert u1.model_fields_set is u2.model_fields_set  # one set, not one each
    assert u3.model_fields_set == u1.model_fields_set | {"email"}
    for model, raw in zip((u1, u2, u3), users, strict=True):
        assert model.model_fields_set == set(raw)
        assert model.model_dump(exclude_unset=True).keys() == raw.keys()
    # A copy with a change says what it changed, and the others do not.
    renamed = u1.model_copy(update={"email": "new@example.com"})
    assert "email" in renamed.model_fields_set
    assert "email" not in u1.model_fields_set and "email" not in u2.model_fields_set
    assert u1 != u2 and u1 == build_file(_file(users[:1])).models["users"][0][1]
