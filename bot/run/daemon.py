"""The long-running bot: one APScheduler job per account, on the account's poll interval, and a thread that
delivers the team's alerts.

The scheduler owns time; a job is one `run_cycle`, or several in a row while each overruns the poll
interval (a backlog). Jobs never overlap for one account (max_instances=1) and a missed run is coalesced
into one. A cycle only records alerts; the alert thread delivers them, so a slow
webhook never delays reading or sending. SIGTERM and SIGINT set the stop event: cycles stop taking new
work at the next mention or reply, and the scheduler waits for them to finish. Shutdown does not wait for
a webhook that is slow to answer: what it was delivering counts as delivered (it may well have arrived),
and is never sent again. A second signal during shutdown ends the process at once.

Database trouble goes to the watch (`bot/run/watch.py`): one line when it begins and one when it ends,
backoff meanwhile, and the daemon stops (`carebot run` exits 1) when the database is gone for good or
cannot be written for `storage.give_up_after`.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime
from types import FrameType

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from bot.clock import now
from bot.config import AccountConfig
from bot.run.alerts import raise_mention_alerts
from bot.run.app import App
from bot.run.cycle import CycleReport, run_cycle
from bot.run.notify import Webhook, deliver_alerts, notify_due
from bot.run.privacy import apply_retention
from bot.run.stream import AccountStream, account_streams, finish_streams
from bot.run.watch import DatabaseWatch
from bot.storage import DatabaseTrouble
from connectors.base import ConnectorError

log = logging.getLogger("carebot.daemon")

ALERT_INTERVAL = 5.0  # seconds between deliveries of the alert outbox
ALERT_GRACE = 2.0  # at shutdown, how long a delivery in flight may still take
RETENTION_INTERVAL = 3600.0  # seconds between two passes of storage.retention
SIGNAL_CHECK = 0.5  # seconds: the longest a SIGTERM or Ctrl+C can wait for the main thread to handle it


def run_once(app: App, stop: threading.Event | None = None) -> list[CycleReport]:
    """One full cycle of every account, one after the other. Database trouble ends it: the report of the
    account that met it says so (`database_trouble`), and the accounts after it are not tried."""
    reports = []
    app.chores.clear()  # a one-off run does all of its work now: the cases' timers, the re-read
    for account in app.config.accounts:
        if stop is not None and stop.is_set():
            break
        try:
            reports.append(run_cycle(app, account, stop))
        except DatabaseTrouble as exc:
            app.watch.failed(exc)
            reports.append(CycleReport(account.name, error=f"database: {exc}", database_trouble=True))
            return reports
    try:
        notify_due(app.storage, app.config)
        apply_retention(app.config, app.storage)
    except DatabaseTrouble as exc:
        app.watch.failed(exc)
    return reports


def _job(app: App, account: AccountConfig, stop: threading.Event, fill_in: bool = False) -> None:
    """The account's cycle, and at once another while each takes longer than the poll interval (a backlog
    being drained): the scheduler skips the runs that fall due meanwhile, and would otherwise leave the
    account unread until the next interval after that. A stream's fill-in is one cycle: it runs in the
    stream's worker thread, which must get back to the streamed mentions."""
    interval = app.intervals.get(account.name, account.poll_interval)
    while True:
        started = time.monotonic()
        if not _cycle(app, account, stop, fill_in) or stop.is_set() or fill_in:
            return
        took = time.monotonic() - started
        if took < interval:
            return
        log.info("%s: the cycle took %.1fs, longer than the poll interval: the next one starts now", account.name, took)


