"""An X account's own config keys (tier, limits, prices, ...), and what a reply's words cost on X."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.setting import setting
from connectors.x_posts import VOCABULARIES
from connectors.x_text import urls
from connectors.x_tiers import DEFAULT_TIER, PAY_PER_USE_PRICES, TIERS, plan_for


def reply_warning(text: str, options: Mapping[str, Any]) -> str | None:
    """Why a reply with this text needs a person on X: it carries a URL (by twitter-text's rules), which
    X bills about 13 times a plain post; None if it carries none."""
    found = urls(text)
    if not found:
        return None
    prices = plan_for(options).tier.prices
    priced = prices if prices.get("post_with_url") else PAY_PER_USE_PRICES
    where = "" if prices.get("post_with_url") else " at pay-per-use prices"
    return (
        f"it carries a link ({found[0]}): X bills a post with a link ${priced['post_with_url']:.3f} instead of "
        f"${priced['post_created']:.3f}{where}"
    )


def _non_negative(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"expected a price in USD (0 or more), got {value!r}")
    return float(value)


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a whole number (0 or more), got {value!r}")
    return value


def _tier(value: object) -> str:
    if value not in TIERS:
        raise ValueError(f"expected one of {', '.join(TIERS)}, got {value!r}")
    return str(value)


def _vocabulary(value: object) -> str:
    if value not in ("auto", *VOCABULARIES):
        raise ValueError(f"expected auto, {' or '.join(VOCABULARIES)}, got {value!r}")
    return str(value)


def _billing_day(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 28:
        raise ValueError(f"expected a day of the month from 1 to 28, got {value!r}")
    return value


def _price(doc: str) -> Any:
    return setting(None, doc=doc, check=_non_negative)


def _limit(doc: str) -> Any:
    return setting(None, doc=doc, check=_count)


@dataclass(frozen=True)
class XPrices:
    """X's prices for `carebot status`, in USD; each defaults to the tier's (pay-per-use: X's list prices)."""

    owned_read: float | None = _price("a post of the brand's own mentions or posts (pay-per-use: 0.001)")
    post_read: float | None = _price("any other post read (pay-per-use: 0.005)")
    user_read: float | None = _price("a user read (pay-per-use: 0.010)")
    post_created: float | None = _price("a post created (pay-per-use: 0.015)")
    post_with_url: float | None = _price("a post created with a URL in it (pay-per-use: 0.200)")
    monthly_fee: float | None = _price("the plan's flat monthly fee (free 0, basic 200, pro 5000)")


@dataclass(frozen=True)
class XLimits:
    """The plan's numbers carebot keeps within; each defaults to the tier's (see x_tiers.TIERS)."""

    post_reads_per_month: int | None = _limit("X's monthly post cap (free 100, basic 15000, pro 1000000)")
    posts_per_month: int | None = _limit("posts the account may create a month (free 500, basic 3000)")
    posts_per_day: int | None = _limit("posts per 24 hours (free 17, basic 100)")
    mention_reads_per_15min: int | None = _limit("mention reads per 15 minutes (free 1, basic 10, pro 300)")
    users_me_per_day: int | None = _limit("users/me calls per 24 hours (free 25, basic 250)")
    lookup_posts: int | None = _limit("of its own posts, one lookup for a lost reply reads at most this many")


@dataclass(frozen=True)
class XOptions:
    """An X account's own keys in the config."""

    tier: str = setting(
        DEFAULT_TIER, doc="free | basic | pro | pay-per-use | enterprise: limits, caps and prices", check=_tier
    )
    user_id: str | None = setting(None, doc="optional: checked against the credentials")
    vocabulary: str = setting(
        "auto", doc="auto | posts | tweets: the names the server knows (auto: try posts, fall back)", check=_vocabulary
    )
    billing_day: int | None = setting(
        None, doc="the day of the month X resets the plan's caps (1-28)", check=_billing_day
    )
    limits: XLimits | None = setting(None, doc="overrides of the tier's limits and caps")
    prices: XPrices | None = setting(None, doc="overrides of X's prices, for `carebot status`")
