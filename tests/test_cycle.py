"""Where a new account starts reading: from now (and it says so), or from its `backfill`, once; and how often
a cycle runs the cases' timers and re-reads before its cursor."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from mastodon_mock.testing import MockServer

from bot.clock import now, use_clock
from bot.config import Config, load_config
from bot.run import cycle, outbox
from bot.run.app import App
from bot.run.cycle import SWEEP_EVERY, run_cycle
from bot.run.daemon import run_once
from bot.run.liveness import process_identity
from tests import configs
from tests.conftest import StartBot
from tests.peers.mastodon import post_as

QUESTIONS = ("@brand how do I reach support by email?", "@brand does the app have a dark mode?")


def config(tmp_path: Path, base_url: str, backfill: str | None, extra: str = "") -> Config:
    extra += f"    backfill: {backfill}\n" if backfill else ""
    path = configs.write_config(
        tmp_path,
        db_url=f"sqlite:///{tmp_path / 'cycle.db'}",
        accounts=configs.mastodon_account(base_url, mode="approve", extra=extra),
    )
    return load_config(path, {"BRAND_TOKEN": "brand_token"})


@pytest.fixture
def earlier(mastodon_server: MockServer) -> list[str]:
    """Two mentions posted before carebot ever ran."""
    return [
        str(post_as(mastodon_server.base_url, who, text)["id"])
        for who, text in zip(("alice", "boris"), QUESTIONS, strict=True)
    ]


def test_a_new_account_starts_from_now_and_says_so(
    tmp_path: Path, mastodon_server: MockServer, running_bot: StartBot, earlier: list[str]
) -> None:
    app = running_bot(config(tmp_path, mastodon_server.base_url, None), first_cycle=False)
    (first,) = run_once(app)
    assert first.first_run and first.new == 0 and first.backfill_since is None
    (second,) = run_once(app)
    assert not second.first_run
    assert app.storage.mentions.count("acme-mastodon") == 0


def test_backfill_answers_the_recent_mentions_once(
    tmp_path: Path, mastodon_server: MockServer, running_bot: StartBot, earlier: list[str]
) -> None:
    app = running_bot(config(tmp_path, mastodon_server.base_url, "24h"), first_cycle=False)
    (first,) = run_once(app)
    assert first.first_run and first.backfill_since is not None and first.new == 2
    assert {m.mention.post_id for m in app.storage.mentions.all()} == set(earlier)
    (again,) = run_once(app)
    assert again.new == 0 and again.backfill_since is None  # done once, kept in answer_since
    state = app.storage.accounts.get("acme-mastodon")
    assert state is not None and state.answer_since is not None


def test_backfill_added_after_the_first_run_still_reads_them(
    tmp_path: Path, mastodon_server: MockServer, running_bot: StartBot, earlier: list[str]
) -> None:
    plain = running_bot(config(tmp_path, mastodon_server.base_url, None), first_cycle=False)
    (first,) = run_once(plain)
    assert first.new == 0
    plain.close()
    app = running_bot(config(tmp_path, mastodon_server.base_url, "24h"), first_cycle=False)
    (later,) = run_once(app)
    assert later.new == 2 and not later.first_run
    (again,) = run_once(app)
    assert again.new == 0


def test_mentions_older_than_the_backfill_are_skipped(
    tmp_path: Path, mastodon_server: MockServer, running_bot: StartBot, earlier: list[str]
) -> None:
    app = running_bot(config(tmp_path, mastodon_server.base_url, "24h"), first_cycle=False)
    app.storage.accounts.ensure("acme-mastodon", "mastodon")
    app.storage.accounts.update("acme-mastodon", cursor="0", answer_since=now() + timedelta(hours=1))
    (report,) = run_once(app)
    assert report.too_old == 2 and report.new == 0
    assert app.storage.mentions.count("acme-mastodon") == 0


def run_at(
    app: App, start: datetime, steps: list[tuple[float, str]], observe: Callable[[], int] = lambda: 0
) -> list[int]:
    """Each step at `start` + its seconds on the bot's clock: one cycle of the account as the daemon runs it
    ("cycle"), or `run --once`; what `observe` grew by over each."""
    at = start
    grew: list[int] = []
    with use_clock(lambda: at):
        for seconds, run in steps:
            at = start + timedelta(seconds=seconds)
            before = observe()
            if run == "cycle":
                run_cycle(app, app.config.accounts[0])
            else:
                run_once(app)
            grew.append(observe() - before)
    return grew


def test_the_daemons_cycles_run_the_cases_timers_at_most_every_sweep_every_and_run_once_always(
    tmp_path: Path, mastodon_server: MockServer, running_bot: StartBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = running_bot(config(tmp_path, mastodon_server.base_url, None))  # its first run swept just now
    swept: list[datetime] = []
    real_sweep = cycle.sweep

    def counted(*args: Any) -> Any:
        swept.append(args[-1])
        return real_sweep(*args)

    monkeypatch.setattr(cycle, "sweep", counted)
    start, every = now(), SWEEP_EVERY.total_seconds()
    run_at(app, start, [(1, "cycle"), (every + 1, "cycle"), (every + 6, "cycle"), (every + 7, "run --once")])
    assert swept == [start + timedelta(seconds=every + 1), start + timedelta(seconds=every + 7)]


def test_a_process_re_reads_before_the_cursor_at_most_once_a_tenth_of_the_overlap_and_run_once_always(
    tmp_path: Path, mastodon_server: MockServer, running_bot: StartBot
) -> None:
    app = running_bot(config(tmp_path, mastodon_server.base_url, None, extra="    overlap: 100s\n"))
    account = app.config.accounts[0]
    for who, text in zip(("alice", "boris", "dewi"), (*QUESTIONS, QUESTIONS[0]), strict=True):
        post_as(mastodon_server.base_url, who, text)

    def mentions_read() -> int:
        state = app.storage.accounts.get(account.name)
        assert state is not None
        return state.posts_read

    # 10 s: a tenth of the overlap. The first run re-read just now, so the next two start at the cursor.
    read = run_at(app, now(), [(1, "cycle"), (2, "cycle"), (11, "cycle"), (11.5, "run --once")], mentions_read)
    assert read == [3, 0, 3, 3]  # new; nothing; the overlap's three again; again (a one-off run re-reads)
    assert app.storage.mentions.count(account.name) == 3


def test_a_reply_two_senders_of_this_process_went_for_stays_in_flight_until_both_are_done(
    tmp_path: Path, mastodon_server: MockServer, running_bot: StartBot
) -> None:
    """A stream's sender and a poll's may go for the same reply in one process: one wins the claim and
    posts, the other gives up at once. Before, the one that gave up unmarked the reply as in flight, so the
    next round took the winner's claim for one left over from a lost database (`_take_over_dead_claims`),
    ended it and sent the reply again while the winner was still posting it."""
    app = running_bot(config(tmp_path, mastodon_server.base_url, None))
    post_as(mastodon_server.base_url, "alice", QUESTIONS[0])
    run_once(app)  # stored, its reply waits for a person (approve mode)
    account = app.config.accounts[0]
    (waiting,) = app.storage.replies.queue()
    app.storage.replies.approve(waiting.reply.id, "ana")
    (due,) = app.storage.replies.due(account.name)
    with outbox._in_flight(due.id):  # the winner
        assert app.storage.replies.claim(due, outbox.CLAIM_LEASE, process_identity())
        with outbox._in_flight(due.id):  # the other sender: it lost the claim, and is done
            pass
        outbox._take_over_dead_claims(app, account)  # the next round, while the winner still posts
        assert app.storage.replies.due(account.name) == []  # still the winner's
