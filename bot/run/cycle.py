"""One polling cycle of one account: check who we are, read new mentions page by page, decide, send.

A cycle never raises for a platform failure: it records what happened (a pause for rate limits and bad
credentials, a log line for the rest) and the next cycle carries on. Mentions are stored before the cursor
moves past them, so a crash anywhere loses nothing: the next cycle reads them again and skips those stored.

A new account starts reading from now: what was posted before is not answered, and the first cycle says so.
With `backfill:` (say 24h) it reads from that long ago instead, once; mentions older than that are skipped.
The end of each good cycle is recorded (`last_cycle_at`), for /health; an account without one for long is
told to the team once (`bot/run/outage.py`).
A read starts a little before the cursor now and then (`bot/run/overlap.py`), so a post that became visible
late is read too; a post that cannot be read or stored is set aside (`bot/run/quarantine.py`), never fatal. Trouble
with the database itself (`DatabaseTrouble`) is raised to the daemon, which says it once and waits.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.clock import now
from bot.config import AccountConfig
from bot.run.alerts import raise_alert
from bot.run.alongside import AnswersAlongside
from bot.run.app import App
from bot.run.cases import sweep
from bot.run.lease import ReadLease, take_read_lease
from bot.run.outage import tell_if_back, tell_if_down
from bot.run.outbox import SendReport, send_due
from bot.run.overlap import MAX_REREAD_PAGES, later, marked, overlap_of, read_start, reread_every
from bot.run.pipeline import process_mention
from bot.run.quarantine import set_aside_unreadable
from bot.storage import DatabaseTrouble
from bot.storage.records import AccountState
from connectors import get_platform
from connectors.base import (
    AuthFailed,
    Connector,
    ConnectorError,
    Metered,
    RateLimited,
    Unreachable,
    UsageCapped,
)

log = logging.getLogger("carebot.cycle")

AUTH_PAUSE = timedelta(minutes=5)
# The cases' timers are minutes to days long, so a sweep every 15 s is on time; sweeping every cycle cost an
# idle daemon with ten accounts polled every second about a quarter of its CPU (and each worker does it).
SWEEP_EVERY = timedelta(seconds=15)
BUDGET_RESERVE = 3  # requests kept for sending replies when a backlog is being read
# Pause reasons start with one of these, so that a later cycle (and `run --once`) knows what kind it is.
CAPPED, AUTH, RATE = "usage cap reached", "credentials refused", "rate limited"


@dataclass
class CycleReport:
    account: str
    fetched: int = 0
    new: int = 0
    sent: SendReport = field(default_factory=SendReport)
    paused: bool = False
    error: str | None = None
    failed: str | None = None  # "auth" | "unreachable" | "cap" | "error": the account could not do its work
    failure: ConnectorError | None = None  # the platform's failure behind `error`, if that is what it was
    first_run: bool = False  # the account's first read: it started from now (or from its backfill)
    backfill_since: datetime | None = None
    too_old: int = 0  # mentions read but older than the backfill: not answered
    database_trouble: bool = False  # the cycle stopped because the database is in trouble (see bot/run/watch.py)
    read_by_other: bool = False  # another worker held the account's lease (bot/run/lease.py): only sent


def run_cycle(
    app: App, account: AccountConfig, stop: threading.Event | None = None, fill_in: bool = False
) -> CycleReport:
    """One cycle of the account. `fill_in`: a stream asks for it after a (re)connect, so the read is due now
    whenever the last one began."""
    report = _cycle(app, account, stop, fill_in)
    if report.failed is not None:
        tell_if_down(app, account, report.failed, report.failure, report.error)
    result = "error" if report.error else ("paused" if report.paused else "ok")
    sent = report.sent
    app.metrics.cycle(
        account.name, new=report.new, sent=sent.sent, retried=sent.retried, parked=sent.parked, result=result
    )
    connector = app.connectors.get(account.name)
    remaining = connector.budget().remaining if connector is not None else None
    if remaining is not None:
        app.metrics.budget.labels(account.name).set(remaining)
    return report


def _cycle(app: App, account: AccountConfig, stop: threading.Event | None, fill_in: bool) -> CycleReport:
    report = CycleReport(account.name)
    # A read, not a write, each cycle: the row is made when the daemon starts (and again here if it is gone).
    state = app.storage.accounts.get(account.name) or app.storage.accounts.ensure(account.name, account.platform)
    first_try = account.name not in app.credentials_tried
    app.credentials_tried.add(account.name)
    refused_before = (state.pause_reason or "").startswith(AUTH) and first_try  # by another process's token
    if state.paused_until is not None and state.paused_until > now() and not refused_before:
        report.paused = True
        report.failed = _failure_of(state.pause_reason)
        log.info("%s: paused until %s (%s)", account.name, state.paused_until.isoformat(), state.pause_reason)
        _sweep_cases(app, account)  # timers run on while the platform makes us wait
        if not (state.pause_reason or "").startswith(AUTH):
            _alive(app, account, state.last_cycle_at)  # waiting for a rate limit's reset is not being stuck
        return report
    if state.paused_until is not None:
        app.storage.accounts.update(account.name, paused_until=None, pause_reason=None)
    try:
        connector = app.connector(account)
        state = _verified(app, account, state, connector)
        interval = None if fill_in else app.intervals.get(account.name)
        streamed = bool(account.options.get("stream"))
        lease = take_read_lease(app.storage, app.worker, account.name, len(app.config.accounts), interval, streamed)
        if lease is None:
            report.read_by_other = True  # another worker reads this account now: this one only sends
        else:
            try:
                state = app.storage.accounts.get(account.name) or state  # as the last reader left it
                # The answers to what is read go out while the rest is read (bot/run/alongside.py).
                answers = AnswersAlongside(app, account, state, connector, stop)
                try:
                    _read_mentions(app, account, state, connector, report, stop, lease, answers.kick)
                finally:
                    report.sent, failure = answers.finish()
            finally:
                _give_back(lease)
            if failure is not None:
                raise failure
    except ConnectorError as exc:
        _handle_failure(app, account, exc, report)
        if isinstance(exc, RateLimited | AuthFailed):
            return report
    except DatabaseTrouble:
        raise  # the daemon's watch says it once, and waits
    except Exception as exc:  # a bug or an unexpected library error must not stop the daemon
        log.exception("%s: unexpected error while reading mentions", account.name)
        report.error = f"{type(exc).__name__}: {exc}"
        report.failed = "error"
        return report
    _sweep_cases(app, account)  # after reading: a check-back never goes to someone who just wrote
    try:
        report.sent = report.sent.add(send_due(app, account, state, app.connector(account), stop))
    except ConnectorError as exc:
        _handle_failure(app, account, exc, report)
    except DatabaseTrouble:
        raise
    except Exception as exc:
        log.exception("%s: unexpected error while sending replies", account.name)
        report.error = f"{type(exc).__name__}: {exc}"
        report.failed = "error"
    heard = not report.read_by_other or report.sent.sent > 0  # the platform answered this worker this cycle
    if heard and (report.error is None or (isinstance(report.error, str) and report.error.startswith("RateLimited"))):
        # A worker that only sent, and had nothing to send, learned nothing of the platform: counting its
        # cycle as good kept an outage young for ever when another worker did the reading (and failed).
        _alive(app, account, state.last_cycle_at)
    return report


def _give_back(lease: ReadLease) -> None:
    """End of the read: the next worker may read. If the database is in trouble the lease runs out instead
    (or this worker takes it again, as its own), and the cycle's own error is the one that counts."""
    try:
        lease.release()
    except DatabaseTrouble:
        log.debug("%s: could not give the lease back; it runs out by itself", lease.account)


