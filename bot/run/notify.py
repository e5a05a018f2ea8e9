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

from bot.classifier import mask_personal_data
from bot.clock import format_duration, now
from bot.config import Config, NotifyConfig
from bot.storage import Storage
from bot.storage.alerts import URGENT, WAITING
from bot.storage.records import AlertDue
from bot.waits import parse_retry_after

log = logging.getLogger("carebot.notify")

URGENT_WINDOW = timedelta(hours=1)  # older urgent posts were there before alerts were switched on
LISTED = 10  # items named in one message; the rest are counted
EXCERPT = 100  # characters of the (masked) post shown per item
MAX_DELAY = 30.0


class NotifyFailed(Exception):
    """The webhook did not take the message after every attempt (the message never names the URL)."""


@dataclass(frozen=True)
class Alert:
    due: AlertDue
    post: str  # masked, shortened


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
                    told = parse_retry_after(response.headers.get("retry-after"), now())
                    wait = wait if told is None else min(told, MAX_DELAY)
                elif response.status_code < 500:
                    raise NotifyFailed(f"the webhook refused the message: {problem}")
            if attempt < self.max_attempts:
                log.warning("webhook attempt %s failed (%s); retrying in %.1fs", attempt, problem, wait)
                self.sleep(wait)
        raise NotifyFailed(f"the webhook failed {self.max_attempts} times; last: {problem}")


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
    settings = config.notify
    due = storage.alerts.due(
        urgent_since=at - URGENT_WINDOW if settings.urgent else None,
        waiting_since=at - timedelta(seconds=settings.wait_threshold),
    )
    alerts = [_alert(item) for item in storage.alerts.claim(due, at)]
    if not alerts:
        return report
    try:
        webhook.send({"text": message(alerts, settings, at)})
    except NotifyFailed as exc:
        storage.alerts.release([a.due for a in alerts])
        report.error = str(exc)
        log.warning("could not notify the team: %s; will try again", exc)
        return report
    report.urgent = sum(1 for a in alerts if a.due.kind == URGENT)
    report.waiting = sum(1 for a in alerts if a.due.kind == WAITING)
    log.info("told the team: %s urgent, %s waiting too long", report.urgent, report.waiting)
    return report


def _alert(due: AlertDue) -> Alert:
    post = " ".join(mask_personal_data(due.text).split())
    if len(post) > EXCERPT:
        post = post[: EXCERPT - 1].rstrip() + "…"
    return Alert(due, post)


def message(alerts: list[Alert], settings: NotifyConfig, at: datetime) -> str:
    lines: list[str] = []
    urgent = [a for a in alerts if a.due.kind == URGENT]
    waiting = [a for a in alerts if a.due.kind == WAITING]
    if urgent:
        lines.append(f":rotating_light: carebot: {_count(len(urgent), 'urgent complaint')} just arrived")
        lines += _items(urgent, at)
    if waiting:
        threshold = format_duration(timedelta(seconds=settings.wait_threshold))
        lines.append(
            f":hourglass: carebot: {_count(len(waiting), 'post')} waiting for approval longer than {threshold}"
        )
        lines += _items(waiting, at)
    if settings.desk_url:
        lines.append(f"<{_slack(settings.desk_url)}|Open the approval desk>")
    return "\n".join(lines)


def _items(alerts: list[Alert], at: datetime) -> list[str]:
    lines = [
        f"• {_slack(a.due.account)} ({a.due.platform}, {a.due.lang}, {a.due.situation}), "
        f"waiting {format_duration(at - a.due.since)}: “{_slack(a.post)}”"
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
