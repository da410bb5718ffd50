"""A simulated element's call load: a profile of load steps over time.

A profile is a constant percent ("85") or steps of `seconds:percent`
("0:10,60:85,300:15": 10 % from the start, 85 % after a minute, 15 % after
five minutes, and so on after the last step). Seconds count from when the
profile was set (`provgit element serve --call-load`, or the `call_load`
key of `/admin/faults`). The simulated element has PORTS call ports: the
percent in use gives its active calls; it reports no queued calls.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from provgit.wire.protocol import CallLoad

PORTS = 200
_NUMBER = r"\d+(?:\.\d+)?"
_STEP = re.compile(rf"^\s*(?:({_NUMBER})\s*:\s*)?({_NUMBER})\s*%?\s*$")
HELP = "a percent such as 85, or seconds:percent steps such as '0:10,60:85,300:15'"


class ProfileError(ValueError):
    """A call-load profile that cannot be read."""


@dataclass(frozen=True)
class LoadProfile:
    # (seconds from the start, percent), seconds ascending, the first at 0.
    steps: tuple[tuple[float, float], ...]

    @classmethod
    def parse(cls, text: str) -> LoadProfile:
        parts = str(text).split(",")
        if not str(text).strip() or any(not p.strip() for p in parts):
            raise ProfileError(f"bad call-load profile {text!r}: write {HELP}")
        steps: list[tuple[float, float]] = []
        for part in parts:
            m = _STEP.match(part)
            if m is None:
                raise ProfileError(f"bad call-load step {part.strip()!r}: write {HELP}")
            at = float(m.group(1)) if m.group(1) is not None else 0.0
            percent = float(m.group(2))
            if percent > 100:
                raise ProfileError(f"call-load step {part.strip()!r}: percent above 100")
            if steps and at <= steps[-1][0]:
                raise ProfileError(
                    f"call-load step {part.strip()!r}: steps must go forward in time"
                )
            if not steps and at != 0:
                # Before the first step the load would be unknown: start at 0.
                steps.append((0.0, 0.0))
            steps.append((at, percent))
        return cls(tuple(steps))

    def percent_at(self, elapsed: float) -> float:
        """The load `elapsed` seconds after the profile was set."""
        current = self.steps[0][1]
        for at, percent in self.steps:
            if elapsed < at:
                break
            current = percent
        return current

    def text(self) -> str:
        return ",".join(f"{at:g}:{percent:g}" for at, percent in self.steps)


def load_at(profile: LoadProfile, elapsed: float) -> CallLoad:
    percent = profile.percent_at(elapsed)
    return CallLoad(round(PORTS * percent / 100), 0, percent)
