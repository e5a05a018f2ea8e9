"""The long-running bot: one APScheduler job per account, on the account's poll interval, and a thread that
delivers the team's alerts.

The scheduler owns time; a job is one `run_cycle`. Jobs never overlap for one account (max_instances=1) and
a missed run is coalesced into one. A cycle only records alerts; the alert thread delivers them, so a slow
webhook never delays reading or sending. SIGTERM and SIGINT set the stop event: cycles stop taking new
work at the next mention or reply, and the scheduler waits for them to finish. Shutdown does not wait for
a webhook that is slow to answer: what it was delivering counts as delivered (it may well have arrived),
and is never sent again.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from bot.clock import now
from bot.config import AccountConfig
from bot.run.alerts import raise_mention_alerts
from bot.run.app import App
from bot.run.cycle import CycleReport, run_cycle
from bot.run.notify import deliver_alerts, notify_due
from connectors.base import ConnectorError

log = logging.getLogger("carebot.daemon")

ALERT_INTERVAL = 5.0  # seconds between deliveries of the alert outbox
ALERT_GRACE = 2.0  # at shutdown, how long a delivery in flight may still take


def run_once(app: App, stop: threading.Event | None = None) -> list[CycleReport]:
    """One full cycle of every account, one after the other."""
    reports = []
    for account in app.config.accounts:
        if stop is not None and stop.is_set():
            break
        reports.append(run_cycle(app, account, stop))
    notify_due(app.storage, app.config)
    return reports


def _job(app: App, account: AccountConfig, stop: threading.Event) -> None:
    if stop.is_set():
        return
    report = run_cycle(app, account, stop)
    raise_mention_alerts(app.storage, app.config)
    if report.new or report.sent.sent or report.error:
        log.info(
            "%s: cycle done: %s new, %s sent, %s retried, %s parked%s",
            account.name,
            report.new,
            report.sent.sent,
            report.sent.retried,
            report.sent.parked,
            f", error: {report.error}" if report.error else "",
        )


class AlertJob:
    """Delivers the alert outbox every ALERT_INTERVAL in a thread of its own, which shutdown never waits
    on for longer than ALERT_GRACE."""

    def __init__(self, app: App, stop: threading.Event) -> None:
        self.app = app
        self.stop = stop
        self.in_flight: set[int] = set()
        self.thread = threading.Thread(target=self._loop, name="carebot-alerts", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _loop(self) -> None:
        while not self.stop.wait(ALERT_INTERVAL):
            try:
                deliver_alerts(self.app.storage, self.app.config, stop=self.stop, in_flight=self.in_flight)
            except Exception:  # a database hiccup: the next run tries again; it must not end the job
                log.exception("delivering alerts failed; will try again")

    def finish(self) -> None:
        self.thread.join(ALERT_GRACE)
        if self.thread.is_alive() and self.in_flight:
            counted = self.app.storage.alerts.abandon(
                sorted(self.in_flight), now(), "carebot stopped while the webhook was answering; not sent again"
            )
            log.warning("stopping without waiting for the webhook: %s alert(s) counted as delivered", counted)


def poll_interval(app: App, account: AccountConfig) -> float:
    """The account's interval, stretched if the platform's request budget needs more room."""
    try:
        floor = app.connector(account).min_poll_interval
    except ConnectorError as exc:
        log.error("%s: cannot set up the connector: %s", account.name, exc)
        return account.poll_interval
    if floor > account.poll_interval:
        log.warning(
            "%s: poll_interval %gs is faster than the platform allows; polling every %gs",
            account.name,
            account.poll_interval,
            floor,
        )
    return max(account.poll_interval, floor)


def run_forever(
    app: App,
    stop: threading.Event | None = None,
    on_started: Callable[[], None] | None = None,
) -> None:
    """Poll every account until SIGTERM/SIGINT (or `stop` is set)."""
    stop = stop or threading.Event()
    _install_signal_handlers(stop)
    workers = max(1, min(len(app.config.accounts), 8))
    scheduler = BackgroundScheduler(executors={"default": ThreadPoolExecutor(workers)}, timezone=UTC)
    for account in app.config.accounts:
        app.intervals[account.name] = poll_interval(app, account)
        scheduler.add_job(
            _job,
            "interval",
            seconds=app.intervals[account.name],
            args=(app, account, stop),
            id=account.name,
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now(UTC),
            misfire_grace_time=None,
        )
    alerts = AlertJob(app, stop) if app.config.notify.webhook_url else None
    scheduler.start()
    if alerts is not None:
        alerts.start()
    names = ", ".join(f"{a.name} ({a.mode.value})" for a in app.config.accounts)
    log.info("carebot running: %s", names)
    if on_started is not None:
        on_started()
    try:
        stop.wait()
    finally:
        log.info("stopping: finishing in-flight work")
        if alerts is not None:
            alerts.finish()
        scheduler.shutdown(wait=True)
        log.info("stopped")


def _install_signal_handlers(stop: threading.Event) -> None:
    if threading.current_thread() is not threading.main_thread():
        return

    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
