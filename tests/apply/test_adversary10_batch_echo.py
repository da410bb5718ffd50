"""An element that quotes one record's secret in an error for the whole write
call (tests/support/echo_element.py in front of a real simulator): every
write of the call fails with those words, and each was scrubbed of its own
record's secrets only. The other users of the batch carried the PIN into
their pending updates or distribution errors, so into `status`, `errors
list` and the reconcile's own output."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from .helpers import Sim, cli_process, hostile, write_config
from .test_batching import cs1
from .test_secret_echo import _where_written

pytestmark = pytest.mark.slow
__all__ = ["cs1"]  # the fixture (one simulated call server), used by name

ECHO = Path(__file__).parent.parent / "support" / "echo_element.py"
# Eight digits unlikely in the state by chance (see test_secret_echo.py).
PIN = "86420975"


@pytest.mark.parametrize(("mode", "code"), [("500", 4), ("400", 4), ("long", 4)])
def test_a_secret_quoted_for_a_whole_batch_reaches_no_other_record(
    cs1: Sim, tmp_path: Path, mode: str, code: int
) -> None:
    with contextlib.ExitStack() as stack:
        echo = stack.enter_context(hostile(ECHO, cs1, mode))
        config = write_config(tmp_path / "config", [echo], users=3)
        net = config / "net.yaml"
        net.write_text(
            net.read_text().replace(
                '      - {dn: "3000", cos: {day: 7}}\n',
                '      - {dn: "3000", cos: {day: 7}, hot_desk_pin: {env: ECHO_PIN}}\n',
            )
        )
        env = {"ECHO_PIN": PIN}
        ran = cli_process("reconcile", str(config), env=env)
        assert ran.code == code, ran.out + ran.err
        assert "voicemail module failed on passcode" in ran.out + ran.err
        # The whole value, or (past the message's bound) the part of it kept.
        assert PIN not in ran.out + ran.err
        assert f"passcode {PIN[:4]}" not in ran.out + ran.err
        for argv in (
            ("status", str(config), "--format", "json"),
            ("errors", "list", "-C", str(config), "--format", "json"),
        ):
            shown = cli_process(*argv, env=env)
            assert "passcode (sensitive)" in shown.out, shown.out
            assert PIN not in shown.out + shown.err
            assert f"passcode {PIN[:4]}" not in shown.out + shown.err
        assert _where_written(config / ".provgit", PIN.encode()) == []
