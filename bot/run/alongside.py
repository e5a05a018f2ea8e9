"""The bot's answers sent while the cycle is still reading: a backlog's replies start going out after its
first page is stored, not after its last.

Only answers to mentions (`purpose` answer) go out early: each answers its own mention, decided when that
mention was stored. A case's other replies (a person's, a check-back, an incident's) still wait for the
end of the read and the cases' sweep, so a check-back never goes to someone whose new post is on a page
not read yet. One sender thread, woken after each page, runs `send_due` for the answers (with its own
senders, `daemon.send_concurrency`); only for connectors that may be used from several threads at once
(`max_send_concurrency` > 1): the reader keeps using the connector meanwhile.
"""

from __future__ import annotations

import threading

from bot.config import AccountConfig
from bot.models import ReplyPurpose
from bot.run.app import App
from bot.run.outbox import SendReport, send_due
from bot.storage.records import AccountState
from connectors.base import Connector

ANSWERS = (ReplyPurpose.ANSWER.value,)


class AnswersAlongside:
    """Started before the read, woken by `kick` after each stored page, stopped by `finish`."""

    def __init__(
        self, app: App, account: AccountConfig, state: AccountState, connector: Connector, stop: threading.Event | None
    ) -> None:
        self._args = (app, account, state, connector)
        self._stop = stop
        self._wake = threading.Event()
        self._reading = True
        self._due = False  # kicked since the last send: with nothing new read, the cycle's own send is enough
        self.report = SendReport()
        self._failure: BaseException | None = None
        self._thread: threading.Thread | None = None
        if connector.max_send_concurrency > 1 and app.config.daemon.send_concurrency > 1:
            self._thread = threading.Thread(target=self._run, name=f"carebot-answers-{account.name}", daemon=True)
            self._thread.start()

    def kick(self) -> None:
        """A page with new mentions is stored: their answers are due."""
        self._due = True
        self._wake.set()

    def finish(self) -> tuple[SendReport, BaseException | None]:
        """Wait for the answers of what was read to be sent; what was sent, and the failure that stopped
        the sender (RateLimited, AuthFailed, database trouble...), for the caller to raise."""
        self._reading = False
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        return self.report, self._failure

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            last = not self._reading
            if self._due:
                self._due = False
                try:
                    self.report = self.report.add(send_due(*self._args, self._stop, purposes=ANSWERS))
                except BaseException as exc:  # raised by the cycle once the read is done
                    self._failure = exc
                    return
            if last:
                return
