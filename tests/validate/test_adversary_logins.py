"""Login ids that read as another user's, in the characters MiCollab accepts.

Only ISO 8859-1 reaches this check (Cyrillic, Greek, fullwidth and
mathematical letters are refused before it), so what is left to pass for
another login is made of Latin letters: `rn` beside `m`, `vv` beside `w`,
an accent a reviewer does not notice, `×` for `x`, `ø` for `o`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .base import TELEPHONY, summary, validate


def _second_user(login: str) -> str:
    return TELEPHONY + (
        f'  - login_id: "{login}"\n'
        "    first_name: Eve\n"
        "    last_name: Smith\n"
        "    department: Sales\n"
        "    location: Ottawa\n"
        "    role: Staff\n"
        "    host: cs1\n"
        "    services:\n"
        '      - dn: "1001"\n'
    )


@pytest.mark.parametrize("login", ["aIice", "alicé", "álice", "a1ice", "aIicè", "ALICE"])
def test_latin_look_alikes_of_a_login_are_refused(tmp_path: Path, login: str) -> None:
    found = validate(tmp_path, {"telephony.yaml": _second_user(login)})
    assert not found.ok, login
    lines = summary(found.diagnostics)
    assert any(
        "alice" in line and ("looks like" in line or "only in case" in line) for line in lines
    ), lines


@pytest.mark.parametrize(
    ("first", "second"),
    [("mchen", "rnchen"), ("wzhang", "vvzhang"), ("xcote", "×cote"), ("bob", "bøb")],
)
def test_letter_pairs_that_read_as_one_letter_are_refused(
    tmp_path: Path, first: str, second: str
) -> None:
    telephony = TELEPHONY.replace("login_id: alice", f"login_id: {first}")
    telephony = _second_user(second).replace(TELEPHONY, telephony)
    found = validate(tmp_path, {"telephony.yaml": telephony})
    lines = summary(found.diagnostics)
    assert any(f"looks like the login id '{first}'" in line for line in lines), lines


def test_logins_that_differ_in_a_plain_letter_are_fine(tmp_path: Path) -> None:
    found = validate(tmp_path, {"telephony.yaml": _second_user("alicia")})
    assert found.ok, summary(found.diagnostics)