def _cycle(app: App, account: AccountConfig, stop: threading.Event, fill_in: bool) -> bool:
    """One cycle of one account, in the scheduler's thread: nothing may escape it (APScheduler would log a
    traceback for each run). Database trouble goes to the watch, which says it once and paces the retries.
    Whether it ran to its end."""
    if stop.is_set() or not app.watch.ready():
        return False
    try:
        with app.cycle_lock(account.name):  # a stream's fill-in (bot/run/stream.py) may have asked for one too
            report = run_cycle(app, account, stop, fill_in)
        raise_mention_alerts(app.storage, app.config)
    except DatabaseTrouble as exc:
        if app.watch.failed(exc):
            stop.set()
        return False
    except Exception:  # a bug: said with its traceback, and the next cycle runs
        log.exception("%s: unexpected error in the cycle", account.name)
        return False
    app.watch.settled()
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
    return True


class _SkippedRuns(logging.Filter):
    """The scheduler warns of each run it skips while a cycle is still going; `_job` then runs the next
    cycle itself as soon as the long one ends, so the warning only worries the reader of the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances reached" not in record.getMessage()


_SKIPPED_RUNS = _SkippedRuns()  # one instance: adding it again at the next start is a no-op


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
            if not self.app.watch.ready():
                continue
            try:
                deliver_alerts(self.app.storage, self.app.config, stop=self.stop, in_flight=self.in_flight)
            except DatabaseTrouble:
                pass  # the accounts' cycles meet it too, and the watch says it once
            except Exception:  # a bug: said, and the next run tries again; it must not end the job
                log.exception("delivering alerts failed; will try again")

    def finish(self) -> None:
        if self.thread.ident is None:  # never started: starting failed before it
            return
        self.thread.join(ALERT_GRACE)
        if self.thread.is_alive() and self.in_flight:
            try:
                counted = self.app.storage.alerts.abandon(
                    sorted(self.in_flight), now(), "carebot stopped while the webhook was answering; not sent again"
                )
            except DatabaseTrouble as exc:  # often why it stops: the rest of the shutdown must still run
                log.warning("stopping without waiting for the webhook, and could not record it (%s): sent again", exc)
                return
            log.warning("stopping without waiting for the webhook: %s alert(s) counted as delivered", counted)


def _retain(app: App) -> None:
    """storage.retention, once an hour: mask or erase what is older."""
    if not app.watch.ready():
        return
    try:
        apply_retention(app.config, app.storage)
    except DatabaseTrouble:
        pass  # the accounts' cycles meet it too, and the watch says it once
    except Exception:  # a bug: said, and tried again in an hour
        log.exception("applying storage.retention failed; will try again")


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
    received = _note_signals()
    # A thread for each account (up to 8), and one more for the hourly retention pass, which would otherwise
    # hold up an account's cycles for as long as it runs.
    retention = app.config.storage.retention is not None
    workers = max(1, min(len(app.config.accounts), 8)) + (1 if retention else 0)
    logging.getLogger("apscheduler.scheduler").addFilter(_SKIPPED_RUNS)
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
    if retention:
        scheduler.add_job(
            _retain,
            "interval",
            seconds=RETENTION_INTERVAL,
            args=(app,),
            id="carebot-retention",
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now(UTC),
            misfire_grace_time=None,
        )
    alerts = AlertJob(app, stop) if app.config.notify.webhook_url else None
    streams: list[AccountStream] = []
    _sign_in(app)
    # Starting is inside the try: what did start must be stopped even if the rest could not (a thread
    # that cannot be started, a bug), or its threads run on and `carebot run` never exits.
    try:
        scheduler.start()
        if alerts is not None:
            alerts.start()
        streams = account_streams(app, stop, lambda account: _job(app, account, stop, fill_in=True))
        for stream in streams:
            stream.start()
        names = ", ".join(f"{a.name} ({a.mode.value})" for a in app.config.accounts)
        log.info("carebot running: %s", names)
        if on_started is not None:
            on_started()
        _wait_for_stop(stop, received, app.watch)
    finally:
        stop.set()  # already set, unless starting failed: then the threads that did start hear it here

        def shut_down() -> None:
            finish_streams(streams)
            if alerts is not None:
                alerts.finish()
            if scheduler.running:
                scheduler.shutdown(wait=True)
            _sign_out(app)
            if app.watch.fatal is not None:
                _last_word(app, app.watch.fatal)

        log.info("stopping: finishing in-flight work (a second SIGTERM or Ctrl+C stops at once)")
        _unless_told_again(shut_down, received)
        log.info("stopped")


def _unless_told_again(shut_down: Callable[[], None], received: list[int]) -> None:
    """Run `shut_down` in a thread of its own while the main thread listens for one more signal, which ends
    the process at once: a person who presses Ctrl+C twice does not want to wait for a post that hangs.
    Nothing is lost by it: a claim or a lease left behind runs out and is taken over, as after a crash."""
    heard = len(received)
    failures: list[BaseException] = []

    def run() -> None:
        try:
            shut_down()
        except BaseException as exc:  # raised again in the main thread, as if it had run there
            failures.append(exc)

    thread = threading.Thread(target=run, name="carebot-shutdown")
    thread.start()
    while thread.is_alive():
        thread.join(SIGNAL_CHECK)  # in slices, for the same reason as `_wait_for_stop`
        if len(received) > heard:
            signum = received[-1]
            log.warning("received %s again: exiting now, without finishing in-flight work", signal.Signals(signum).name)
            os._exit(128 + signum)  # the shell's status for a process ended by that signal
    if failures:
        raise failures[0]


def _sign_in(app: App) -> None:
    """Count this worker among the live ones before its first cycle, so that workers starting together
    share the accounts from the start (bot/run/lease.py)."""
    with suppress(DatabaseTrouble):  # the first cycle meets it too, and the watch says it once
        app.worker.sign(app.storage, within=0)


def _sign_out(app: App) -> None:
    """The other workers read this one's accounts from their next cycle on, not when its sign runs out."""
    with suppress(DatabaseTrouble):  # its sign runs out by itself
        app.worker.leave(app.storage)


