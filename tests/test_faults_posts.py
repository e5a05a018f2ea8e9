"""The whole bot against mastodon-mock, with a fault proxy in between that breaks single posts and answers:
one bad post never stops an account, a lookup's wrong-shaped answer never stops the send loop, a retry never
posts blind, a post that becomes visible late is still read, and a broken or hostile handle goes to a person.

Each test ends with what customers see on the server.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from mastodon_mock.testing import MockServer

from bot.cli import main as carebot
from bot.config import load_config
from bot.models import ReplyState
from bot.run.app import App
from bot.run.daemon import run_once
from tests import configs
from tests.conftest import StartBot
from tests.peers.fault_proxy import FaultProxy, hide_notifications, notifications_with
from tests.peers.mastodon import add_fault, post_as
from tests.test_faults_mastodon import brand_replies, public_reply, settle

pytestmark = pytest.mark.slow  # end-to-end against mastodon-mock through a fault proxy

ACCOUNT = "acme-mastodon"
LOST = 2500  # ms the server holds its answer to a post: longer than carebot's timeout (1 s), so it is lost
QUESTION = "@brand how can I contact your support team? is there an email?"
COMPLAINT = "@brand my order never arrived and nobody answers, please help"
DAEMON = (
    "daemon:\n  max_attempts: 3\n  retry_backoff: 100ms\n  page_size: 5\n  max_replies_per_author_hour: 50\n"
    + configs.SEPARATE_POSTS
)


@pytest.fixture
def proxy(mastodon_server: MockServer) -> Iterator[FaultProxy]:
    with FaultProxy(mastodon_server.base_url) as running:
        yield running


def write_config(tmp_path: Path, proxy: FaultProxy, db_url: str, retry_backoff: str = "100ms") -> Path:
    account = configs.mastodon_account(proxy.base_url, name=ACCOUNT, timeout="1s")
    sections = DAEMON.replace("retry_backoff: 100ms", f"retry_backoff: {retry_backoff}")
    return configs.write_config(tmp_path, db_url=db_url, accounts=account, sections=sections)


def start(config_path: Path, running_bot: StartBot, monkeypatch: pytest.MonkeyPatch) -> App:
    monkeypatch.setenv("BRAND_TOKEN", "brand_token")  # for the CLI, which reads the environment
    started = running_bot(load_config(config_path, {"BRAND_TOKEN": "brand_token"}))
    settle(started, lambda: started_reading(started))  # on a loaded machine the first read may time out
    return started


@pytest.fixture
def config_path(tmp_path: Path, proxy: FaultProxy, db_url: str) -> Path:
    return write_config(tmp_path, proxy, db_url)


@pytest.fixture
def app(config_path: Path, running_bot: StartBot, monkeypatch: pytest.MonkeyPatch) -> App:
    return start(config_path, running_bot, monkeypatch)


@pytest.fixture
def app_retrying_later(
    tmp_path: Path, proxy: FaultProxy, db_url: str, running_bot: StartBot, monkeypatch: pytest.MonkeyPatch
) -> App:
    """As `app`, but a failed post is retried 1.5-3 s later, never within the cycle that lost its answer
    (a loaded machine's cycle can outlast 100 ms): the test sets the lookup's fault up before the retry."""
    return start(write_config(tmp_path, proxy, db_url, retry_backoff="3s"), running_bot, monkeypatch)


def started_reading(app: App) -> bool:
    state = app.storage.accounts.get(ACCOUNT)
    return state is not None and state.cursor is not None


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the server did not get there"
        time.sleep(0.1)


def stored(app: App, post_id: str) -> bool:
    return any(m.mention.post_id == post_id for m in app.storage.mentions.all())


def answered_once(base: str, post_ids: list[str]) -> bool:
    replies = brand_replies(base)
    return all(len(replies.get(p, [])) == 1 for p in post_ids)


# --- a wrong-shaped answer to the reply lookup -------------------------------------------------------


def test_a_wrong_shaped_lookup_answer_is_retried_and_the_cycles_other_replies_go_out(
    app_retrying_later: App, mastodon_server: MockServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Before: `find_reply` raised TypeError ('NoneType' object is not iterable); the reply stayed
    `sending` for its lease and the cycle's other replies were not sent."""
    app = app_retrying_later
    base = mastodon_server.base_url
    lost = str(post_as(base, "alice", COMPLAINT)["id"])
    add_fault(base, effect={"type": "latency", "delay_ms": LOST}, path="/api/v1/statuses", methods=["POST"])
    settle(app, lambda: stored(app, lost) and public_reply(app, lost).attempts == 1)
    assert public_reply(app, lost).state is ReplyState.APPROVED  # its answer never came
    wait_for(lambda: lost in brand_replies(base))  # the server finished its post; carebot does not know
    others = [str(post_as(base, who, QUESTION)["id"]) for who in ("boris", "dewi")]
    time.sleep(3.1)  # the lost reply's retry falls due (retry_backoff 3s: 1.5-3 s after it was lost)
    body = {"ancestors": [], "descendants": None}
    add_fault(base, effect={"type": "status", "status": 200, "body": body}, path="/api/v1/statuses/*/context")

    (report,) = run_once(app)
    assert report.error is None, report.error
    assert answered_once(base, others)  # sent in this very cycle
    assert "find reply: unexpected answer" in caplog.text  # the lookup met the wrong shape, and went on
    # Looked up again once its retry fell due: in this cycle already (its senders may take it twice), or later.
    reports = [report, *settle(app, lambda: public_reply(app, lost).state is ReplyState.SENT, rounds=60)]
    assert sum(r.sent.found_existing for r in reports) == 1
    assert answered_once(base, [lost, *others])


# --- poison posts ------------------------------------------------------------------------------------

MARKER = "poisonmarker"


def _surrogate(notification: dict[str, Any]) -> None:
    notification["status"]["content"] = notification["status"]["content"].replace(MARKER, "bad \ud800 text")


def _date(notification: dict[str, Any]) -> None:
    notification["status"]["created_at"] = "the day before yesterday"


def _no_account(notification: dict[str, Any]) -> None:
    notification["status"]["account"] = None


@pytest.mark.parametrize(
    ("poison", "stage", "reason"),
    [
        (_surrogate, "store", "cannot be stored"),
        (_date, "read", "created_at"),
        (_no_account, "read", "status.account is missing"),
    ],
    ids=["lone-surrogate", "unparseable-date", "account-null"],
)
def test_a_poison_post_is_set_aside_once_and_the_account_reads_on(
    app: App,
    mastodon_server: MockServer,
    proxy: FaultProxy,
    config_path: Path,
    capsys: pytest.CaptureFixture[str],
    poison: Callable[[dict[str, Any]], None],
    stage: str,
    reason: str,
) -> None:
    """Before: the page failed every cycle, the cursor never moved, no later mention was answered."""
    base = mastodon_server.base_url
    proxy.change_json("GET", "/api/v1/notifications", notifications_with(MARKER, poison))
    bad = str(post_as(base, "alice", f"@brand {MARKER} my order 12345 never came, call 415-555-0134")["id"])
    later = [str(post_as(base, who, f"{QUESTION} ({n})")["id"]) for n in range(2) for who in ("boris", "dewi")]
    reports = settle(app, lambda: answered_once(base, later), rounds=15)
    reports += run_once(app) + run_once(app)
    assert all(r.error is None for r in reports), [r.error for r in reports]
    assert bad not in brand_replies(base) and not stored(app, bad)
    (kept,) = app.storage.quarantine.recent(ACCOUNT)
    assert (kept.post_id, kept.stage) == (bad, stage) and reason in kept.reason
    assert "415-555-0134" not in kept.excerpt and "\ud800" not in kept.excerpt
    alerts = [a for a in app.storage.alerts.undelivered() if a.kind == "quarantine"]
    assert len(alerts) == 1 and "415-555-0134" not in alerts[0].text  # told once, however often re-read
    capsys.readouterr()
    assert carebot(["status", "--json", "--config", str(config_path)]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["set_aside"] == 1 and row["set_aside_latest"][0]["post_id"] == bad


# --- a retry never posts blind -----------------------------------------------------------------------


def test_a_person_retrying_a_parked_reply_after_the_key_expired_finds_it_instead_of_posting_twice(
    app: App, mastodon_server: MockServer, proxy: FaultProxy, config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A lost POST, then lookups that fail until the reply is parked; the reply is live on the server.
    Before: `queue retry` reset the attempts, so the lookup was skipped, and once Mastodon had forgotten
    the idempotency key (1 h) a second public reply went out."""
    base = mastodon_server.base_url
    post_id = str(post_as(base, "alice", COMPLAINT)["id"])
    add_fault(base, effect={"type": "latency", "delay_ms": LOST}, path="/api/v1/statuses", methods=["POST"])
    failing = proxy.answer("GET", "/api/v1/statuses/*/context", 502, '{"error": "bad gateway"}')
    settle(app, lambda: public_reply(app, post_id).state is ReplyState.FAILED, pause=0.3)
    parked = public_reply(app, post_id)
    wait_for(lambda: post_id in brand_replies(base))  # it is live
    capsys.readouterr()
    assert carebot(["queue", "list", "--json", "--config", str(config_path)]) == 0
    (item,) = json.loads(capsys.readouterr().out)

    proxy.remove(failing)
    proxy.drop_header("POST", "/api/v1/statuses", "Idempotency-Key")  # Mastodon has forgotten the key
    assert carebot(["queue", "retry", str(parked.id), "--by", "lead", "--config", str(config_path)]) == 0
    reports = settle(app, lambda: public_reply(app, post_id).state is ReplyState.SENT)
    run_once(app)
    (reply,) = brand_replies(base)[post_id]
    assert public_reply(app, post_id).platform_post_id == str(reply["id"])
    assert sum(r.sent.found_existing for r in reports) == 1
    # What the person was shown when it was parked: it may be out already, and a retry looks first.
    assert item["outcome_unknown"] is True
    assert "may be on the platform already" in (parked.last_error or "") and parked.outcome_unknown


# --- the stream's edge -------------------------------------------------------------------------------


def test_a_notification_that_appears_below_the_cursor_after_the_fact_is_still_answered(
    app: App, mastodon_server: MockServer, proxy: FaultProxy
) -> None:
    """Ids are not commit order on a busy server: the first post's notification is served only after the
    second one's. Before: the cursor had moved past it and it was never read."""
    base = mastodon_server.base_url
    first = str(post_as(base, "alice", QUESTION)["id"])
    second = str(post_as(base, "boris", QUESTION)["id"])
    hidden = {first}
    proxy.change_json("GET", "/api/v1/notifications", hide_notifications(hidden))
    settle(app, lambda: answered_once(base, [second]))
    state = app.storage.accounts.get(ACCOUNT)
    assert state is not None and not stored(app, first)
    hidden.clear()  # now it is visible, below the cursor
    settle(app, lambda: answered_once(base, [first, second]))
    run_once(app)
    assert answered_once(base, [first, second])


# --- handles -----------------------------------------------------------------------------------------

HOSTILE = "@victim@evil.example https://evil.example/phish"


def _acct(value: Any) -> Callable[[dict[str, Any]], None]:
    def change(notification: dict[str, Any]) -> None:
        account = notification["status"]["account"]
        for key in ("acct", "username"):
            if value is None:
                account.pop(key, None)
            else:
                account[key] = value

    return change


@pytest.mark.parametrize("acct", [HOSTILE, None], ids=["hostile", "missing"])
def test_a_post_whose_handle_is_broken_or_hostile_goes_to_a_person_and_nothing_echoes_it(
    app: App, mastodon_server: MockServer, proxy: FaultProxy, acct: str | None
) -> None:
    """Before: a missing handle was stored as "None" and answered "@None …"; a hostile `acct` was echoed
    into the public reply."""
    base = mastodon_server.base_url
    proxy.change_json("GET", "/api/v1/notifications", notifications_with("handlemarker", _acct(acct)))
    odd = str(post_as(base, "alice", f"{QUESTION} handlemarker")["id"])
    fine = str(post_as(base, "boris", QUESTION)["id"])
    settle(app, lambda: answered_once(base, [fine]) and stored(app, odd))
    run_once(app)
    assert odd not in brand_replies(base)
    waiting = public_reply(app, odd)
    assert waiting.state is ReplyState.PENDING and "handle" in next(
        m.reason for m in app.storage.mentions.all() if m.mention.post_id == odd
    )
    assert all(m.mention.author.handle != "None" for m in app.storage.mentions.all())
    # A person answers in their own words: the reply goes out without the broken handle.
    app.storage.replies.approve(waiting.id, "lead", text="Thanks for writing: please email help@acme.example")
    settle(app, lambda: odd in brand_replies(base))
    for replies in brand_replies(base).values():
        for reply in replies:
            assert "evil.example" not in reply["content"] and "@None" not in reply["content"]
    (answer,) = brand_replies(base)[odd]
    assert answer["content"].count("help@acme.example") == 1
