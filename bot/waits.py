"""How long a server asked us to wait, from the headers every HTTP peer of carebot may send.

`Retry-After` is either delay-seconds or an HTTP date (RFC 9110); a rate-limit reset header is epoch
seconds (X, GoToSocial, mastodon-mock) or an ISO-8601 moment (real Mastodon). One parser for each, used by
both connectors and the webhook.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a `Retry-After` value (seconds or an HTTP date); None if absent or unreadable."""
    if not value or not value.strip():
        return None
    text = value.strip()
    try:
        return max(float(text), 0.0)
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max((moment - now).total_seconds(), 0.0)


def parse_reset(value: str | None) -> datetime | None:
    """A rate-limit reset header as a moment: epoch seconds or ISO-8601; None if absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    try:
        return datetime.fromtimestamp(float(text), UTC)
    except (ValueError, OverflowError, OSError):
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
