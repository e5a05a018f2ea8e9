"""Business hours: how much working time lies between two moments, and when a target falls due.

Targets ("a person answers a complaint within 1 h") count only the hours the team works: a complaint at
17:50 on Friday with a 1-hour target is due at 09:50 on Monday when the week is Monday to Friday,
09:00-18:00. Pure functions of the hours and the moments; the default is every hour of every day (UTC).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
MAX_DAYS = 3660  # how far a due time is searched for: ten years of closed days means no working time at all

Span = tuple[int, int]  # minutes since midnight: [start, end)


@dataclass(frozen=True)
class BusinessHours:
    timezone: str = "UTC"
    week: Mapping[str, tuple[Span, ...]] = field(default_factory=lambda: {d: ((0, 1440),) for d in DAYS})
    holidays: frozenset[date] = frozenset()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def open_spans(self, day: date) -> list[tuple[datetime, datetime]]:
        """The working spans of one local calendar day, as aware datetimes (empty on holidays)."""
        if day in self.holidays:
            return []
        zone = self.zone
        spans = []
        for start, end in self.week.get(DAYS[day.weekday()], ()):
            opens = datetime.combine(day, time(0), zone) + timedelta(minutes=start)
            closes = datetime.combine(day, time(0), zone) + timedelta(minutes=end)
            spans.append((opens, closes))
        return spans

    def elapsed(self, start: datetime, end: datetime) -> timedelta:
        """Working time between two moments (zero if `end` is not after `start`)."""
        if end <= start:
            return timedelta(0)
        zone = self.zone
        total = timedelta(0)
        day = start.astimezone(zone).date() - timedelta(days=1)  # spans are local; start a day early to be safe
        last = end.astimezone(zone).date() + timedelta(days=1)
        while day <= last:
            for opens, closes in self.open_spans(day):
                overlap = min(closes, end) - max(opens, start)
                if overlap > timedelta(0):
                    total += overlap
            day += timedelta(days=1)
        return total

    def add(self, start: datetime, work: timedelta) -> datetime | None:
        """The moment `work` of working time after `start`; None if the hours never open."""
        remaining = work
        zone = self.zone
        day = start.astimezone(zone).date() - timedelta(days=1)
        for _ in range(MAX_DAYS):
            for opens, closes in self.open_spans(day):
                begin = max(opens, start)
                if closes <= begin:
                    continue
                available = closes - begin
                if remaining <= available:
                    return begin + remaining
                remaining -= available
            day += timedelta(days=1)
        return None


def parse_week(value: object) -> dict[str, tuple[Span, ...]]:
    """{"mon": "09:00-18:00", "sat": "10:00-14:00, 15:00-17:00", "sun": "closed"}; days left out are closed."""
    if not isinstance(value, Mapping):
        raise ValueError('expected a mapping of days to hours, like mon: "09:00-18:00"')
    week: dict[str, tuple[Span, ...]] = {}
    for day, hours in value.items():
        if day not in DAYS:
            raise ValueError(f"expected days {', '.join(DAYS)}, got {day!r}")
        text = str(hours).strip().lower()
        if text in ("closed", "", "none"):
            week[day] = ()
            continue
        spans = []
        for part in text.split(","):
            match = _SPAN.match(part)
            if not match:
                raise ValueError(f'{day}: expected "HH:MM-HH:MM" (or "closed"), got {hours!r}')
            h1, m1, h2, m2 = (int(g) for g in match.groups())
            start, end = h1 * 60 + m1, h2 * 60 + m2
            if not (0 <= start < end <= 1440 and m1 < 60 and m2 < 60):
                raise ValueError(f"{day}: {part.strip()!r} is not a span within one day")
            spans.append((start, end))
        week[day] = tuple(sorted(spans))
    return {d: week.get(d, ()) for d in DAYS}


def parse_timezone(value: object) -> str:
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"expected an IANA time zone like Europe/Berlin, got {value!r}") from None
    return str(value)


def parse_holidays(value: object) -> frozenset[date]:
    if not isinstance(value, list):
        raise ValueError("expected a list of dates, like [2026-12-25, 2027-01-01]")
    days = set()
    for item in value:
        if isinstance(item, datetime):
            days.add(item.date())
        elif isinstance(item, date):
            days.add(item)
        else:
            try:
                days.add(date.fromisoformat(str(item)))
            except ValueError:
                raise ValueError(f"expected a date like 2026-12-25, got {item!r}") from None
    return frozenset(days)
