"""Fixtures every kind of test shares. The real peers' fixtures are in tests/peers/ (registered by the root
conftest.py): a database on both backends, mastodon-mock, Prism and the fake X."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest

from bot.config import Config
from bot.run.app import App
from bot.run.daemon import run_once

StartBot = Callable[..., App]


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    """A command run in-process (`carebot demo`, `run --once`) sets up logging as the real command does: a
    handler on the standard error of that moment, which pytest closes when the test ends. Left in place,
    it made later tests print "--- Logging error --- ... I/O operation on closed file"."""
    root = logging.getLogger()
    before, level = set(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in before and type(handler) is logging.StreamHandler:  # pytest's own are subclasses
            root.removeHandler(handler)
    root.setLevel(level)


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
