"""What Mastodon counts against its limits: post length, and the request budget in its headers."""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from bot.waits import parse_reset, parse_retry_after
from connectors.base import RateBudget

if TYPE_CHECKING:
    import requests

URL_LENGTH = 23  # every http(s) URL counts this much, whatever its length
DEFAULT_RETRY_AFTER = 60.0
MAX_RETRY_AFTER = 24 * 3600.0
# A URL as Mastodon's length validator finds it: the protocol is required.
_URL = re.compile(r"(?<![\w@/.])https?://[^\s<>\"]+", re.IGNORECASE)
_URL_TAIL = ".,:;!?'\")]}"
# Mastodon's Account::MENTION_RE: ASCII username, optional @domain.
_COUNTED_MENTION = re.compile(r"(?<![=/\w])@([a-z0-9_]+(?:[a-z0-9_.-]+[a-z0-9_]+)?)(?:@[\w.-]+\w+)?", re.I)


def text_length(text: str) -> int:
    """Length as Mastodon checks it: a URL counts 23, `@user@domain` counts as `@user`.

    Mastodon counts grapheme clusters; we count code points, which is never
    less, so a text that fits here fits there.
    """
    counted = _URL.sub(_url_placeholder, text)
    counted = _COUNTED_MENTION.sub(lambda m: "@" + m.group(1), counted)
    return len(counted)


def _url_placeholder(match: re.Match[str]) -> str:
    url = match.group()
    core = url.rstrip(_URL_TAIL)
    # Keep a closing parenthesis that belongs to the URL, as in Wikipedia links.
    while len(core) < len(url) and url[len(core)] == ")" and core.count("(") > core.count(")"):
        core += ")"
    return "x" * URL_LENGTH + url[len(core) :]


