"""What an X account has asked of X, so that every process keeps within the account's plan.

`XBudget` is the connector's one source of truth for usage: before each request it checks the plan's
windows (requests per 15 minutes or per day, per endpoint) and monthly caps (post reads, posts), and
refuses locally (`RateLimited`, `UsageCapped`) rather than let X refuse; after it, it counts the request
and every billed object by kind (`x_tiers.BILLED`). Its state is plain JSON kept in the core's `Ledger`
and saved at each request, so `run --once` started every few seconds sees the calls of the runs before it
(the last call times, the month's counts, who the account is, which vocabulary its server speaks, a cap
X reported and when it ends). A resource read twice in one UTC day is counted once, as X bills it (within
one process; a restart counts it again, so the estimate errs high).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from bot import clock
from connectors.base import CapUse, Ledger, RateLimited, UsageCapped, UsageReport
from connectors.x_tiers import BILLED, DAY, POST_KINDS, READ_KINDS, Plan, plan_for

log = logging.getLogger(__name__)

VERSION = 1
KEPT_POST_IDS = 500  # posts counted lately: a lookup that finds one of them does not count it again


class XBudget:
    """The plan's budget of one account, and its usage so far."""

    def __init__(self, plan: Plan, account: str) -> None:
        self.plan = plan
        self._account = account
        self._ledger: Ledger | None = None
        self._state: dict[str, Any] = _fresh()
        self._seen: dict[str, set[str]] = {}  # UTC day -> billed resources ("post:ID", "user:ID")

    def attach(self, ledger: Ledger) -> None:
        """Keep the state in `ledger` from now on, starting from what it holds."""
        self._ledger = ledger
        stored = dict(ledger.load() or {})
        self._state = {**_fresh(), **stored} if stored.get("version") == VERSION else _fresh()
        relations = self._state.get("relations") or {}
        if relations.get("day"):
            self._seen.setdefault(relations["day"], set()).update(f"user:{i}" for i in relations.get("ids", []))

    @property
    def state(self) -> Mapping[str, Any]:
        return self._state

    def remember(self, key: str, value: Any) -> None:
        """Keep `value` (JSON) under `key` across processes: who the account is, its vocabulary..."""
        self._state[key] = value
        self._save()

    def recall(self, key: str) -> Any:
        return self._state.get(key)

    # -- before a request ----------------------------------------------------------------------

    def check(self, bucket: str, *, reads: bool = False, posts: bool = False) -> None:
        """Refuse (RateLimited, UsageCapped) a request the plan does not allow now."""
        now = clock.now()
        self._roll(now)
        capped = self._state.get("capped")
        if capped and datetime.fromisoformat(capped["until"]) > now:
            wait = (datetime.fromisoformat(capped["until"]) - now).total_seconds()
            raise UsageCapped(
                f"X account {self._account!r}: {capped['why']}", retry_after=wait, period=capped["period"]
            )
        tier = self.plan.tier
        if reads and tier.post_reads_per_month is not None and self.reads_left() <= 0:
            raise self.capped("Monthly", f"{tier.post_reads_per_month} post reads a month ({tier.name} plan) used")
        if posts and tier.posts_per_month is not None and self._month_sum(POST_KINDS) >= tier.posts_per_month:
            raise self.capped("Monthly", f"{tier.posts_per_month} posts a month ({tier.name} plan) used")
        moment = now.timestamp()
        for window in tier.windows.get(bucket, ()):
            recent = [t for t in self._calls(bucket) if t > moment - window.seconds]
            if len(recent) >= window.requests:
                wait = recent[-window.requests] + window.seconds - moment
                per = "a day" if window.seconds == DAY else f"{window.seconds / 60:g} minutes"
                raise RateLimited(
                    f"X account {self._account!r}: the {tier.name} plan allows {window.requests} {bucket} "
                    f"request(s) per {per}; next in {wait:.0f}s",
                    retry_after=max(1.0, wait),
                )

    def reads_left(self) -> int:
        cap = self.plan.tier.post_reads_per_month
        return 1_000_000_000 if cap is None else cap - self._month_sum(READ_KINDS)

    def capped(self, period: str, why: str) -> UsageCapped:
        """Record that the plan's cap for `period` is spent (until the period ends); the error to raise."""
        now = clock.now()
        until = next_month(month_start(now, self.plan.billing_day)) if period == "Monthly" else _next_midnight(now)
        self._state["capped"] = {"until": until.isoformat(), "period": period, "why": why}
        self._save()
        return UsageCapped(f"X account {self._account!r}: {why}", (until - now).total_seconds(), period)

    # -- after a request -----------------------------------------------------------------------

    def note_request(self, bucket: str) -> None:
        """Count a request about to be sent (before it is: a crash must not forget it)."""
        now = clock.now()
        self._roll(now)
        longest = max((w.seconds for w in self.plan.tier.windows.get(bucket, ())), default=0.0)
        moment = now.timestamp()
        calls = [t for t in self._calls(bucket) if t > moment - longest]
        self._state["calls"][bucket] = [*calls, moment]
        self._add("requests", 1)
        self._save()

    def bill(self, kind: str, resources: Iterable[str]) -> int:
        """Count the billed objects among `resources` ("post:ID", "user:ID") not billed yet today."""
        day = clock.now().strftime("%Y-%m-%d")
        seen = self._seen.setdefault(day, set())
        for old in [d for d in self._seen if d != day]:
            del self._seen[old]
        fresh = [r for r in dict.fromkeys(resources) if r not in seen]
        seen.update(fresh)
        if fresh:
            self._add(kind, len(fresh))
            self._save()
        return len(fresh)

    def bill_post(self, post_id: str | None, with_url: bool) -> None:
        """Count a post X created (once: a post whose answer was lost is counted when a lookup finds it)."""
        counted: list[str] = self._state.setdefault("posts", [])
        if post_id is not None:
            if post_id in counted:
                return
            self._state["posts"] = [*counted, post_id][-KEPT_POST_IDS:]
        self._add("post_with_url" if with_url else "post_created", 1)
        self._save()

    def keep_relations(self, ids: Iterable[str]) -> None:
        """Remember the blocked and muted list read now, so that no process re-reads (or re-bills) it soon."""
        now = clock.now()
        self._state["relations"] = {"at": now.timestamp(), "day": now.strftime("%Y-%m-%d"), "ids": sorted(ids)}
        self._save()

    def relations(self) -> set[str] | None:
        """The blocked and muted ids read less than the plan's TTL ago, if any."""
        kept = self._state.get("relations")
        if not kept or clock.now().timestamp() - float(kept["at"]) > self.plan.tier.relations_ttl:
            return None
        return set(kept["ids"])

    # -- plumbing ------------------------------------------------------------------------------

    def _calls(self, bucket: str) -> list[float]:
        calls = self._state.setdefault("calls", {}).setdefault(bucket, [])
        return [float(t) for t in calls]

    def _add(self, kind: str, count: int) -> None:
        for counts in (self._state["totals"], self._state["month"]["counts"]):
            counts[kind] = int(counts.get(kind, 0)) + count

    def _month_sum(self, kinds: Iterable[str]) -> int:
        counts = self._state["month"]["counts"]
        return sum(int(counts.get(kind, 0)) for kind in kinds)

    def _roll(self, now: datetime) -> None:
        """Start a new month's counts when the billing month has turned; forget a cap that has ended."""
        start = month_start(now, self.plan.billing_day).isoformat()
        if self._state["month"].get("start") != start:
            self._state["month"] = {"start": start, "counts": {}}
        capped = self._state.get("capped")
        if capped and datetime.fromisoformat(capped["until"]) <= now:
            del self._state["capped"]
            log.info("X account %r: the plan's %s cap has reset", self._account, capped["period"].lower())

    def _save(self) -> None:
        if self._ledger is not None:
            self._ledger.save(self._state)


