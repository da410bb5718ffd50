"""Reach-through links quote a record's key and form as before the shortcut
for plain keys: a key with a character a URL reserves is still quoted."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from provgit.report.links import reach_through

TEMPLATE = "https://admin.example/{element}/{form}/{collection}?key={key}"


@pytest.mark.parametrize(
    "key",
    ["jpatel", "user.00017", "a-b_c~d", "", "3105", "a b", "x/y", "?k=1&j=2", "#frag", "é", "%41"],
)
@pytest.mark.parametrize("form", ["Users and Services", "Multiline/Sets", "x%y"])
def test_a_link_quotes_what_a_url_reserves_and_leaves_plain_keys_as_they_are(
    key: str, form: str
) -> None:
    url = reach_through(TEMPLATE, "mivb1", form, "users", key)
    assert url == TEMPLATE.format(
        element="mivb1", form=quote(form), collection="users", key=quote(key, safe="")
    )


def test_a_template_naming_an_unknown_field_gives_no_link() -> None:
    assert reach_through("https://x/{nope}", "mivb1", "Users", "users", "k") is None
    assert reach_through(None, "mivb1", "Users", "users", "k") is None
