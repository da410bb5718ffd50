"""adversary8: a config holding an integer past 64 bits (the loader's test:
tests/load/test_adversary8_huge_numbers.py). One that validated crashed every
plan and reconcile ('Integer exceeds 64-bit range', orjson, writing the memo's
summary) while `provgit validate` said valid: now invalid, nothing applied."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from provgit.api import Config, InvalidConfig

HUGE = "1" + "0" * 23


@pytest.mark.parametrize(
    "edit",
    [
        ("markdown_max_bytes: 60000", f"markdown_max_bytes: {HUGE}"),
        ("  major: 500", f"  major: {HUGE}"),
        ("max_deletes: {count: 25,", f"max_deletes: {{count: {HUGE},"),
    ],
    ids=["markdown-max-bytes", "alarm", "safety-count"],
)
def test_a_config_with_a_number_past_64_bits_is_invalid_and_nothing_is_applied(
    sample: Path, edit: tuple[str, str]
) -> None:
    settings = sample / "provgit.yaml"
    assert edit[0] in settings.read_text()
    settings.write_text(settings.read_text().replace(edit[0], edit[1], 1))
    state = sample.parent / "state"
    with pytest.raises(InvalidConfig) as e:
        asyncio.run(Config.open(sample, state).reconcile())
    assert any("past 64 bits" in d.message for d in e.value.diagnostics)
    assert not (state / "elements").exists() or not any((state / "elements").iterdir())
