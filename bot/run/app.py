"""Everything a running carebot holds, built once from the config: storage, classifier, playbooks, connectors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from bot.classifier import Classifier
from bot.config import AccountConfig, Config
from bot.decide.playbooks import Playbooks, load_playbooks, vocabulary
from bot.storage import Storage
from connectors import get_platform
from connectors.base import Connector, ConnectorSettings


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


@dataclass
class App:
    config: Config
    storage: Storage
    classifier: Classifier
    playbooks: Playbooks
    open_connector: Callable[[AccountConfig], Connector] = open_connector
    connectors: dict[str, Connector] = field(default_factory=dict)
    verified: set[str] = field(default_factory=set)  # accounts whose credentials this process checked

    @classmethod
    def build(cls, config: Config) -> App:
        playbooks = load_playbooks(config.playbooks)
        classifier = Classifier.load(vocabulary(playbooks), model_path=config.classifier.model)
        storage = Storage.open(config.storage.url)
        for account in config.accounts:
            storage.accounts.ensure(account.name, account.platform)
        return cls(config, storage, classifier, playbooks)

    def connector(self, account: AccountConfig) -> Connector:
        if account.name not in self.connectors:
            self.connectors[account.name] = self.open_connector(account)
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