def _alive(app: App, account: AccountConfig, last_good: datetime | None) -> None:
    app.storage.accounts.update(account.name, last_cycle_at=now())
    tell_if_back(app, account, last_good)


def _sweep_cases(app: App, account: AccountConfig) -> None:
    """The cases' timers (check-backs due, targets, closing): database work, done even while paused, at most
    every SWEEP_EVERY."""
    at = now()
    if not app.chore_due("sweep", account.name, SWEEP_EVERY, at):
        return
    try:
        with app.decide_lock(account.name):  # never while a streamed mention is decided
            swept = sweep(app.config, app.storage, app.playbooks, account, at)
    except DatabaseTrouble:
        raise
    except Exception:  # a bug here must not keep the account from reading and sending
        log.exception("%s: unexpected error while sweeping cases", account.name)
        return
    if swept.check_backs or swept.alerts or swept.closed:
        log.info(
            "%s: cases: %s check-backs queued, %s target alerts, %s closed",
            account.name,
            swept.check_backs,
            swept.alerts,
            swept.closed,
        )


def _verified(app: App, account: AccountConfig, state: AccountState, connector: Connector) -> AccountState:
    """Check credentials once per connector, and remember who the brand is on this platform."""
    if account.name in app.verified and state.own_id:
        return state
    info = connector.verify()
    app.storage.accounts.update(
        account.name, own_id=info.id, own_handle=info.handle, max_characters=info.max_characters
    )
    app.verified.add(account.name)
    refreshed = app.storage.accounts.get(account.name)
    assert refreshed is not None
    return refreshed


