"""A field an element added to a record provgit wrote, named with an escape
sequence (an out-of-band edit on a real simulator): `provgit plan` printed
the name as it was, in the modify's lines and in its drift line (from the
journal's drift item), so the element's words drove the admin's terminal
(an OSC retitling the window here). Shown now with control characters as
U+XXXX, and kept so in the journal's drift item."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import Sim, cli_process, write_config

pytestmark = pytest.mark.slow

FIELD = "\x1b]0;owned\x07note"


def test_a_field_name_an_element_added_reaches_no_terminal(sims: list[Sim], tmp_path: Path) -> None:
    cs1 = sims[0]
    config = write_config(tmp_path / "config", sims, users=1)
    assert cli_process("reconcile", str(config)).code == 0
    record = {
        k: v
        for k, v in cs1.records()["users"]["user0"].items()
        if not k.startswith("_") or k == "_managed_by"
    }
    edit = {"op": "put", "collection": "users", "key": "user0", "if_revision": None}
    cs1.admin("/admin/edit", {**edit, "fields": {**record, FIELD: "x"}})
    plan = cli_process("plan", str(config))
    assert "\x1b" not in plan.out + plan.err and "\x07" not in plan.out, repr(plan.out)
    assert "<U+001B>]0;owned<U+0007>note" in plan.out, plan.out
    assert "drift: users/user0 on cs1" in plan.out, plan.out
    for argv in (("reconcile", str(config)), ("status", str(config))):
        ran = cli_process(*argv)
        assert "\x1b" not in ran.out + ran.err, repr(ran.out)
