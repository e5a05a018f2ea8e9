"""The one clock carebot reads, and how it writes and reads durations.

Everything that asks "what time is it" calls `now()`, so a test or a bench can move time for the whole bot
at once (`use_clock`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def _wall_clock() -> datetime:
    return datetime.now(UTC)


_source: Callable[[], datetime] = _wall_clock


def now() -> datetime:
    return _source()


@contextmanager
def use_clock(source: Callable[[], datetime]) -> Iterator[None]:
    """Within the block, `now()` is `source()` everywhere (a fake clock for tests and replays)."""
    global _source
    before, _source = _source, source
    try:
        yield
    finally:
        _source = before


def as_utc(value: datetime | str) -> datetime:
    """An aware UTC datetime from a naive (taken as UTC) or aware one, or an ISO-8601 text."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_duration(value: object) -> float:
    """Seconds from 30, 30.5, "30s", "2m", "1h", "2d", "500ms"; ValueError (saying what is expected) otherwise."""
    if isinstance(value, bool):
        raise ValueError('expected a duration like 30, "30s" or "2m"')
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f'expected a duration like 30, "30s" or "2m", got {value!r}')
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise ValueError("must be more than zero")
    return seconds


def format_duration(delta: timedelta | float | None) -> str:
    """'45s', '12m', '3h05m', '2d4h' (a timedelta or seconds); '—' for none."""
    if delta is None:
        return "—"
    total = delta.total_seconds() if isinstance(delta, timedelta) else delta
    seconds = max(int(total), 0)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600}h"