def _last_word(app: App, why: str) -> None:
    """The daemon gives up on its database: tell the team straight through the webhook, since the alert
    outbox is that very database. Outside any cycle, within a few seconds, at most once."""
    url = app.config.notify.webhook_url
    if not url:
        return
    names = ", ".join(a.name for a in app.config.accounts)
    try:
        Webhook(url, timeout=5.0, max_attempts=2, budget=10.0).send(
            {"text": f"carebot stopped ({names}): {why}. Nothing is read or answered until it runs again."}
        )
    except Exception as exc:  # the webhook is down too: the exit status and the log still say it
        log.error("could not tell the team through the webhook: %s", type(exc).__name__)


def _note_signals() -> list[int]:
    """SIGTERM and SIGINT as they come, noted by a handler (in the main thread only: Python allows no other).
    The handler only notes: setting the stop event there takes the event's lock, which the very code the
    signal interrupted may hold, and would wait for it forever."""
    received: list[int] = []
    if threading.current_thread() is threading.main_thread():

        def note(signum: int, _frame: FrameType | None) -> None:
            received.append(signum)

        signal.signal(signal.SIGTERM, note)
        signal.signal(signal.SIGINT, note)
    return received


def _wait_for_stop(stop: threading.Event, received: list[int], watch: DatabaseWatch) -> None:
    """Until `stop` is set, a signal noted, or the watch has given up on the database. In slices, never one
    endless wait: a signal the kernel hands to another of the process's threads only marks it pending, and
    Python runs the handler when the main thread next runs Python code, which an endless wait never does
    (SIGTERM would wait for the next signal, or a SIGKILL). The watch is looked at here too because not
    every thread that reports trouble to it can stop the daemon (the end of an outage told to the team may
    meet a replaced file): once it has given up, no cycle runs again, and a daemon that stays up doing
    nothing is never restarted by its supervisor."""
    while not stop.wait(SIGNAL_CHECK):
        if received:
            log.info("received %s", signal.Signals(received[0]).name)
            stop.set()
        elif watch.fatal is not None:
            stop.set()  # the watch has said why ("stopping: ...")
