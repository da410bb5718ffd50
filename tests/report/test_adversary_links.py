"""A reach-through template cannot break out of its link in status.md.

The template is config text: a `|` in it split the table row (a forged cell
beside the real ones) and a line break ended the row, so the rest of the
template became markdown of its own (a heading, a fake status line).
"""

from __future__ import annotations

import pytest

from provgit.render.status_markdown import _link


@pytest.mark.parametrize(
    "url",
    [
        "https://x.example/a|**Sync Completed**|b",
        "https://x.example/a\n\n# All elements in sync",
        "https://x.example/a\r\n| forged | row |",
        "https://x.example/a\tb\u2028c",
    ],
)
def test_a_link_stays_one_table_cell_on_one_line(url: str) -> None:
    link = _link("jdoe", url)
    assert link.startswith("[jdoe](https://x.example/a")
    assert link.endswith(")")
    assert "|" not in link
    assert not any(c.isspace() for c in link), repr(link)