def _fresh() -> dict[str, Any]:
    return {"version": VERSION, "totals": {}, "month": {"start": None, "counts": {}}, "calls": {}}


def month_start(now: datetime, billing_day: int = 1) -> datetime:
    """The start (UTC midnight of `billing_day`) of the billing month `now` is in."""
    start = now.astimezone(UTC).replace(day=billing_day, hour=0, minute=0, second=0, microsecond=0)
    if start > now:
        start = (start.replace(day=1) - timedelta(days=1)).replace(day=billing_day)
    return start


def next_month(start: datetime) -> datetime:
    year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
    return start.replace(year=year, month=month)


def _next_midnight(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)


def usage_report(options: Mapping[str, Any], state: Mapping[str, Any], now: datetime) -> UsageReport:
    """What an X account has used and spent, from its stored ledger, at the prices of its plan."""
    plan = plan_for(options)
    tier = plan.tier
    started = month_start(now, plan.billing_day)
    totals = dict(state.get("totals") or {})
    month_state = state.get("month") or {}
    month = dict(month_state.get("counts") or {}) if month_state.get("start") == started.isoformat() else {}

    def spend(counts: Mapping[str, Any]) -> float:
        return sum(int(counts.get(kind, 0)) * tier.prices.get(kind, 0.0) for kind in BILLED)

    resets = next_month(started)
    caps = (
        CapUse(
            "post reads this month", sum(int(month.get(k, 0)) for k in READ_KINDS), tier.post_reads_per_month, resets
        ),
        CapUse("posts this month", sum(int(month.get(k, 0)) for k in POST_KINDS), tier.posts_per_month, resets),
    )
    capped = state.get("capped")
    active = capped and datetime.fromisoformat(capped["until"]) > now
    return UsageReport(
        plan=tier.name,
        requests=int(totals.get("requests", 0)),
        billed={kind: int(totals.get(kind, 0)) for kind in BILLED},
        month={kind: int(month.get(kind, 0)) for kind in ("requests", *BILLED)},
        month_started=started,
        spend_month=tier.monthly_fee + spend(month),
        spend_total=spend(totals),
        caps=caps,
        capped=f"{capped['why']}; resets {capped['until']}" if active and capped else None,
    )