def _read_mentions(
    app: App,
    account: AccountConfig,
    state: AccountState,
    connector: Connector,
    report: CycleReport,
    stop: threading.Event | None,
    lease: ReadLease | None = None,
    page_stored: Callable[[], None] = lambda: None,
) -> None:
    cursor = state.cursor
    stored = state.cursor  # the cursor as this read found it: moved only if still so (compare-and-set)
    answer_since = state.answer_since
    if cursor is None or (account.backfill is not None and answer_since is None):
        cursor, answer_since = _start(app, account, cursor, report)
    settings = app.config.daemon
    # The read starts a little before the cursor, now and then (bot/run/overlap.py): stored posts are skipped.
    overlap, at = overlap_of(account), now()
    limit = MAX_REREAD_PAGES * settings.page_size

    def too_many_since(moment: datetime) -> bool:
        return app.storage.mentions.more_than_since(account.name, moment, limit)

    position = cursor
    if app.chore_due("reread", account.name, reread_every(overlap), at):
        position = read_start(state.cursor_marks, cursor, overlap, at, too_many_since)
    marks = marked(state.cursor_marks, cursor, overlap, at)
    if marks is not None:
        app.storage.accounts.mark_cursor(account.name, stored, marks)
    for _ in range(settings.max_pages_per_cycle):
        if stop is not None and stop.is_set():
            return
        if _budget_spent(app, account, connector):
            return
        page = connector.fetch_mentions(position, settings.page_size)
        if not isinstance(connector, Metered):  # a metered connector counts for itself, more exactly
            app.storage.accounts.add_usage(account.name, requests=1, posts_read=len(page.mentions))
        report.fetched += len(page.mentions)
        new_before = report.new
        for item in page.unreadable:  # one bad post never holds the stream back
            set_aside_unreadable(app.storage, account, item)
        with app.storage.held():  # the page's mentions on one database connection
            for mention in page.mentions:
                if answer_since is not None and mention.created_at < answer_since:
                    report.too_old += 1
                    continue
                if process_mention(app, account, state, connector, mention):
                    report.new += 1
        if report.new > new_before:
            page_stored()
        # The cursor moves only after every mention of the page is stored, and only forward; and only
        # if nobody else moved it since this read began (a worker whose lease ran out while it waited).
        if page.next_cursor is not None and page.next_cursor != position:
            position = page.next_cursor
            if later(position, cursor):
                cursor = position
                if not app.storage.accounts.move_cursor(account.name, stored, cursor):
                    log.debug("%s: the cursor was moved by another worker; leaving it to that one", account.name)
                    return
                stored = cursor
        if not page.has_more:
            return
        if lease is not None and not lease.renew():
            log.debug("%s: stopping this read: its lease was lost or is another worker's turn now", account.name)
            return


