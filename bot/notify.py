"""Tell the team when something needs a person: an urgent complaint arrived, or a reply has waited for
approval longer than `notify.wait_threshold`. One Slack-compatible webhook message (`{"text": ...}`) per
check, listing what is new.

Each mention alerts once per reason: its row in `notifications` is claimed before the message is sent (so
two daemons never both alert) and released if sending fails, so a later check tries again. Messages carry
no personal data (posts are masked, authors are not named) and never the webhook URL, which holds a token.

The daemon calls `notify_due(storage, config)` after each cycle.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Engine, and_, delete, exists, insert, select
from sqlalchemy.exc import IntegrityError

from bot.classifier import mask_personal_data
from bot.config import Config, NotifyConfig
from bot.models import ReplyState
from bot.schema import mentions, notifications, replies
from bot.storage import Storage, now

log = logging.getLogger("carebot.notify")

URGENT, WAITING = "urgent", "waiting"
URGENT_WINDOW = timedelta(hours=1)  # older urgent posts were there before alerts were switched on
LISTED = 10  # items named in one message; the rest are counted
EXCERPT = 100  # characters of the (masked) post shown per item
MAX_DELAY = 30.0


class NotifyFailed(Exception):
    """The webhook did not take the message after every attempt (the message never names the URL)."""


@dataclass(frozen=True)
class Alert:
    mention_id: int
    kind: str  # URGENT | WAITING
    account: str
    platform: str
    lang: str
    situation: str
    post: str  # masked, shortened
    since: datetime  # when the wait started


@dataclass
class NotifyReport:
    urgent: int = 0
    waiting: int = 0
    error: str | None = None


@dataclass
class Webhook:
    """POSTs JSON to one webhook URL, retrying 5xx, 429 and network failures with backoff."""

    url: str = field(repr=False)
    timeout: float = 10.0
    max_attempts: int = 4
    backoff: float = 1.0  # seconds before the first retry; doubles each time
    sleep: Callable[[float], None] = time.sleep
    client: httpx.Client | None = field(default=None, repr=False)

    def send(self, payload: dict[str, Any]) -> None:
        client = self.client or httpx.Client(timeout=self.timeout)
        try:
            self._send(client, payload)
        finally:
            if self.client is None:
                client.close()

    def _send(self, client: httpx.Client, payload: dict[str, Any]) -> None:
        problem = "not tried"
        for attempt in range(1, self.max_attempts + 1):
            wait = min(self.backoff * 2 ** (attempt - 1), MAX_DELAY)
            try:
                response = client.post(self.url, json=payload, timeout=self.timeout)
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}"  # str(exc) may carry the URL
            else:
                if response.status_code < 300:
                    return
                problem = f"HTTP {response.status_code}"
                if response.status_code == 429:
                    wait = _retry_after(response, wait)
                elif response.status_code < 500:
                    raise NotifyFailed(f"the webhook refused the message: {problem}")
            if attempt < self.max_attempts:
                log.warning("webhook attempt %s failed (%s); retrying in %.1fs", attempt, problem, wait)
                self.sleep(wait)
        raise NotifyFailed(f"the webhook failed {self.max_attempts} times; last: {problem}")


def _retry_after(response: httpx.Response, default: float) -> float:
    try:
        return min(max(float(response.headers.get("retry-after", "")), 0.0), MAX_DELAY)
    except ValueError:
        return default


def webhook_for(settings: NotifyConfig) -> Webhook | None:
    if not settings.webhook_url:
        return None
    return Webhook(settings.webhook_url, timeout=settings.timeout, max_attempts=settings.max_attempts)


def notify_due(
    storage: Storage, config: Config, webhook: Webhook | None = None, at: datetime | None = None
) -> NotifyReport:
    """Send one message about everything new that needs a person; never raises for a webhook failure."""
    report = NotifyReport()
    webhook = webhook or webhook_for(config.notify)
    if webhook is None:
        return report
    at = at or now()
    alerts = _claim(storage.engine, due_alerts(storage.engine, config.notify, at), at)
    if not alerts:
        return report
    try:
        webhook.send({"text": message(alerts, config.notify, at)})
    except NotifyFailed as exc:
        _release(storage.engine, alerts)
        report.error = str(exc)
        log.warning("could not notify the team: %s; will try again", exc)
        return report
    report.urgent = sum(1 for a in alerts if a.kind == URGENT)
    report.waiting = sum(1 for a in alerts if a.kind == WAITING)
    log.info("told the team: %s urgent, %s waiting too long", report.urgent, report.waiting)
    return report


def due_alerts(engine: Engine, settings: NotifyConfig, at: datetime) -> list[Alert]:
    """Mentions the team has not yet been told about, per reason; oldest first."""
    alerts: list[Alert] = []
    columns = (
        mentions.c.id,
        mentions.c.account,
        mentions.c.platform,
        mentions.c.lang,
        mentions.c.situation,
        mentions.c.text,
    )
    with engine.connect() as db:
        if settings.urgent:
            rows = db.execute(
                select(*columns, mentions.c.received_at)
                .where(
                    mentions.c.urgent.is_(True),
                    mentions.c.action != "ignore",
                    mentions.c.received_at >= at - URGENT_WINDOW,
                    ~_told(URGENT),
                )
                .order_by(mentions.c.received_at)
            ).all()
            alerts += [_alert(row, URGENT, row.received_at) for row in rows]
        waiting_since = (
            select(replies.c.mention_id, replies.c.created_at)
            .where(replies.c.state.in_([ReplyState.PENDING.value, ReplyState.FAILED.value]))
            .where(replies.c.created_at <= at - timedelta(seconds=settings.wait_threshold))
            .subquery()
        )
        rows = db.execute(
            select(*columns, waiting_since.c.created_at)
            .join(waiting_since, waiting_since.c.mention_id == mentions.c.id)
            .where(~_told(WAITING))
            .order_by(waiting_since.c.created_at)
        ).all()
    seen: set[int] = set()
    for row in rows:
        if row.id not in seen:  # a public reply and its private follow-up are one wait
            seen.add(row.id)
            alerts.append(_alert(row, WAITING, row.created_at))
    return alerts


def _told(kind: str) -> Any:
    return exists().where(and_(notifications.c.mention_id == mentions.c.id, notifications.c.kind == kind))


def _alert(row: Any, kind: str, since: datetime) -> Alert:
    post = " ".join(mask_personal_data(row.text).split())
    if len(post) > EXCERPT:
        post = post[: EXCERPT - 1].rstrip() + "…"
    return Alert(row.id, kind, row.account, row.platform, row.lang, row.situation, post, since)


def _claim(engine: Engine, alerts: list[Alert], at: datetime) -> list[Alert]:
    """Keep the alerts this process is first to record; another worker may have taken some."""
    claimed: list[Alert] = []
    with engine.begin() as db:
        for alert in alerts:
            try:
                with db.begin_nested():
                    db.execute(
                        insert(notifications).values(mention_id=alert.mention_id, kind=alert.kind, created_at=at)
                    )
            except IntegrityError:
                continue
            claimed.append(alert)
    return claimed


def _release(engine: Engine, alerts: list[Alert]) -> None:
    with engine.begin() as db:
        for alert in alerts:
            db.execute(
                delete(notifications).where(
                    notifications.c.mention_id == alert.mention_id, notifications.c.kind == alert.kind
                )
            )


def message(alerts: list[Alert], settings: NotifyConfig, at: datetime) -> str:
    lines: list[str] = []
    urgent = [a for a in alerts if a.kind == URGENT]
    waiting = [a for a in alerts if a.kind == WAITING]
    if urgent:
        lines.append(f":rotating_light: carebot: {_count(len(urgent), 'urgent complaint')} just arrived")
        lines += _items(urgent, at)
    if waiting:
        threshold = _duration(timedelta(seconds=settings.wait_threshold))
        lines.append(
            f":hourglass: carebot: {_count(len(waiting), 'post')} waiting for approval longer than {threshold}"
        )
        lines += _items(waiting, at)
    if settings.desk_url:
        lines.append(f"<{_slack(settings.desk_url)}|Open the approval desk>")
    return "\n".join(lines)


def _items(alerts: list[Alert], at: datetime) -> list[str]:
    lines = [
        f"• {_slack(a.account)} ({a.platform}, {a.lang}, {a.situation}), waiting {_duration(at - a.since)}: "
        f"“{_slack(a.post)}”"
        for a in alerts[:LISTED]
    ]
    if len(alerts) > LISTED:
        lines.append(f"• and {len(alerts) - LISTED} more")
    return lines


def _slack(text: str) -> str:
    # Slack reads <...> as links and mentions (<!channel>): a customer's post must stay plain text.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _duration(delta: timedelta) -> str:
    minutes = max(int(delta.total_seconds()) // 60, 0)
    return f"{minutes}m" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"
