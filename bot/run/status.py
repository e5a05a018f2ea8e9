"""`carebot status`: what each account has done and what it has probably cost, from what storage keeps.

A metered connector (X) keeps its own ledger of every request and every billed object by kind; its
platform turns that into the figures shown here (`Platform.usage_report`): the plan, this billing month's
use against the plan's caps, and the spend at the plan's prices. Other platforms show the counters the
core keeps (requests, posts read and created).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from bot.clock import format_duration, now
from bot.config import AccountConfig, Config
from bot.models import ReplyState
from bot.run.case_figures import case_figures
from bot.run.outage import told_outage
from bot.storage import Storage
from connectors import get_platform


def estimated_spend(account: AccountConfig, posts_read: int, posts_created: int) -> float:
    """USD, from the account's price_per_read / price_per_post options or the platform's defaults."""
    prices = dict(get_platform(account.platform).default_prices)
    prices.update({k: float(v) for k, v in account.options.items() if k.startswith("price_per_")})
    return posts_read * prices.get("price_per_read", 0.0) + posts_created * prices.get("price_per_post", 0.0)


def account_status(storage: Storage, account: AccountConfig) -> dict[str, Any]:
    state = storage.accounts.ensure(account.name, account.platform)
    activity = storage.figures.activity(account.name)
    by_state = activity.replies_by_state
    row: dict[str, Any] = {
        "account": account.name,
        "platform": account.platform,
        "mode": account.mode.value,
        "cursor": state.cursor,
        "last_cycle_at": state.last_cycle_at.isoformat(timespec="seconds") if state.last_cycle_at else None,
        "outage": told_outage(storage, account.name, state.last_cycle_at),
        "paused_until": state.paused_until.isoformat() if state.paused_until else None,
        "pause_reason": state.pause_reason,
        "mentions": activity.mentions,
        "sent": by_state.get(ReplyState.SENT.value, 0),
        "waiting": by_state.get(ReplyState.PENDING.value, 0),
        "failed": by_state.get(ReplyState.FAILED.value, 0),
        "set_aside": storage.quarantine.count(account.name),
        "set_aside_latest": [
            {
                "post_id": post.post_id,
                "stage": post.stage,
                "reason": post.reason,
                "excerpt": post.excerpt,
                "at": post.created_at.isoformat(),
            }
            for post in storage.quarantine.recent(account.name, limit=SET_ASIDE_SHOWN)
        ],
    }
    report = get_platform(account.platform).usage_report
    if report is None:
        return {
            **row,
            "requests": state.requests,
            "posts_read": state.posts_read,
            "posts_created": state.posts_created,
            "estimated_spend_usd": round(estimated_spend(account, state.posts_read, state.posts_created), 4),
        }
    usage = report(account.options, storage.accounts.ledger(account.name), now())
    return {
        **row,
        "plan": usage.plan,
        "requests": usage.requests,
        "billed": dict(usage.billed),
        "month": {"since": usage.month_started.isoformat(), **usage.month},
        "caps": [
            {"what": cap.what, "used": cap.used, "limit": cap.limit, "resets_at": _iso(cap.resets_at)}
            for cap in usage.caps
        ],
        "capped": usage.capped,
        "estimated_spend_usd": round(usage.spend_total, 4),
        "estimated_spend_month_usd": round(usage.spend_month, 4),
    }


def _iso(moment: Any) -> str | None:
    return moment.isoformat() if moment is not None else None


SET_ASIDE_SHOWN = 5  # posts set aside (not answered) listed per account


def set_aside_lines(row: dict[str, Any]) -> list[str]:
    """`carebot status` lines for the posts an account set aside: they need a person's eyes."""
    if not row["set_aside"]:
        return []
    lines = [f"  set aside, not answered: {row['set_aside']} (posts that could not be read or stored)"]
    for post in row["set_aside_latest"]:
        lines.append(f"    {post['at'][:19]} post {post['post_id']}: {post['reason']} · “{post['excerpt']}”")
    return lines


CASE_WINDOW = timedelta(days=30)  # the figures cover cases opened or changed this recently, and every open one


def case_status(config: Config, storage: Storage, account: str, at: datetime | None = None) -> list[dict[str, Any]]:
    """Per situation: open cases, first answer (a person's, for complaints) and resolution (median, p90,
    business hours), targets missed."""
    at = at or now()
    cases = {c.id: c for c in storage.cases.since(at - CASE_WINDOW, account)}
    cases |= {c.id: c for c in storage.cases.open_cases(account)}
    return [asdict(f) for f in case_figures(config, cases.values(), at)]


def case_lines(figures: list[dict[str, Any]]) -> list[str]:
    """`carebot status` lines for `case_status`."""
    lines = []
    for f in figures:
        first = _pair(f["first_response_median"], f["first_response_p90"])
        resolved = _pair(f["resolution_median"], f["resolution_p90"])
        lines.append(
            f"  cases · {f['situation']}: open {f['open']} · first answer {first} · resolved {resolved}"
            f" · targets missed {f['targets_missed']}"
        )
    return lines


def _pair(median: float | None, p90: float | None) -> str:
    if median is None:
        return "—"
    return f"median {format_duration(median)}, p90 {format_duration(p90)}"
