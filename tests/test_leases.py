"""Several workers on one database: an account's stream is read by one worker at a time (its lease), the
cursor moves by compare-and-set, and sending is shared (bot/run/lease.py, bot/storage/leases.py)."""

from __future__ import annotations

import subprocess
import threading
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from mastodon_mock.testing import MockServer

from bot.config import Config, load_config
from bot.run.app import App
from bot.run.daemon import run_once
from bot.run.lease import READ_LEASE, Worker
from bot.run.liveness import process_identity
from bot.storage import Storage
from tests import configs
from tests.conftest import StartBot
from tests.peers.mastodon import BRAND, add_fault, client, post_as

ACCOUNT = "acme-mastodon"
QUESTIONS = ("@brand how do I reach support by email?", "@brand does the app have a dark mode?")
CUSTOMERS = ("alice", "boris", "dewi", "layla")


# --- the lease and the cursor, in storage -------------------------------------------------------------


def test_a_lease_is_held_by_one_worker_until_given_back(storage: Storage) -> None:
    assert storage.leases.take(ACCOUNT, "a", READ_LEASE)
    assert not storage.leases.take(ACCOUNT, "b", READ_LEASE)
    assert storage.leases.renew(ACCOUNT, "a", READ_LEASE)
    assert not storage.leases.renew(ACCOUNT, "b", READ_LEASE)  # not b's to renew
    assert not storage.leases.release(ACCOUNT, "b")
    assert storage.leases.release(ACCOUNT, "a")
    assert storage.leases.take(ACCOUNT, "b", READ_LEASE)
    held = storage.leases.get(ACCOUNT)
    assert held is not None and held.holder == "b"


def test_a_lease_that_ran_out_is_taken_by_another_worker(storage: Storage) -> None:
    # a worker killed while reading: it never gives the lease back, and never renews it
    assert storage.leases.take(ACCOUNT, "killed", timedelta(seconds=-1))
    assert storage.leases.take(ACCOUNT, "b", READ_LEASE)
    assert not storage.leases.renew(ACCOUNT, "killed", READ_LEASE)  # were it alive after all, it stops


def test_a_stream_read_lately_is_left_alone_until_its_poll_interval_is_up(storage: Storage) -> None:
    assert storage.leases.take(ACCOUNT, "a", READ_LEASE)
    assert storage.leases.release(ACCOUNT, "a")
    assert not storage.leases.take(ACCOUNT, "b", READ_LEASE, min_gap=timedelta(hours=1))
    assert storage.leases.take(ACCOUNT, "b", READ_LEASE, min_gap=timedelta(0))


def test_the_cursor_moves_only_from_where_the_reader_found_it(storage: Storage) -> None:
    storage.accounts.ensure(ACCOUNT, "mastodon")
    assert storage.accounts.move_cursor(ACCOUNT, None, "5")
    assert not storage.accounts.move_cursor(ACCOUNT, None, "9")  # a stale reader: it read before "5"
    assert not storage.accounts.mark_cursor(ACCOUNT, None, [["2026-01-01T00:00:00+00:00", "3"]])
    assert storage.accounts.move_cursor(ACCOUNT, "5", "7")
    assert storage.accounts.mark_cursor(ACCOUNT, "7", [["2026-01-01T00:00:00+00:00", "7"]])
    state = storage.accounts.get(ACCOUNT)
    assert state is not None and state.cursor == "7" and state.cursor_marks == [["2026-01-01T00:00:00+00:00", "7"]]


def test_the_live_workers_are_counted_and_leave(storage: Storage) -> None:
    one, two = Worker(), Worker()
    one.sign(storage, within=0)
    two.sign(storage, within=0)
    assert two.live == 2 and two.share(10) == 5
    one.sign(storage, within=0)
    assert one.live == 2
    two.leave(storage)
    one.sign(storage, within=0)
    assert one.live == 1 and one.share(10) == 10


# --- two workers on one database, against mastodon-mock --------------------------------------------------


def config(tmp_path: Path, base_url: str, db_url: str, mode: str = "auto", page_size: int = 40) -> Config:
    path = configs.write_config(
        tmp_path,
        db_url=db_url,
        accounts=configs.mastodon_account(base_url, mode=mode, extra="    backfill: 24h\n    overlap: 1ms\n"),
        sections=(
            f"daemon:\n  page_size: {page_size}\n  max_replies_per_author_hour: 1000\ncases:\n  join_window: 1ms\n"
        ),
    )
    return load_config(path, {"BRAND_TOKEN": "brand_token"})


