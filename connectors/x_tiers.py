"""X's API plans as carebot budgets them: what each allows per 15 minutes, per day and per month, and
what it costs. One table, `TIERS`; an account may override any number of its tier (`limits:` and
`prices:` in the config).

Sources (read April 2026; X changes them, hence the overrides): docs.x.com "Rate limits" (per-user limits
of each endpoint by plan), "Post cap" / "Usage" (monthly post caps), "Pricing" (pay-per-use unit prices,
with owned reads at $0.001 since 2026-04-20). The legacy plans are flat fees and bill nothing per item;
pay-per-use bills every resource read and every post created, and caps post reads per month.

What is billed, by kind (`BILLED`): a post of the brand's own mentions or posts timeline is an owned read;
any other post (one a mention quotes or answers, a search result) a post read; every user object (authors
in `includes`, `users/me`, the blocked and muted lists) a user read; each post created a post, or a post
with a URL, which X bills about 13 times more. X charges a resource read twice in one UTC day once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

MINUTES_15 = 900.0
DAY = 86400.0

# Billed kinds, in the order status shows them.
BILLED = ("owned_read", "post_read", "user_read", "post_created", "post_with_url")
READ_KINDS = ("owned_read", "post_read")  # what X's monthly post-read cap counts
POST_KINDS = ("post_created", "post_with_url")

# Pay-per-use unit prices in USD (docs.x.com pricing, April 2026).
PAY_PER_USE_PRICES: Mapping[str, float] = {
    "owned_read": 0.001,
    "post_read": 0.005,
    "user_read": 0.010,
    "post_created": 0.015,
    "post_with_url": 0.200,
}
FLAT: Mapping[str, float] = dict.fromkeys(BILLED, 0.0)

# Request buckets, one per endpoint carebot calls, each limited on its own: mentions, timeline (the
# brand's own posts), search, me (users/me), post, blocking, muting.


@dataclass(frozen=True)
class Window:
    requests: int  # at most this many requests ...
    seconds: float  # ... in any window this long


@dataclass(frozen=True)
class Tier:
    name: str
    monthly_fee: float  # USD per month, whatever is used (legacy plans)
    prices: Mapping[str, float]  # USD per billed item, by kind
    post_reads_per_month: int | None  # X's monthly post cap (None: none)
    posts_per_month: int | None  # posts the brand's user may create per month (None: none)
    windows: Mapping[str, tuple[Window, ...]]  # bucket -> its request windows
    lookup_posts: int  # of its own posts, one lookup for a lost reply reads at most this many
    relations_ttl: float = 900.0  # seconds a read of the blocked and muted lists is kept


def _windows(**buckets: tuple[tuple[int, float], ...]) -> dict[str, tuple[Window, ...]]:
    """Bucket -> windows; `relations` stands for the blocked and the muted lists, limited each on its own."""
    windows = {bucket: tuple(Window(n, s) for n, s in limits) for bucket, limits in buckets.items()}
    relations = windows.pop("relations", ())
    return {**windows, "blocking": relations, "muting": relations}


_PRO_WINDOWS = _windows(
    mentions=((300, MINUTES_15),),
    timeline=((900, MINUTES_15),),
    search=((300, MINUTES_15),),
    me=((75, MINUTES_15),),
    post=((100, MINUTES_15),),
    relations=((15, MINUTES_15),),
)

# The table. Limits are per user (the brand's token), as X applies them to user-context requests.
TIERS: Mapping[str, Tier] = {
    "free": Tier(
        name="free",
        monthly_fee=0.0,
        prices=FLAT,
        post_reads_per_month=100,
        posts_per_month=500,
        windows=_windows(
            mentions=((1, MINUTES_15),),
            timeline=((1, MINUTES_15),),
            search=((1, MINUTES_15),),
            me=((25, DAY),),
            post=((17, DAY),),
            relations=((1, MINUTES_15),),
        ),
        lookup_posts=5,
        relations_ttl=DAY,
    ),
    "basic": Tier(
        name="basic",
        monthly_fee=200.0,
        prices=FLAT,
        post_reads_per_month=15_000,
        posts_per_month=3_000,
        windows=_windows(
            mentions=((10, MINUTES_15),),
            timeline=((5, MINUTES_15),),
            search=((60, MINUTES_15),),
            me=((250, DAY),),
            post=((100, DAY),),
            relations=((5, MINUTES_15),),
        ),
        lookup_posts=100,
    ),
    "pro": Tier(
        name="pro",
        monthly_fee=5_000.0,
        prices=FLAT,
        post_reads_per_month=1_000_000,
        posts_per_month=300_000,
        windows=_PRO_WINDOWS,
        lookup_posts=500,
    ),
    "pay-per-use": Tier(
        name="pay-per-use",
        monthly_fee=0.0,
        prices=PAY_PER_USE_PRICES,
        post_reads_per_month=2_000_000,
        posts_per_month=None,
        windows=_PRO_WINDOWS,
        lookup_posts=100,
    ),
    "enterprise": Tier(
        name="enterprise",
        monthly_fee=0.0,  # negotiated: set `prices: {monthly_fee: ...}`
        prices=FLAT,
        post_reads_per_month=None,
        posts_per_month=None,
        windows=_PRO_WINDOWS,
        lookup_posts=500,
    ),
}
DEFAULT_TIER = "basic"


@dataclass(frozen=True)
class Plan:
    """An account's tier with its overrides applied, and when its month starts."""

    tier: Tier
    billing_day: int = 1  # the day of the month X resets the account's monthly caps (1-28)

    @property
    def name(self) -> str:
        return self.tier.name


def plan_for(options: Mapping[str, Any]) -> Plan:
    """The plan of an account from its options (`tier`, `limits`, `prices`, `billing_day`)."""
    tier = TIERS[str(options.get("tier") or DEFAULT_TIER)]
    limits = options.get("limits") or {}
    prices = dict(tier.prices)
    fee = tier.monthly_fee
    for kind, price in (options.get("prices") or {}).items():
        if price is None:
            continue
        if kind == "monthly_fee":
            fee = float(price)
        else:
            prices[kind] = float(price)
    windows = dict(tier.windows)
    if limits.get("mention_reads_per_15min"):
        windows["mentions"] = (Window(int(limits["mention_reads_per_15min"]), MINUTES_15),)
    if limits.get("users_me_per_day"):
        windows["me"] = (Window(int(limits["users_me_per_day"]), DAY),)
    if limits.get("posts_per_day"):
        kept = tuple(w for w in windows["post"] if w.seconds != DAY)
        windows["post"] = (*kept, Window(int(limits["posts_per_day"]), DAY))
    tier = replace(
        tier,
        monthly_fee=fee,
        prices=prices,
        windows=windows,
        post_reads_per_month=_override(limits, "post_reads_per_month", tier.post_reads_per_month),
        posts_per_month=_override(limits, "posts_per_month", tier.posts_per_month),
        lookup_posts=int(limits.get("lookup_posts") or tier.lookup_posts),
    )
    return Plan(tier=tier, billing_day=int(options.get("billing_day") or 1))


def _override(limits: Mapping[str, Any], key: str, default: int | None) -> int | None:
    value = limits.get(key)
    return default if value is None else int(value)


def min_poll_interval(plan: Plan) -> float:
    """Seconds between mention reads that keep within the plan's mentions window."""
    window = next(iter(plan.tier.windows["mentions"]))
    return window.seconds / window.requests