def _start(
    app: App, account: AccountConfig, cursor: str | None, report: CycleReport
) -> tuple[str | None, datetime | None]:
    """Where a new account starts reading (None: from now), or where its backfill does; and since when
    mentions are answered. A backfill is done once per account (its `answer_since` is kept)."""
    report.first_run = cursor is None
    platform = get_platform(account.platform)
    if account.backfill is None or platform.backfill_cursor is None:
        if account.backfill is not None:
            log.warning("%s: backfill is not possible on %s; answering from now on", account.name, platform.name)
        if cursor is None:
            log.info(
                "%s: first run: mentions posted before now are not answered (add `backfill: 24h` to the "
                "account to answer the last day's too)",
                account.name,
            )
        return cursor, None
    since = now() - timedelta(seconds=account.backfill)
    app.storage.accounts.update(account.name, answer_since=since)
    report.backfill_since = since
    log.info("%s: backfill: answering the mentions posted since %s", account.name, since.isoformat(timespec="seconds"))
    return platform.backfill_cursor(since), since


def _budget_spent(app: App, account: AccountConfig, connector: Connector) -> bool:
    """True (and the account paused until the reset) when the platform's request budget is nearly gone.

    A few requests are kept back so that replies can still be sent while a backlog waits for the reset.
    """
    budget = connector.budget()
    if budget.remaining is None or budget.reset_at is None or budget.remaining > BUDGET_RESERVE:
        return False
    if budget.reset_at <= now():
        return False
    reason = f"request budget nearly spent ({budget.remaining} left until {budget.reset_at.isoformat()})"
    app.storage.accounts.update(account.name, paused_until=budget.reset_at, pause_reason=reason)
    log.info("%s: %s; reading more after the reset", account.name, reason)
    return True


def _handle_failure(app: App, account: AccountConfig, exc: ConnectorError, report: CycleReport) -> None:
    report.error = f"{type(exc).__name__}: {exc}"
    report.failure = exc
    if isinstance(exc, UsageCapped):
        until = now() + timedelta(seconds=max(exc.retry_after, 1.0))
        reason = f"{CAPPED}: {exc}"
        app.storage.accounts.update(account.name, paused_until=until, pause_reason=reason)
        report.paused, report.failed = True, "cap"
        log.error("%s: %s; paused until %s", account.name, reason, until.isoformat())
        _tell_team_of_cap(app, account, exc, until)
    elif isinstance(exc, RateLimited):
        until = now() + timedelta(seconds=max(exc.retry_after, 1.0))
        app.storage.accounts.update(account.name, paused_until=until, pause_reason=f"{RATE}: {exc}")
        report.paused = True
        log.warning("%s: rate limited; paused until %s", account.name, until.isoformat())
    elif isinstance(exc, AuthFailed):
        until = now() + AUTH_PAUSE
        app.storage.accounts.update(account.name, paused_until=until, pause_reason=f"{AUTH}: {exc}")
        app.drop_connector(account.name)
        report.paused, report.failed = True, "auth"
        log.error("%s: credentials refused (%s); paused until %s", account.name, exc, until.isoformat())
    else:
        # No connection at all, or a platform that answers but fails (5xx, timeouts): told apart, since the
        # person who reads about it checks the network for the one and the platform's status for the other.
        report.failed = "unreachable" if isinstance(exc, Unreachable) else "error"
        if isinstance(exc, Unreachable):
            # Who the brand is there is asked again once it answers: a server that comes back restored or
            # replaced may know the brand by another id, and every mention would read as not addressing it.
            app.verified.discard(account.name)
        log.warning("%s: %s; will try again next cycle", account.name, report.error)


def _tell_team_of_cap(app: App, account: AccountConfig, exc: UsageCapped, until: datetime) -> None:
    """One alert per account and capped period, however many cycles find the cap."""
    text = (
        f"{account.name} ({account.platform}): usage cap reached ({exc}). carebot reads and posts nothing on "
        f"this account until {until.isoformat(timespec='minutes')}; replies wait in the queue. Raise the plan's "
        "cap, or wait."
    )
    raise_alert(
        app.storage,
        key=f"usage-cap:{account.name}:{until.date().isoformat()}",
        kind="usage_cap",
        account=account.name,
        text=text,
    )


def _failure_of(reason: str | None) -> str | None:
    """What kind of failure a stored pause reason records (None: a pause that is no failure)."""
    if reason is None:
        return None
    if reason.startswith(CAPPED):
        return "cap"
    return "auth" if reason.startswith(AUTH) else None