def post_mentions(base_url: str, count: int) -> list[str]:
    return [
        str(post_as(base_url, CUSTOMERS[n % len(CUSTOMERS)], f"{QUESTIONS[n % 2]} ({n})")["id"]) for n in range(count)
    ]


def replies_on_server(base_url: str) -> Counter[str]:
    """How many replies of the brand each post has, on the server."""
    found: Counter[str] = Counter()
    with client(base_url, BRAND) as api:
        me = api.account_verify_credentials()
        page = api.account_statuses(me["id"], limit=40)
        while page:
            found.update(str(s["in_reply_to_id"]) for s in page if s["in_reply_to_id"])
            page = api.fetch_next(page)
    return found


def workers(tmp_path: Path, start: StartBot, base_url: str, db_url: str, **kwargs: object) -> tuple[App, App]:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = start(config(tmp_path / "a", base_url, db_url, **kwargs), first_cycle=False)  # type: ignore[arg-type]
    second = start(config(tmp_path / "b", base_url, db_url, **kwargs), first_cycle=False)  # type: ignore[arg-type]
    return first, second


def test_an_account_read_by_one_worker_is_only_sent_for_by_the_other(
    tmp_path: Path, mastodon_server: MockServer, running_bot: StartBot, db_url: str
) -> None:
    base_url = mastodon_server.base_url
    posted = post_mentions(base_url, 2)
    one, two = workers(tmp_path, running_bot, base_url, db_url, mode="approve")
    (read,) = run_once(one)
    assert read.new == 2
    for item in one.storage.replies.queue():
        one.storage.replies.approve(item.reply.id, by="tester")
    # `one` is reading the account again, right now
    assert one.storage.leases.take(ACCOUNT, one.worker.identity, READ_LEASE)
    (report,) = run_once(two)
    assert report.read_by_other and report.fetched == 0
    assert report.sent.sent == 2  # sending is shared
    assert {post: n for post, n in replies_on_server(base_url).items()} == {post: 1 for post in posted}


def test_a_dead_workers_lease_is_taken_over(
    tmp_path: Path, mastodon_server: MockServer, running_bot: StartBot, db_url: str
) -> None:
    base_url = mastodon_server.base_url
    post_mentions(base_url, 2)
    one, two = workers(tmp_path, running_bot, base_url, db_url)
    # on this machine: a worker whose process has ended is not waited for
    ended = subprocess.Popen(["true"])
    ended.wait()
    dead = ":".join([*process_identity().split(":")[:-2], str(ended.pid), "1"]) + "#gone"
    assert one.storage.leases.take(ACCOUNT, dead, READ_LEASE)
    (report,) = run_once(one)
    assert not report.read_by_other and report.new == 2
    # on another machine (it cannot be judged from here): its lease runs out
    assert one.storage.leases.take(ACCOUNT, "linux:another-boot:1:2:3#x", timedelta(seconds=-1))
    (later,) = run_once(two)
    assert not later.read_by_other


def test_two_workers_answer_every_mention_once_and_read_each_page_once(
    tmp_path: Path, mastodon_server: MockServer, running_bot: StartBot, db_url: str
) -> None:
    base_url = mastodon_server.base_url
    posted = post_mentions(base_url, 24)
    # a slow platform, so that the two workers' reads would overlap without the lease
    add_fault(base_url, effect={"type": "latency", "delay_ms": 30}, path="/api/v1/notifications", count=None)
    both = workers(tmp_path, running_bot, base_url, db_url, page_size=4)
    for _ in range(2):
        start = threading.Barrier(2)
        failures: list[BaseException] = []

        def cycle(app: App, start: threading.Barrier = start, failures: list[BaseException] = failures) -> None:
            start.wait()
            try:
                run_once(app)
            except BaseException as exc:  # said below, in the test's thread
                failures.append(exc)

        threads = [threading.Thread(target=cycle, args=(app,)) for app in both]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
    assert replies_on_server(base_url) == Counter({post: 1 for post in posted})
    state = both[0].storage.accounts.get(ACCOUNT)
    assert state is not None and state.posts_read == len(posted)  # each mention fetched by one worker, once


@pytest.mark.parametrize("live", [1, 2, 4])
def test_each_worker_reads_its_share_of_the_accounts(live: int) -> None:
    worker = Worker(live=live)
    assert worker.share(10) == -(-10 // live)
