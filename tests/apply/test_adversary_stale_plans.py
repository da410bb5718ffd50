"""A signed plan made from another version of the config is not applied.

Every plan of every branch is signed with the same key (the CI's). A plan made
on a pull request that was never merged, or before a commit was reverted, is
still validly signed: applied against the config now, it would write the values
that branch had (a first name, a class of service) to records the config still
has. Apply refuses a write whose record is not the one the config wants.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from . import test_signed_plans as signed
from .helpers import cli
from .test_signed_plans import _runs, _stores, _user, _write

# The signed-plan tests' network and plan, reused as fixtures of this module.
config = signed.config
plan_file = signed.plan_file


def test_plan_of_a_config_version_since_reverted_is_refused(config: Path, plan_file: Path) -> None:
    # The plan renames jdoe to Johnny; the config then goes back to John (the
    # change was reverted, or the plan came from an unmerged branch).
    _write(
        config,
        [
            _user("reception", "Front", "2000"),
            _user("jdoe", "John", "2001", "SIGN_TEST_PIN"),
            _user("blee", "Bo", "2003", "SIGN_TEST_PIN"),
        ],
    )
    before, runs = _stores(config), _runs(config)
    r = cli("apply", str(plan_file), "--config", str(config), "--yes")
    assert r.code == 3, r.out + r.err
    assert "users/jdoe" in r.err and "first_name" in r.err, r.err
    assert "the config wants other values" in r.err, r.err
    assert "Nothing was applied." in r.err
    assert _stores(config) == before
    assert _stores(config)["mcl"]["users"]["jdoe"]["first_name"] == "John"
    assert _runs(config) == runs


def test_plan_still_matching_the_config_applies_after_a_pin_is_rotated(
    config: Path, plan_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A secret's value may change between plan and apply (its fingerprint
    # then differs): the reference is what the plan is held to.
    monkeypatch.setenv("SIGN_TEST_PIN", "11112222")
    r = cli("apply", str(plan_file), "--config", str(config), "--yes")
    assert r.code == 0, r.out + r.err
    assert _stores(config)["mcl"]["users"]["jdoe"]["first_name"] == "Johnny"
