"""An element that answers provgit's writes with a redirect to another host
(tests/support/redirect_element.py in front of a real simulator, sending to
a server of its own on another port). The http driver followed it: a 307
keeps the method and the body, so every write of the batch, a hot-desk PIN's
plaintext with it, went to a host the config never named (only the bearer
token was held back, by aiohttp). A redirect is now an answer like any
other that is not the element API: the writes wait, nothing is sent on."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from .helpers import Sim, cli_process, hostile, status_by_element, write_config

pytestmark = pytest.mark.slow

REDIRECT = Path(__file__).parent.parent / "support" / "redirect_element.py"
PIN = "86420975"


def test_a_write_redirected_to_another_host_is_not_sent_there(
    sims: list[Sim], tmp_path: Path
) -> None:
    collected = tmp_path / "collected.jsonl"
    with contextlib.ExitStack() as stack:
        cs1 = stack.enter_context(hostile(REDIRECT, sims[0], str(collected)))
        config = write_config(tmp_path / "config", [cs1, sims[1]], users=2)
        net = config / "net.yaml"
        net.write_text(
            net.read_text().replace(
                '      - {dn: "3000", cos: {day: 7}}\n',
                '      - {dn: "3000", cos: {day: 7}, hot_desk_pin: {env: HOT_PIN}}\n',
            )
        )
        ran = cli_process("reconcile", str(config), env={"HOT_PIN": PIN})
        assert ran.code == 4, ran.out + ran.err
        assert not collected.exists() or collected.read_text() == "", collected.read_text()
        assert "redirect" in ran.out, ran.out
        assert status_by_element(config)["cs1"] != "Sync Completed"
        assert status_by_element(config)["cs2"] == "Sync Completed"
        assert "users" not in sims[0].records()
