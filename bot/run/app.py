"""Everything a running carebot holds, built once from the config: storage, classifier, playbooks, connectors."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.classifier import Classifier
from bot.clock import now
from bot.config import AccountConfig, Config
from bot.decide.playbooks import Playbooks, load_playbooks, vocabulary
from bot.run.lease import Worker
from bot.run.metrics import Metrics
from bot.run.watch import DatabaseWatch
from bot.storage import Storage
from connectors import get_platform
from connectors.base import Connector, ConnectorSettings, Metered


def connector_settings(account: AccountConfig) -> ConnectorSettings:
    return ConnectorSettings(
        account=account.name,
        base_url=account.base_url,
        secrets=account.secrets,
        options=account.options,
        timeout=account.timeout,
    )


def open_connector(account: AccountConfig) -> Connector:
    platform = get_platform(account.platform)
    connector: Connector = platform.create(connector_settings(account))
    return connector


@dataclass(frozen=True)
class StoredLedger:
    """An account's connector ledger (`connectors.base.Ledger`), kept in the accounts table."""

    storage: Storage
    account: str

    def load(self) -> Mapping[str, Any]:
        return self.storage.accounts.ledger(self.account)

    def save(self, state: Mapping[str, Any]) -> None:
        self.storage.accounts.save_ledger(self.account, state)


@dataclass
class App:
    config: Config
    storage: Storage
    classifier: Classifier
    playbooks: Playbooks
    open_connector: Callable[[AccountConfig], Connector] = open_connector
    connectors: dict[str, Connector] = field(default_factory=dict)
    verified: set[str] = field(default_factory=set)  # accounts whose credentials this process checked
    # Accounts whose credentials this process has tried, well or not: a pause for refused credentials that
    # an earlier process stored does not hold back this one's first try (the token may have been fixed).
    credentials_tried: set[str] = field(default_factory=set)
    # Accounts that have failed in this process without any good cycle on record, since when (bot/run/outage.py).
    failing_since: dict[str, datetime] = field(default_factory=dict)
    metrics: Metrics = field(default_factory=Metrics)
    intervals: dict[str, float] = field(default_factory=dict)  # each account's poll interval as scheduled
    # When this process last did an account's periodic chores ("sweep": the cases' timers, "reread": a read
    # from before the cursor); `run --once` clears them, so a one-off run does every chore.
    chores: dict[tuple[str, str], datetime] = field(default_factory=dict)
    started_at: datetime = field(default_factory=now)
    worker: Worker = field(default_factory=Worker)  # this worker among the others (bot/run/lease.py)
    watch: DatabaseWatch = field(init=False)  # the database's health as the daemon sees it (bot/run/watch.py)
    # Per account (bot/run/stream.py): "decide" is held while a new mention is decided and stored and while
    # the cases' timers run, so a polled page and a streamed batch are never decided at once; "cycle" is held
    # by a whole polled cycle, so a fill-in after a reconnect never runs beside the scheduled one.
    locks: dict[tuple[str, str], threading.Lock] = field(default_factory=dict)
    _locks_guard: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.watch = DatabaseWatch(self.storage, self.config)

    @classmethod
    def build(cls, config: Config) -> App:
        playbooks = load_playbooks(config.playbooks)
        classifier = Classifier.load(vocabulary(playbooks), model_path=config.classifier.model)
        storage = Storage.open(config.storage.url)
        try:
            for account in config.accounts:
                storage.accounts.ensure(account.name, account.platform)
        except BaseException:
            storage.close()
            raise
        app = cls(config, storage, classifier, playbooks)
        app.metrics.watch(storage, config)
        return app

    def chore_due(self, chore: str, account: str, every: timedelta, at: datetime) -> bool:
        """Whether the account's `chore` is due at `at` (not done in the last `every`, or the clock went
        back); if so it counts as done at `at`."""
        last = self.chores.get((chore, account))
        if last is not None and timedelta(0) <= at - last < every:
            return False
        self.chores[(chore, account)] = at
        return True

    def decide_lock(self, name: str) -> threading.Lock:
        with self._locks_guard:
            return self.locks.setdefault(("decide", name), threading.Lock())

    def cycle_lock(self, name: str) -> threading.Lock:
        with self._locks_guard:
            return self.locks.setdefault(("cycle", name), threading.Lock())

    def connector(self, account: AccountConfig) -> Connector:
        if account.name not in self.connectors:
            connector = self.open_connector(account)
            if isinstance(connector, Metered):
                connector.attach_ledger(StoredLedger(self.storage, account.name))
            self.connectors[account.name] = connector
        return self.connectors[account.name]

    def drop_connector(self, name: str) -> None:
        """Forget a connector (after an auth failure, say) so the next cycle builds a fresh one."""
        self.verified.discard(name)
        connector = self.connectors.pop(name, None)
        if connector is not None:
            connector.close()

    def close(self) -> None:
        for name in list(self.connectors):
            self.drop_connector(name)
        self.storage.close()
