"""X's answers at the edge: a failed request as carebot's error tree, and the rate-limit headers read.

tweepy raises `BadRequest` 400, `Unauthorized` 401, `Forbidden` 403, `NotFound` 404, `TooManyRequests` 429,
`TwitterServerError` 5xx, and a plain `HTTPException` for anything else (Prism's 422). A 429 whose body is
X's `UsageCapExceeded` problem is not a rate limit but the plan's cap: `UsageCapped` until the period ends.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from bot import clock
from bot.waits import parse_reset
from connectors.base import (
    AuthFailed,
    BadResponse,
    ConnectorError,
    DuplicateContent,
    RateBudget,
    RateLimited,
    Rejected,
    Unavailable,
    UsageCapped,
)

if TYPE_CHECKING:
    import requests
    import tweepy

DEFAULT_RETRY_AFTER = 60.0  # a 429 without a reset header

Capped = Callable[[str, str], UsageCapped]  # (period, why) -> the error, with the period's end recorded


def translate(where: str, exc: tweepy.HTTPException, capped: Capped) -> ConnectorError:
    import tweepy  # here: a command that only reads the config never loads the client library

    status = exc.response.status_code
    detail = " ".join(str(exc).split())  # tweepy puts X's messages on extra lines
    message = f"{where} failed: {detail}"
    if isinstance(exc, tweepy.Unauthorized):
        return AuthFailed(message)
    if isinstance(exc, tweepy.TooManyRequests):
        problem = _json_or_empty(exc.response)
        if problem.get("title") == "UsageCapExceeded" or "usage-capped" in str(problem.get("type", "")):
            period = "Daily" if problem.get("period") == "Daily" else "Monthly"
            return capped(
                period, f"X refused: usage cap exceeded ({period.lower()}, {problem.get('scope') or 'product'})"
            )
        return RateLimited(message, retry_after=retry_after(exc.response.headers))
    if isinstance(exc, tweepy.Forbidden) and "duplicate" in detail.lower():
        return DuplicateContent(message)
    if isinstance(exc, tweepy.TwitterServerError):
        return Unavailable(message)
    if isinstance(exc, tweepy.Forbidden | tweepy.BadRequest | tweepy.NotFound) or 400 <= status < 500:
        return Rejected(message)
    return BadResponse(message)  # a 1xx/3xx: nothing we asked for


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of the answer behind a translated error, if there was one."""
    response = getattr(exc.__cause__, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def retry_after(headers: Mapping[str, str], now: float | None = None) -> float:
    """Seconds until X's `x-rate-limit-reset` (epoch seconds), at least 1."""
    reset = parse_reset(headers.get("x-rate-limit-reset"))
    if reset is None:
        return DEFAULT_RETRY_AFTER
    return max(1.0, reset.timestamp() - (clock.now().timestamp() if now is None else now))


def rate_budget(headers: Mapping[str, str]) -> RateBudget | None:
    """What X's x-rate-limit-* headers say of the endpoint's window, if they say anything."""
    remaining = _int(headers.get("x-rate-limit-remaining"))
    limit = _int(headers.get("x-rate-limit-limit"))
    reset_at = parse_reset(headers.get("x-rate-limit-reset"))
    if remaining is None and limit is None and reset_at is None:
        return None
    return RateBudget(remaining=remaining, limit=limit, reset_at=reset_at)


def _json_or_empty(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
