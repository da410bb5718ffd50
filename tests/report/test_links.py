"""Reach-through links quote a record's key and form as before the shortcut
for plain keys: a key with a character a URL reserves is still quoted."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from provgit.report.links import link_maker, reach_through

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


@pytest.mark.parametrize(
    "template",
    [
        TEMPLATE,
        "https://x/{key}/{key}?f={form}&e={element}",
        "{key}",
        "javascript:{key}",
        "https://x/{{literal}}/{key}",
        "https://x/{key!r}",
        "https://x/{key:>12}",
        "https://x/{key[0]}",
        "https://x/{0}",
        "https://x/{nope}",
        "https://x/{",
        "https://x/}",
        "https://x/{element}{form}{collection}",
        "",
    ],
)
@pytest.mark.parametrize("key", ["jpatel", "a b", "x/y", "", "{key}", "é"])
def test_a_link_made_from_the_parsed_template_is_the_formatted_one(template: str, key: str) -> None:
    """`link_maker` parses a template once per element and collection; what it
    makes is what `reach_through` formats, for any template an admin may write."""
    made = link_maker(template, "mivb1", "Users and Services", "users")
    assert made(key) == reach_through(template, "mivb1", "Users and Services", "users", key)