class RateHeaders:
    """Remembers the rate-limit headers of the last answers (a `requests` response hook).

    Reads and writes are kept apart: real Mastodon answers a new status with the headers of its
    posting limit (300 statuses / 3 h), and every other request with those of the general one.

    Several threads may send at once (the outbox's senders): the budget is one, and a request is let out
    only while the budget, less the requests already in flight, has room (`reserve`, then `settle`).
    `last` is the last answer this thread received, so a 429 is read from its own headers.
    """

    def __init__(self) -> None:
        self._budgets: dict[bool, RateBudget] = {}
        self._in_flight: dict[bool, int] = {False: 0, True: 0}
        self._lock = threading.Lock()
        self._local = threading.local()

    @property
    def last(self) -> Mapping[str, str]:
        last: Mapping[str, str] = getattr(self._local, "last", {})
        return last

    def observe(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._local.last = dict(response.headers)
        with self._lock:
            self._observe(response)

    def _observe(self, response: requests.Response) -> None:
        headers = response.headers
        write = (response.request.method or "GET").upper() not in ("GET", "HEAD")
        told = _told(headers)
        read = self._budgets.get(False)
        if write and read is not None and told is not None and _same_window(read, told):
            # A server with one limit for every request (mastodon-mock, a proxy in front): the write's
            # headers are the general budget's, and say how many are left better than counting.
            self._budgets[False] = _newest(read, told)
        elif write and read is not None and read.remaining:
            # A write also spends one request of the general budget, whose headers it does not carry.
            self._budgets[False] = replace(read, remaining=read.remaining - 1)
        if told is not None:
            self._budgets[write] = _newest(self._budgets.get(write), told)

    def budget(self, write: bool = False) -> RateBudget:
        with self._lock:
            return self._budgets.get(write, RateBudget())

    def seconds_until_refill(self, write: bool = False) -> float | None:
        """Seconds to wait when the server said no request is left before its reset; else None."""
        with self._lock:
            return self._wait(write, 0)

    def reserve(self, write: bool = False) -> float | None:
        """Count one more request in flight, or, when the budget has no room for it (the requests already
        in flight counted), the seconds until the reset, counting nothing. `settle` ends a reservation.

        Every request, a write too, spends one of the general budget; a write also one of the posting one.
        """
        with self._lock:
            waits = [self._wait(False, self._in_flight[False] + self._in_flight[True])]
            if write:
                waits.append(self._wait(True, self._in_flight[True]))
            wait = max((w for w in waits if w is not None), default=None)
            if wait is None:
                self._in_flight[write] += 1
            return wait

    def settle(self, write: bool = False) -> None:
        with self._lock:
            self._in_flight[write] = max(self._in_flight[write] - 1, 0)

    def _wait(self, write: bool, in_flight: int) -> float | None:
        budget = self._budgets.get(write, RateBudget())
        if budget.remaining is None or budget.remaining - in_flight > 0 or budget.reset_at is None:
            return None
        wait = (budget.reset_at - datetime.now(UTC)).total_seconds()
        return min(max(wait, 1.0), MAX_RETRY_AFTER) if wait > 0 else None


def _told(headers: Mapping[str, str]) -> RateBudget | None:
    """The budget an answer's headers describe; None when it carries none."""
    if not any(h in headers for h in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")):
        return None
    reset = parse_reset(headers.get("X-RateLimit-Reset"))
    if reset is not None and _whole_seconds(headers.get("X-RateLimit-Reset")):
        reset += timedelta(seconds=1)  # a reset rounded down to the second may be up to 1 s later
    now = datetime.now(UTC)
    return RateBudget(
        remaining=_int_or_none(headers.get("X-RateLimit-Remaining")),
        limit=_int_or_none(headers.get("X-RateLimit-Limit")),
        reset_at=None if reset is None else now + (reset - _server_now(headers, now)),
    )


def _same_reset(known: RateBudget, told: RateBudget) -> bool:
    """Whether two answers speak of one window: the same reset, to the second."""
    if known.reset_at is None or told.reset_at is None:
        return False
    return abs(known.reset_at - told.reset_at) <= timedelta(seconds=1)


def _same_window(known: RateBudget, told: RateBudget) -> bool:
    """Whether two answers describe one limit: the same size, ending at the same second."""
    return known.limit is not None and known.limit == told.limit and _same_reset(known, told)


def _newest(known: RateBudget | None, told: RateBudget) -> RateBudget:
    """What an answer says of the budget, given what we knew: answers to requests sent side by side come
    back in any order, and one that left the server earlier must not give back requests spent since. Within
    one window the fewest remaining stands."""
    if known is None or known.remaining is None or told.remaining is None or not _same_reset(known, told):
        return told
    return replace(told, remaining=min(known.remaining, told.remaining))


def retry_after(headers: Mapping[str, str], now: datetime | None = None) -> float:
    """Seconds to wait after a 429, between 1 s and a day; a minute if the server did not say."""
    now = now or datetime.now(UTC)
    lowered = {k.lower(): v for k, v in headers.items()}
    reset = parse_reset(lowered.get("x-ratelimit-reset"))
    if reset is not None:
        # Measured against the server's clock (its Date header), not ours.
        wait = (reset - _server_now(lowered, now)).total_seconds()
    else:
        told = parse_retry_after(lowered.get("retry-after"), now)
        wait = DEFAULT_RETRY_AFTER if told is None else told
    return min(max(wait, 1.0), MAX_RETRY_AFTER)


def _server_now(headers: Mapping[str, str], fallback: datetime) -> datetime:
    date = headers.get("Date") or headers.get("date")
    if not date:
        return fallback
    try:
        moment = parsedate_to_datetime(date)
    except (TypeError, ValueError):
        return fallback
    # The Date header has whole seconds; a skew under two seconds is our own rounding.
    return moment if abs(moment - fallback) > timedelta(seconds=2) else fallback


def _whole_seconds(value: str | None) -> bool:
    return value is not None and value.strip().isdigit()


def _int_or_none(value: str | None) -> int | None:
    try:
        return None if value is None else int(value)
    except ValueError:
        return None
