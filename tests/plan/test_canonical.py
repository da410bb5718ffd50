"""One canonical form for plan, import and drift: equivalent forms compare equal."""

from __future__ import annotations

from provgit.model.common import CorSet, CosSet
from provgit.model.telephony import Role, Template
from provgit.plan.compute import field_changes
from provgit.projection.canonical import canonical, periods, same_value

DESK = Template.model_validate(
    {
        "name": "Desk",
        "phones": [{"label": "Desk", "device_type": "6920", "primary": True}],
        "cos": {"day": 10, "night1": 60},
        "cor": {"day": 2},
    }
)
TEMPLATES = {"Desk": DESK}
ROLES = {"Clerk": Role.model_validate({"name": "Clerk", "template": "Desk"})}


def test_a_night_band_equal_to_day_is_the_same_as_leaving_it_out() -> None:
    assert periods({"day": 40, "night1": 40}) == periods({"day": 40})
    assert periods(CosSet(day=40, night1=40)) == periods(CosSet(day=40))
    assert periods(CorSet(day=3, night2=3)) == {"day": 3, "night1": 3, "night2": 3}
    assert canonical("templates", {"name": "T", "cos": {"day": 40, "night1": 40}}) == canonical(
        "templates", {"name": "T", "cos": {"day": 40}}
    )


def test_a_user_inheriting_the_template_default_equals_one_writing_it_out() -> None:
    short = {
        "login_id": "a",
        "first_name": "A",
        "last_name": "B",
        "role": "Clerk",
        "services": [{"dn": "2113"}],
    }
    full = {
        **short,
        "directory_name": "B, A",
        "services": [
            {
                "dn": 2113,
                "label": "Desk",
                "device_type": "6920",
                "cos": {"day": 10, "night1": 60, "night2": 60},
                "cor": {"day": 2},
            }
        ],
    }
    assert canonical("users", short, TEMPLATES, ROLES) == canonical("users", full, TEMPLATES, ROLES)
    other = {**short, "services": [{"dn": "2113", "cos": {"day": 11}}]}
    assert canonical("users", other, TEMPLATES, ROLES) != canonical(
        "users", short, TEMPLATES, ROLES
    )


def test_empty_and_absent_lists_and_numeric_text_are_one_value() -> None:
    assert same_value([], None)
    assert same_value("2113", 2113)
    assert not same_value("2113", 2114)
    assert not same_value(True, "1")
    assert field_changes({"dn": "2113", "members": []}, {"dn": 2113}) == {}
    assert field_changes({"dn": "2113"}, {"dn": 2113, "tags": []}) == {}
    assert field_changes({"dn": "2113"}, {"dn": "2114"}) == {
        "dn": {"before": "2114", "after": "2113"}
    }


def test_a_user_taking_its_template_from_its_role_equals_one_naming_it() -> None:
    # What an element holds names the template; the YAML may leave it to the role.
    by_role = {"login_id": "a", "first_name": "A", "last_name": "B", "role": "Clerk"}
    named = {**by_role, "template": "Desk"}
    assert canonical("users", by_role, TEMPLATES, ROLES) == canonical(
        "users", named, TEMPLATES, ROLES
    )
    other = {**by_role, "template": "Other"}
    assert canonical("users", other, TEMPLATES, ROLES) != canonical(
        "users", by_role, TEMPLATES, ROLES
    )


def test_nested_maps_compare_by_meaning_each_side_and_report_a_real_difference() -> None:
    desk = {"dn": "2113", "label": "", "device_type": "6920", "tags": []}
    held = {"dn": 2113, "device_type": "6920", "_rev": 7, "cos": None}
    # Empty or absent on either side, numeric text, the element's own keys: the same.
    assert field_changes({"services": [desk]}, {"services": [held]}) == {}
    # The element's own key on provgit's side is provgit's value: missing is a change.
    mine = {**desk, "_note": "x"}
    assert field_changes({"services": [mine]}, {"services": [held]}) != {}
    # A value only the element holds (not its bookkeeping) is a change, as is
    # another device type; the whole field is shown before and after.
    extra = {**held, "label": "Desk"}
    assert field_changes({"services": [desk]}, {"services": [extra]}) == {
        "services": {"before": [extra], "after": [desk]}
    }
    other = {**held, "device_type": "6940"}
    assert field_changes({"services": [desk]}, {"services": [other]}) == {
        "services": {"before": [other], "after": [desk]}
    }
    # A secret compares by its fingerprint; an unresolved one is never a change.
    pin = {"$sensitive": "ab12", "ref": "env:PIN"}
    assert field_changes({"p": {"v": pin}}, {"p": {"v": dict(pin)}}) == {}
    assert field_changes({"p": {"v": pin}}, {"p": {"v": {**pin, "$sensitive": "cd34"}}}) != {}
    unresolved = {"$sensitive": "unresolved", "ref": "env:PIN"}
    assert field_changes({"p": {"v": unresolved}}, {"p": {"v": pin}}) == {}
