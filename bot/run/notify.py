"""Tell the team: deliver the alert outbox (`storage.alerts`) to one Slack-compatible webhook.

A job of its own calls `deliver_alerts` every few seconds, so a slow or dead webhook never delays reading
or sending. Each run claims the alerts due (a lease, so two workers never both deliver one), sends one
message (`{"text": ...}`) listing them, and marks them delivered. Within a total time budget it retries
what certainly did not arrive (connection refused, 5xx, 429 after its Retry-After); an answer that never
came after the request went out counts as delivered, so a slow webhook is never told twice. What failed is
tried again later, with backoff. Messages never carry the webhook URL, which holds a token.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx

from bot.clock import format_duration, now
from bot.config import Config, NotifyConfig
from bot.run.alerts import raise_mention_alerts
from bot.storage import Storage
from bot.storage.alerts import URGENT, WAITING
from bot.storage.records import StoredAlert
from bot.waits import parse_retry_after

log = logging.getLogger("carebot.notify")

LISTED = 10  # items named in one message; the rest are counted
MAX_DELAY = 30.0  # longest wait between two tries within one delivery
BUDGET = 30.0  # seconds one delivery may take, all tries included
LEASE = timedelta(seconds=120)  # longer than BUDGET: a live deliverer is never mistaken for a dead one
MAX_AGE = timedelta(hours=24)  # an alert not delivered by then is old news: expired, not sent
BATCH = 200  # alerts claimed for one message
RETRY_LATER = (30.0, 900.0)  # after a failed delivery: first wait, longest wait (doubling)


class NotifyFailed(Exception):
    """The webhook did not take the message (the message never names the URL).

    `maybe_delivered`: the request went out and no answer came back; the webhook may well have it.
    """

    def __init__(self, message: str, maybe_delivered: bool = False) -> None:
        super().__init__(message)
        self.maybe_delivered = maybe_delivered


@dataclass
class NotifyReport:
    urgent: int = 0
    waiting: int = 0
    other: int = 0
    error: str | None = None


@dataclass
class Webhook:
    """POSTs JSON to one webhook URL within a time budget, retrying only what certainly did not arrive."""

    url: str = field(repr=False)
    timeout: float = 10.0
    max_attempts: int = 4
    backoff: float = 1.0  # seconds before the first retry; doubles each time
    budget: float = BUDGET
    sleep: Callable[[float], object] = time.sleep
    clock: Callable[[], float] = time.monotonic
    client: httpx.Client | None = field(default=None, repr=False)

    def send(self, payload: dict[str, Any]) -> None:
        client = self.client or httpx.Client(timeout=self.timeout)
        try:
            self._send(client, payload)
        finally:
            if self.client is None:
                client.close()

    def _send(self, client: httpx.Client, payload: dict[str, Any]) -> None:
        deadline = self.clock() + self.budget
        problem = "not tried"
        for attempt in range(1, self.max_attempts + 1):
            wait = min(self.backoff * 2 ** (attempt - 1), MAX_DELAY)
            timeout = min(self.timeout, max(deadline - self.clock(), 0.1))
            try:
                response = client.post(self.url, json=payload, timeout=timeout)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                problem = type(exc).__name__  # str(exc) may carry the URL; the request never arrived
            except httpx.TransportError as exc:
                # Sent, then no answer: the webhook may have taken it. Sending again could tell the team twice.
                raise NotifyFailed(f"no answer from the webhook ({type(exc).__name__})", maybe_delivered=True) from None
            else:
                if response.status_code < 300:
                    return
                problem = f"HTTP {response.status_code}"
                if response.status_code == 429:
                    told = parse_retry_after(response.headers.get("retry-after"), now())
                    wait = wait if told is None else min(told, MAX_DELAY)
                elif response.status_code < 500:
                    raise NotifyFailed(f"the webhook refused the message: {problem}")
            if attempt < self.max_attempts and self.clock() + wait < deadline:
                log.warning("webhook attempt %s failed (%s); retrying in %.1fs", attempt, problem, wait)
                self.sleep(wait)
            else:
                break
        raise NotifyFailed(f"the webhook failed {attempt} times; last: {problem}")


def webhook_for(settings: NotifyConfig, stop: threading.Event | None = None) -> Webhook | None:
    if not settings.webhook_url:
        return None
    hook = Webhook(settings.webhook_url, timeout=settings.timeout, max_attempts=settings.max_attempts)
    if stop is not None:
        hook.sleep = stop.wait  # a shutdown cuts the wait between tries short
    return hook


def deliver_alerts(
    storage: Storage,
    config: Config,
    webhook: Webhook | None = None,
    at: datetime | None = None,
    stop: threading.Event | None = None,
    in_flight: set[int] | None = None,
) -> NotifyReport:
    """Deliver every alert that is due in one message; never raises for a webhook failure.

    `in_flight` holds the ids of the alerts being delivered while the webhook is called, so that a
    shutdown that cannot wait for the webhook can count them as delivered (`storage.alerts.abandon`).
    """
    report = NotifyReport()
    webhook = webhook or webhook_for(config.notify, stop)
    if webhook is None or (stop is not None and stop.is_set()):
        return report
    at = at or now()
    claimed = storage.alerts.claim(at=at, lease=LEASE, limit=BATCH)
    old = [a for a in claimed if a.created_at < at - MAX_AGE]
    storage.alerts.expire([a.id for a in old], f"not delivered within {format_duration(MAX_AGE)}")
    fresh = [a for a in claimed if a.created_at >= at - MAX_AGE]
    if not fresh:
        return report
    ids = [a.id for a in fresh]
    if in_flight is not None:
        in_flight.update(ids)
    try:
        _send(webhook, fresh, config.notify, at, storage, ids, report)
    finally:
        if in_flight is not None:
            in_flight.difference_update(ids)
    return report


def _send(
    webhook: Webhook,
    fresh: Sequence[StoredAlert],
    settings: NotifyConfig,
    at: datetime,
    storage: Storage,
    ids: list[int],
    report: NotifyReport,
) -> None:
    try:
        webhook.send({"text": message(fresh, settings, at)})
    except NotifyFailed as exc:
        if not exc.maybe_delivered:
            attempts = max(a.attempts for a in fresh)
            delay = min(RETRY_LATER[0] * 2 ** (attempts - 1), RETRY_LATER[1])
            storage.alerts.release(ids, str(exc), retry_at=at + timedelta(seconds=delay))
            report.error = str(exc)
            log.warning("could not notify the team: %s; will try again in %s", exc, format_duration(delay))
            return
        storage.alerts.mark_delivered(ids, at, note=f"{exc}; not sent again")
        log.warning("%s: counted as delivered, not sent again", exc)
    else:
        storage.alerts.mark_delivered(ids, at)
    report.urgent = sum(1 for a in fresh if a.kind == URGENT)
    report.waiting = sum(1 for a in fresh if a.kind == WAITING)
    report.other = len(fresh) - report.urgent - report.waiting
    log.info("told the team: %s urgent, %s waiting too long, %s other", report.urgent, report.waiting, report.other)


def notify_due(
    storage: Storage, config: Config, webhook: Webhook | None = None, at: datetime | None = None
) -> NotifyReport:
    """Raise the alerts now due and deliver them at once (what one `carebot run --once` does)."""
    raise_mention_alerts(storage, config, at)
    return deliver_alerts(storage, config, webhook, at)


def message(alerts: Sequence[StoredAlert], settings: NotifyConfig, at: datetime) -> str:
    lines: list[str] = []
    urgent = [a for a in alerts if a.kind == URGENT]
    waiting = [a for a in alerts if a.kind == WAITING]
    other = [a for a in alerts if a.kind not in (URGENT, WAITING)]
    if urgent:
        lines.append(f":rotating_light: carebot: {_count(len(urgent), 'urgent complaint')} just arrived")
        lines += _items(urgent, at, "{} ago")  # the bot may have answered it already: arrived, not waiting
    if waiting:
        threshold = format_duration(timedelta(seconds=settings.wait_threshold))
        lines.append(
            f":hourglass: carebot: {_count(len(waiting), 'post')} waiting for approval longer than {threshold}"
        )
        lines += _items(waiting, at, "waiting {}")
    lines += [f":warning: carebot: {_slack(a.text)}" for a in other]
    if settings.desk_url:
        lines.append(f"<{_slack(settings.desk_url)}|Open the approval desk>")
    return "\n".join(lines)


def _items(alerts: Sequence[StoredAlert], at: datetime, age: str) -> list[str]:
    lines = []
    for a in alerts[:LISTED]:
        waited = ", " + age.format(format_duration(at - a.since)) if a.since else ""
        post = f": “{_slack(a.excerpt)}”" if a.excerpt else ""
        lines.append(f"• {_slack(a.text)}{waited}{post}")
    if len(alerts) > LISTED:
        lines.append(f"• and {len(alerts) - LISTED} more")
    return lines


def _slack(text: str) -> str:
    # Slack reads <...> as links and mentions (<!channel>): a customer's post must stay plain text.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
