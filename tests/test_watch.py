"""The daemon's database watch and where a read of the stream starts: pure timing, on a fake clock."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.clock import use_clock
from bot.config import load_config
from bot.run.overlap import later, marked, read_start
from bot.run.watch import FIRST_WAIT, LONGEST_WAIT, DatabaseWatch
from bot.storage import CannotWrite, DatabaseReplaced, DatabaseUnavailable, Storage
from tests import configs

T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


class Clock:
    """Starts at the real time: the database's own writes (its migration, when the fixture opens it) come
    before the test's first moment, whatever the day the test runs."""

    def __init__(self) -> None:
        self.start = self.at = datetime.now(UTC)

    def wall(self) -> datetime:
        return self.at

    def mono(self) -> float:
        return (self.at - self.start).total_seconds()

    def pass_(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


@pytest.fixture
def watched(tmp_path: Path) -> tuple[DatabaseWatch, Storage, Clock]:
    path = configs.write_config(
        tmp_path, db_url=f"sqlite:///{tmp_path / 'c.db'}", accounts=configs.mastodon_account("http://127.0.0.1:9")
    )
    config = load_config(path, {"BRAND_TOKEN": "t"})
    storage = Storage.open(config.storage.url)
    clock = Clock()
    return DatabaseWatch(storage, config, clock=clock.mono), storage, clock


def test_trouble_is_one_line_backoff_doubles_and_the_end_is_one_line(
    watched: tuple[DatabaseWatch, Storage, Clock], caplog: pytest.LogCaptureFixture
) -> None:
    watch, storage, clock = watched
    caplog.set_level(logging.INFO, logger="carebot.database")
    waits = []
    with use_clock(clock.wall):
        for _ in range(8):
            assert watch.ready()
            assert not watch.failed(DatabaseUnavailable("connection refused"))
            assert not watch.ready()
            waits.append(watch._next_try - clock.mono())
            clock.pass_(waits[-1])
        assert watch.state().status == "degraded"
        storage.accounts.ensure("a", "mastodon")  # the database is back: a write went through
        watch.settled()
        watch.settled()
    assert waits == [FIRST_WAIT, 2, 4, 8, 16, 32, LONGEST_WAIT, LONGEST_WAIT]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and "cannot reach the database" in lines[0] and "back after" in lines[1], lines
    assert watch.state().status == "ok"
    storage.close()


def test_a_write_between_failures_is_a_passing_loss_not_an_outage(
    watched: tuple[DatabaseWatch, Storage, Clock],
) -> None:
    watch, storage, clock = watched
    with use_clock(clock.wall):
        for _ in range(6):  # a backend killed now and then; writes go through in between
            watch.failed(DatabaseUnavailable("terminating connection due to administrator command"))
            assert watch._next_try - clock.mono() == FIRST_WAIT
            clock.pass_(300)
            storage.accounts.ensure(f"a{clock.mono()}", "mastodon")
            clock.pass_(1)
        assert watch.fatal is None  # half an hour of such losses is not "could not write for 10 minutes"
    storage.close()


def test_it_gives_up_after_give_up_after_without_a_write_and_at_once_for_a_replaced_file(
    watched: tuple[DatabaseWatch, Storage, Clock],
) -> None:
    watch, storage, clock = watched
    with use_clock(clock.wall):
        assert not watch.failed(CannotWrite("database or disk is full", "full"))
        clock.pass_(599)
        assert not watch.failed(CannotWrite("database or disk is full", "full"))
        clock.pass_(2)
        assert watch.failed(CannotWrite("database or disk is full", "full"))
    assert watch.fatal is not None and "could not write to the database for 10m" in watch.fatal
    assert not watch.ready() and watch.state().status == "failed"
    again = DatabaseWatch(storage, watch._config, clock=clock.mono)
    assert again.failed(DatabaseReplaced("the database file was deleted"))
    storage.close()


def test_trouble_writing_is_told_to_the_team_once_when_the_database_takes_it(
    watched: tuple[DatabaseWatch, Storage, Clock],
) -> None:
    watch, storage, clock = watched
    with use_clock(clock.wall):
        watch.failed(CannotWrite("database or disk is full", "full"))
        watch.failed(CannotWrite("database or disk is full", "full"))
        clock.pass_(30)
        storage.accounts.ensure("a", "mastodon")
        watch.settled()
    (alert,) = storage.alerts.undelivered()
    assert alert.kind == "database" and "disk is full" in alert.text and "Back after 30s" in alert.text
    storage.close()


# --- where a read starts -------------------------------------------------------------------------------


def test_a_read_starts_where_the_cursor_stood_the_overlap_ago() -> None:
    marks = None
    for minute, cursor in enumerate(["100", "105", "110", "120", "130"]):
        marks = marked(marks, cursor, 120.0, T0 + timedelta(minutes=minute)) or marks
    at = T0 + timedelta(minutes=4, seconds=10)
    assert read_start(marks, "130", 120.0, at) == "110"  # where it stood at 12:02, two minutes before
    assert read_start(marks, "130", 0.0, at) == "130"  # overlap 0: from the cursor
    assert read_start(None, "130", 120.0, at) == "130"  # nothing marked yet
    assert marks is not None and marks[0][1] == "110"  # older marks are dropped


def test_a_mark_is_kept_at_most_once_a_tenth_of_the_overlap_and_cursors_are_ordered_by_length_then_text() -> None:
    marks = marked(None, "5", 120.0, T0)
    assert marked(marks, "6", 120.0, T0 + timedelta(seconds=5)) is None
    assert marked(marks, "6", 120.0, T0 + timedelta(seconds=13)) is not None
    assert later("100", "99") and not later("99", "100") and later("1", None)


def test_in_a_burst_the_read_starts_at_a_later_mark() -> None:
    marks = None
    for minute, cursor in enumerate(["100", "105", "110", "120", "130"]):
        marks = marked(marks, cursor, 120.0, T0 + timedelta(minutes=minute)) or marks
    at = T0 + timedelta(minutes=4, seconds=10)
    since_third = T0 + timedelta(minutes=2)
    assert read_start(marks, "130", 120.0, at, lambda moment: moment <= since_third) == "120"
    assert read_start(marks, "130", 120.0, at, lambda moment: True) == "130"  # all a burst: from the cursor
