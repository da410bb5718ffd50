"""adversary8: integers past 64 bits in the config. Python reads at most 4,300
digits (past that, int() raised a ValueError: a traceback, not a located
problem), and a number that validated (`markdown_max_bytes: 10**23`, an
alarm level, a safety count: their fields have no upper bound) crashed every
plan and reconcile afterwards (orjson: 'Integer exceeds 64-bit range' while
writing the memo's summary) while `provgit validate` said valid. The loader
refuses them, located, as it does any other unusable YAML."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from provgit.api import Config, InvalidConfig
from provgit.load.yaml_events import YamlProblem, parse_documents

ROOT = Path(__file__).resolve().parents[2]
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
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit: tuple[str, str]
) -> None:
    monkeypatch.delenv("PROVGIT_STATE_DIR", raising=False)
    config = tmp_path / "config"
    shutil.copytree(ROOT / "sample-config", config, ignore=shutil.ignore_patterns(".provgit"))
    for line in (ROOT / "scripts" / "demo-secrets.env").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            monkeypatch.setenv(name, value)
    settings = config / "provgit.yaml"
    assert edit[0] in settings.read_text()
    settings.write_text(settings.read_text().replace(edit[0], edit[1], 1))
    state = tmp_path / "state"
    with pytest.raises(InvalidConfig) as e:
        asyncio.run(Config.open(config, state).reconcile())
    assert any("past 64 bits" in d.message for d in e.value.diagnostics)
    assert not (state / "elements").exists() or not any((state / "elements").iterdir())
