"""Fixtures every kind of test shares. The real peers' fixtures are in tests/peers/ (registered by the root
conftest.py): a database on both backends, mastodon-mock, Prism and the fake X."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from bot.config import Config
from bot.run.app import App
from bot.run.daemon import run_once

StartBot = Callable[..., App]


@pytest.fixture
def running_bot() -> Iterator[StartBot]:
    """Start the whole bot from a config, as `carebot run` does, and let it do its first cycle: a new account
    answers mentions from then on. `first_cycle=False` skips that. Every bot started is closed afterwards
    (a test may close one earlier itself, to restart it)."""
    apps: list[App] = []

    def start(config: Config, *, first_cycle: bool = True) -> App:
        app = App.build(config)
        apps.append(app)
        if first_cycle:
            run_once(app)
        return app

    yield start
    for app in reversed(apps):
        app.close()
