"""adversary8: integers past 64 bits in the config. Python reads at most 4,300
digits (past that, int() raised a ValueError: a traceback, not a located
problem), and a number that validated (`markdown_max_bytes: 10**23`, an
alarm level, a safety count: their fields have no upper bound) crashed every
plan and reconcile afterwards (orjson: 'Integer exceeds 64-bit range' while
writing the memo's summary) while `provgit validate` said valid. The loader
refuses them, located, as it does any other unusable YAML (a config holding
one: tests/api/test_adversary8_huge_numbers.py)."""

from __future__ import annotations

import pytest

from provgit.load.yaml_events import YamlProblem, parse_documents

HUGE = "1" + "0" * 23


@pytest.mark.parametrize(
    "text",
    [
        "a: [1, " + "9" * 5000 + "]\n",
        f"a: {HUGE}\n",
        f"a: -{HUGE}\n",
        "a: !!int " + "7" * 5000 + "\n",
        "a: 0x" + "f" * 17 + "\n",
        f'a: "{HUGE}"\nb: 9223372036854775807\nc: -9223372036854775808\n',
    ],
    ids=["5000-digits", "past-64-bits", "negative", "tagged", "hex", "in-range"],
)
def test_an_integer_past_64_bits_is_a_located_yaml_problem(text: str) -> None:
    if text.startswith('a: "'):
        assert parse_documents(text.encode()) == [{"a": HUGE, "b": 2**63 - 1, "c": -(2**63)}]
        return
    with pytest.raises(YamlProblem) as e:
        parse_documents(text.encode())
    assert "past 64 bits" in e.value.message and e.value.line == 1 and e.value.column > 1
