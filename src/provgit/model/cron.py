"""Five-field cron schedules (minute hour day-of-month month day-of-week) for
sync windows: `*`, numbers, ranges `a-b`, lists `a,b` and steps `*/n`, `a-b/n`.

Small on purpose: windows need "does a start fall in this span" and "when is
the next start", both answered minute by minute in the window's time zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

# (name, lowest, highest); day-of-week 7 is Sunday too, as in crontab.
_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
)


# The longest each month can be (February in a leap year).
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


class CronError(ValueError):
    """A schedule that is not five valid cron fields."""


def _field(text: str, name: str, lo: int, hi: int) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_s = part.partition("/")
        step = 1
        if step_s:
            if not step_s.isdigit() or int(step_s) == 0:
                raise CronError(f"{name}: step {step_s!r} must be a whole number above 0")
            step = int(step_s)
        if base == "*":
            start, end = lo, hi
        else:
            a, dash, b = base.partition("-")
            if not a.isdigit() or (dash and not b.isdigit()):
                raise CronError(f"{name}: {part!r} is not a number, range (a-b) or '*'")
            start, end = int(a), int(b) if dash else int(a)
            if step_s and not dash:
                end = hi
            if not (lo <= start <= hi and lo <= end <= hi):
                raise CronError(f"{name}: {part!r} is outside {lo}-{hi}")
            if start > end:
                raise CronError(f"{name}: range {part!r} runs backwards")
        values.update(range(start, end + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    # crontab: when both day fields are restricted, either one matching will do.
    days_any: bool
    weekdays_any: bool

    @classmethod
    def parse(cls, text: str) -> Cron:
        parts = text.split()
        if len(parts) != 5:
            raise CronError(
                f"{text!r} has {len(parts)} fields; a schedule has 5: "
                "minute hour day-of-month month day-of-week (e.g. '0 22 * * 1-5')"
            )
        sets = [_field(p, *spec) for p, spec in zip(parts, _FIELDS, strict=True)]
        weekdays = frozenset(d % 7 for d in sets[4])
        cron = cls(sets[0], sets[1], sets[2], sets[3], weekdays, parts[2] == "*", parts[4] == "*")
        never = cron.never()
        if never is not None:
            raise CronError(never)
        return cron

    def never(self) -> str | None:
        """Why this schedule can never fire (None: it can), e.g. "0 0 30 2 *"."""
        if self.days_any or not self.weekdays_any:
            return None  # any day, or a weekday will do: some date always matches
        if any(d <= _MONTH_DAYS[m - 1] for m in self.months for d in self.days):
            return None
        days = ", ".join(str(d) for d in sorted(self.days))
        months = ", ".join(str(m) for m in sorted(self.months))
        return f"day(s) {days} never occur in month(s) {months}: the window would never open"

    def matches(self, t: datetime) -> bool:
        if t.minute not in self.minutes or t.hour not in self.hours or t.month not in self.months:
            return False
        day = t.day in self.days
        weekday = (t.isoweekday() % 7) in self.weekdays
        if self.days_any or self.weekdays_any:
            return day and weekday
        return day or weekday


def active_start(cron: Cron, tz: ZoneInfo, duration: float, now: float) -> float | None:
    """The start of the window occurrence open at `now` (a start in (now-duration, now])."""
    t = now - now % 60
    while t > now - duration:
        if cron.matches(datetime.fromtimestamp(t, tz)):
            return t
        t -= 60
    return None


def next_start(cron: Cron, tz: ZoneInfo, now: float, horizon: float = 8 * 86400) -> float | None:
    """The first start after `now`, looked for up to `horizon` seconds ahead."""
    t = now - now % 60 + 60
    end = now + horizon
    # Hour by hour first where the hour cannot match: a year of minutes is slow.
    while t <= end:
        d = datetime.fromtimestamp(t, tz)
        if d.hour not in cron.hours or d.month not in cron.months:
            t += 60 * (60 - d.minute)
            continue
        if cron.matches(d):
            return t
        t += 60
    return None
