"""Streaming accounts (`stream: true`): a mention is answered the moment the platform streams it.

The stream is a fast path; the polled cycle stays the source of truth. Per streaming account:

- a **listener** thread holds the platform's stream (`Platform.open_stream`). Each streamed mention goes
  to the account's inbox. Every (re)connect asks for a full cycle (the **fill-in**): a stream does not
  replay what was posted while it was down, and the REST read after the cursor does.
- a **worker** thread answers: it takes the whole inbox at once (a burst is one batch), stores and
  decides each mention as a cycle would (`process_mention`; `(account, post_id)` is unique, so a mention
  both streamed and polled is answered once), then sends what is due. The cursor is never moved by the
  stream: the next poll re-reads those mentions and skips them, so a mention the stream missed is still
  read. Anything unusual (the account paused, not verified yet, a platform error) is left to a full cycle,
  which knows how to handle it.
- deciding is one mention at a time per account: `process_mention` takes the account's
  `App.decide_lock` around deciding and storing a new mention, never around a network read, so a poll
  re-reading stored pages does not hold streamed mentions back. Sending needs no lock: each reply is
  claimed (a compare-and-set) before it is posted, so the worker and a poll never post one twice. The
  worker has its own connector (its own HTTP session). A fill-in cycle takes `App.cycle_lock`, like the
  scheduled one: never two polled cycles of one account at once.

With several workers on one database, one listens to an account's stream at a time: the holder of the
stream's lease (`bot/run/lease.py`), renewed by a third thread (the **keeper**) and given back at
shutdown; it is also the only worker to poll the account meanwhile. The others try for it every
`lease.STREAM_RETRY` seconds.

A stream that fails is retried with backoff (1 s doubling to 5 minutes, with jitter). After
`FALLBACK_AFTER` failures in a row (at once when the server has no streaming, or refuses the token) it is
said once that the account is polled only, and once when the stream is back. Polling never stopped.
SIGTERM (the daemon's stop event) closes every stream at once, and the threads end with the daemon.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
import time
from collections.abc import Callable
from contextlib import suppress

from bot.clock import now
from bot.config import AccountConfig
from bot.run import lease
from bot.run.alerts import raise_mention_alerts
from bot.run.app import App, connector_settings, open_connector
from bot.run.outbox import send_due
from bot.run.pipeline import process_mention
from bot.storage import DatabaseTrouble
from connectors import get_platform
from connectors.base import AuthFailed, Connector, ConnectorError, Mention, MentionStream, Rejected

log = logging.getLogger("carebot.stream")

FIRST_BACKOFF = 1.0  # seconds before the first reconnect
MAX_BACKOFF = 300.0  # the longest wait between two tries: the stream is retried at least this often
FALLBACK_AFTER = 3  # failures in a row before the account is said to be polled only
STABLE_AFTER = 60.0  # a connection that lasted this long was a good one: the backoff starts over
OWN_ID_WAIT = 0.5  # seconds between looks at the brand's own id, which the first cycle stores
JOIN_GRACE = 5.0  # at shutdown, how long the streams' workers may take, together, to finish the replies in flight


def streaming_accounts(app: App) -> list[AccountConfig]:
    """The accounts that asked for a stream, on a platform that has one (X is polled: its filtered
    stream is another product, with its own plans)."""
    chosen = []
    for account in app.config.accounts:
        if not account.options.get("stream"):
            continue
        if get_platform(account.platform).open_stream is None:
            log.warning("%s: %s has no mention stream here; polling only", account.name, account.platform)
            continue
        chosen.append(account)
    return chosen


class AccountStream:
    """One streaming account's listener and worker. `full_cycle` runs the account's polled cycle (it takes
    the account's lock itself)."""

    def __init__(self, app: App, account: AccountConfig, stop: threading.Event, full_cycle: Callable[[], None]) -> None:
        self.app = app
        self.account = account
        self.stop = stop
        self.full_cycle = full_cycle
        self._inbox: list[Mention] = []
        self._fill_in = False
        self._guard = threading.Lock()  # the inbox and the fill-in flag
        self._wake = threading.Event()
        self._stream: MentionStream | None = None
        self._polling_only = False  # said once, until the stream is back
        self._own_connector: Connector | None = None
        name = account.name
        self._holding = False  # this worker holds the stream's lease (bot/run/lease.py)
        self._listener = threading.Thread(target=self._listen, name=f"carebot-stream-{name}", daemon=True)
        self._worker = threading.Thread(target=self._work, name=f"carebot-streamed-{name}", daemon=True)
        self._keeper = threading.Thread(target=self._keep_lease, name=f"carebot-stream-lease-{name}", daemon=True)

    def start(self) -> None:
        self._listener.start()
        self._worker.start()
        self._keeper.start()

    def hang_up(self) -> None:
        """After the stop event: close the connection and wake the worker, so that it finishes the reply in
        flight and stops."""
        with self._guard:
            stream = self._stream
        if stream is not None:
            stream.close()
        self._wake.set()

    def finish(self, deadline: float) -> None:
        """Wait for the threads until `deadline` (time.monotonic()), then give back the connection and the
        lease. A thread that never started (starting failed half way) is not waited for."""
        for thread in (self._listener, self._worker, self._keeper):
            if thread.ident is not None:
                thread.join(max(0.0, deadline - time.monotonic()))
        if not self._worker.is_alive():
            self._drop_connector()
        if self._holding:  # another worker listens from its next try on, not when the lease runs out
            with suppress(DatabaseTrouble):
                lease.release_stream_lease(self.app.storage, self.app.worker, self.account.name)

    # --- the listener ---------------------------------------------------------

    def _listen(self) -> None:
        failures, backoff = 0, FIRST_BACKOFF
        own_id = self._own_id()
        while own_id is not None and not self.stop.is_set():
            if not self._take_lease():  # another worker listens: this one polls, and tries again later
                if self.stop.wait(lease.STREAM_RETRY):
                    return
                continue
            started = time.monotonic()
            try:
                self._read(own_id)
            except ConnectorError as exc:
                if self.stop.is_set():
                    return
                if time.monotonic() - started >= STABLE_AFTER:
                    failures, backoff = 0, FIRST_BACKOFF
                failures += 1
                lasting = isinstance(exc, Rejected | AuthFailed)  # no streaming here, or the token refused
                if not self._polling_only and (lasting or failures >= FALLBACK_AFTER):
                    self._polling_only = True
                    log.warning(
                        "%s: the notification stream is unavailable (%s); polling every %gs until it is back",
                        self.account.name,
                        exc,
                        self.app.intervals.get(self.account.name, self.account.poll_interval),
                    )
                else:
                    log.info("%s: stream: %s; reconnecting", self.account.name, exc)
                wait = MAX_BACKOFF if lasting else backoff
                backoff = min(backoff * 2, MAX_BACKOFF)
                if self.stop.wait(random.uniform(wait / 2, wait)):
                    return
            except Exception:  # a bug: said with its traceback, and the stream is tried again later
                log.exception("%s: unexpected error in the stream listener", self.account.name)
                if self.stop.wait(MAX_BACKOFF):
                    return

    def _take_lease(self) -> bool:
        if not self._holding:
            try:
                self._holding = lease.take_stream_lease(self.app.storage, self.app.worker, self.account.name)
            except DatabaseTrouble:
                return False  # the cycles meet it too, and the watch says it once
            except Exception:  # a bug: said with its traceback; the account is polled, and tried again
                log.exception("%s: unexpected error taking the stream's lease", self.account.name)
                return False
            if not self._holding:
                log.debug("%s: another worker listens to the stream; this one polls", self.account.name)
        return self._holding

    def _keep_lease(self) -> None:
        """Renew the stream's lease while it is held; when it was lost (this worker stalled for longer than
        the lease and another took over), close the stream: one worker listens."""
        while not self.stop.wait(lease.STREAM_RENEW):
            if not self._holding:
                continue
            try:
                kept = lease.renew_stream_lease(self.app.storage, self.app.worker, self.account.name)
            except DatabaseTrouble:
                continue  # kept as far as this worker knows; renewed once the database is back
            except Exception:  # a bug: said with its traceback, and renewed next round. Were this thread to
                # end, the lease would run out while this worker still listened, and another would listen too.
                log.exception("%s: unexpected error renewing the stream's lease", self.account.name)
                continue
            if not kept:
                self._holding = False
                log.info("%s: another worker listens to the stream now; this one polls", self.account.name)
                with self._guard:
                    stream = self._stream
                if stream is not None:
                    stream.close()

    def _read(self, own_id: str) -> None:
        open_stream = get_platform(self.account.platform).open_stream
        assert open_stream is not None
        stream = open_stream(connector_settings(self.account), own_id)
        with self._guard:
            self._stream = stream
        if self.stop.is_set():  # finish() ran before the stream was known to it
            stream.close()
            return
        try:
            for event in stream.events():
                if event is None:
                    self._connected()
                    continue
                with self._guard:
                    self._inbox.append(event)
                self._wake.set()
        finally:
            stream.close()
            with self._guard:
                self._stream = None

    def _connected(self) -> None:
        if self._polling_only:
            self._polling_only = False
            log.warning("%s: the notification stream is back", self.account.name)
        else:
            log.info("%s: listening to the notification stream", self.account.name)
        with self._guard:
            self._fill_in = True  # what was posted while we were not listening: read it from the REST API
        self._wake.set()

    def _own_id(self) -> str | None:
        """The brand's own id on the platform, stored by the first cycle's check of the credentials (a
        streamed post names the brand by it). None if the daemon stops first."""
        while not self.stop.is_set():
            try:
                state = self.app.storage.accounts.get(self.account.name)
            except DatabaseTrouble:
                state = None  # the cycles meet it too, and the watch says it once
            if state is not None and state.own_id and state.cursor is not None:
                return state.own_id
            self.stop.wait(OWN_ID_WAIT)
        return None

    # --- the worker -------------------------------------------------------------

    def _work(self) -> None:
        while True:
            self._wake.wait()
            if self.stop.is_set():
                return
            self._wake.clear()
            with self._guard:
                mentions, self._inbox = self._inbox, []
                fill_in, self._fill_in = self._fill_in, False
            try:
                if fill_in:
                    self.full_cycle()
                if mentions and not self._answer(mentions):
                    self.full_cycle()  # what the fast path could not do, the cycle does (and reads them anyway)
            except Exception:  # a bug: said with its traceback; the polled cycles read these mentions again,
                # and this thread goes on answering the stream (ended, it would leave the inbox filling up)
                log.exception("%s: unexpected error answering the stream", self.account.name)

    def _answer(self, mentions: list[Mention]) -> bool:
        """Store, decide and answer the streamed mentions; False when a full cycle must do it instead."""
        app, account = self.app, self.account
        if not app.watch.ready():
            return True  # the database is in trouble: the polled cycles read these again once it is back
        try:
            state = app.storage.accounts.get(account.name)
            if state is None or state.cursor is None or account.name not in app.verified:
                return False
            if state.paused_until is not None and state.paused_until > now():
                return True  # the pause's end is the cycle's business; these are read again then
            connector = self._connector()
            new = 0
            for mention in mentions:  # each decided under the account's decide_lock (bot/run/pipeline.py)
                if self.stop.is_set():
                    return True
                if state.answer_since is not None and mention.created_at < state.answer_since:
                    continue
                if process_mention(app, account, state, connector, mention):
                    new += 1
            sent = send_due(app, account, state, connector, self.stop)  # claims keep it from a poll's sending
            raise_mention_alerts(app.storage, app.config)
        except ConnectorError as exc:
            log.info("%s: streamed mentions: %s; a full cycle takes over", account.name, exc)
            self._drop_connector()
            return False
        except DatabaseTrouble as exc:
            if app.watch.failed(exc):
                self.stop.set()
            return True
        except Exception:  # a bug: said with its traceback; the polled cycle reads these mentions again
            log.exception("%s: unexpected error answering streamed mentions", account.name)
            return True
        app.watch.settled()
        app.metrics.stream_batch(account.name, new=new, sent=sent.sent, retried=sent.retried, parked=sent.parked)
        if new or sent.sent:
            log.info("%s: streamed: %s new, %s sent", account.name, new, sent.sent)
        return True

    def _connector(self) -> Connector:
        """The worker's own connector: its requests never share a session with the polled cycle's, which may
        be reading a page at the same moment."""
        if self._own_connector is None:
            self._own_connector = open_connector(self.account)
        return self._own_connector

    def _drop_connector(self) -> None:
        connector, self._own_connector = self._own_connector, None
        if connector is not None:
            connector.close()


def account_streams(app: App, stop: threading.Event, job: Callable[[AccountConfig], None]) -> list[AccountStream]:
    """A listener and a worker for each streaming account, not started yet; `job(account)` is its polled
    cycle."""
    return [AccountStream(app, a, stop, functools.partial(job, a)) for a in streaming_accounts(app)]


def finish_streams(streams: list[AccountStream]) -> None:
    """Hang up every stream first, then wait for them all against one deadline: however many accounts
    stream, shutdown waits JOIN_GRACE at most for them, within a supervisor's grace (Docker's is 10 s)."""
    for stream in streams:
        stream.hang_up()
    deadline = time.monotonic() + JOIN_GRACE
    for stream in streams:
        stream.finish(deadline)
