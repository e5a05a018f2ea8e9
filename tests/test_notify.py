"""Webhook notifications: what the team is told, once, with retries, and without personal data or secrets."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import respx

from bot.clock import now
from bot.config import Config, ConfigError, NotifyConfig, load_config
from bot.models import Action, Decision, ReplyState
from bot.run.alerts import raise_alert, raise_mention_alerts
from bot.run.notify import Webhook, deliver_alerts, notify_due
from bot.storage import Storage
from bot.storage.records import Classified
from connectors.base import Author, Mention
from tests import configs

HOOK = "https://hooks.example.com/services/T000/B000/not-a-real-token"  # respx answers; nothing leaves


def config_for(tmp_path: Path, extra: str = "") -> Config:
    notify = f"""notify:
  webhook_url: ${{HOOK_URL}}
  wait_threshold: 15m
  desk_url: https://desk.acme.example/
{extra}"""
    account = configs.mastodon_account("http://127.0.0.1:9", mode=None, token="t0ken", poll_interval=None, timeout=None)
    path = configs.write_config(
        tmp_path,
        db_url="sqlite:///unused.db",
        accounts=account,
        sections=notify,
        brand=configs.EMAIL_ONLY_BRAND_YAML,
    )
    return load_config(path, {"HOOK_URL": HOOK})


_numbers = iter(range(1, 10**6))


def store(
    storage: Storage, text: str, situation: str, urgent: bool, state: ReplyState | None = ReplyState.PENDING
) -> int:
    number = next(_numbers)
    mention = Mention(
        platform="mastodon",
        post_id=f"n{number}",
        cursor=str(number),
        author=Author(f"u{number}", "alice.customer", "Alice"),
        text=text,
        created_at=now(),
    )
    classified = Classified("en", situation, 0.9, {situation: 0.9}, [], False, False)
    decision = Decision(
        situation, Action.REPLY, "test", reply_text="@alice.customer We're on it.", urgent=urgent, priority=10
    )
    mention_id = storage.mentions.record("acme-mastodon", mention, classified, decision, state)
    assert mention_id is not None
    return mention_id


def no_sleep(_seconds: float) -> None:
    return None


@pytest.fixture
def hook() -> respx.MockRouter:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        yield router


def texts(route: respx.Route) -> list[str]:
    return [json.loads(call.request.content)["text"] for call in route.calls]


def test_an_urgent_complaint_is_told_once_without_personal_data(
    tmp_path: Path, storage: Storage, hook: respx.MockRouter
) -> None:
    route = hook.post(HOOK).respond(200, text="ok")
    config = config_for(tmp_path)
    store(storage, "@brand charged twice! mail me at alice.w@example.org or +1 415 555 0134", "complaint", True)
    store(storage, "@brand what is your email?", "contact_request", False)

    report = notify_due(storage, config)
    assert (report.urgent, report.waiting, report.error) == (1, 0, None)
    (text,) = texts(route)
    assert "1 urgent complaint just arrived" in text
    assert "acme-mastodon (mastodon, en, complaint)" in text
    assert "charged twice" in text
    # It arrived a moment ago; the bot may have answered it already: not "waiting".
    assert re.search(r"complaint\), \d+s ago: ", text) and "waiting" not in text
    for private in ("alice.w@example.org", "415 555 0134", "alice.customer"):
        assert private not in text
    assert "<https://desk.acme.example/|Open the approval desk>" in text
    assert route.calls[0].request.headers["content-type"] == "application/json"

    assert notify_due(storage, config).urgent == 0
    assert route.call_count == 1


def test_a_reply_waiting_too_long_is_told_once(tmp_path: Path, storage: Storage, hook: respx.MockRouter) -> None:
    route = hook.post(HOOK).respond(200)
    config = config_for(tmp_path, extra="  urgent: false\n")
    store(storage, "@brand how do I change my plan?", "simple_question", False)
    answered = store(storage, "@brand where is the help page?", "contact_request", False, ReplyState.APPROVED)
    assert answered

    assert notify_due(storage, config, at=now() + timedelta(minutes=10)).waiting == 0
    assert route.call_count == 0
    report = notify_due(storage, config, at=now() + timedelta(minutes=16))
    assert report.waiting == 1
    assert "1 post waiting for approval longer than 15m" in texts(route)[0]
    assert "waiting 16m" in texts(route)[0]
    assert notify_due(storage, config, at=now() + timedelta(hours=2)).waiting == 0
    assert route.call_count == 1


def test_server_errors_and_timeouts_are_retried_with_backoff(
    tmp_path: Path, storage: Storage, hook: respx.MockRouter
) -> None:
    route = hook.post(HOOK)
    route.side_effect = [httpx.Response(503), httpx.ConnectTimeout("slow"), httpx.Response(200)]
    slept: list[float] = []
    store(storage, "@brand the app crashes on start, I paid for nothing", "complaint", True)
    report = notify_due(storage, config_for(tmp_path), Webhook(HOOK, max_attempts=4, sleep=slept.append))
    assert report.urgent == 1 and report.error is None
    assert route.call_count == 3
    assert slept == [1.0, 2.0]


def test_a_429_waits_as_told(tmp_path: Path, storage: Storage, hook: respx.MockRouter) -> None:
    route = hook.post(HOOK)
    route.side_effect = [httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(200)]
    slept: list[float] = []
    store(storage, "@brand my card was charged but the order is gone", "complaint", True)
    assert notify_due(storage, config_for(tmp_path), Webhook(HOOK, sleep=slept.append)).urgent == 1
    assert slept == [7.0]


def test_after_giving_up_the_next_check_tries_again(tmp_path: Path, storage: Storage, hook: respx.MockRouter) -> None:
    route = hook.post(HOOK)
    route.side_effect = [httpx.Response(502)] * 3 + [httpx.Response(200)]
    config = config_for(tmp_path)
    store(storage, "@brand nothing works since yesterday!!", "complaint", True)
    failed = notify_due(storage, config, Webhook(HOOK, max_attempts=3, sleep=no_sleep))
    assert failed.urgent == 0 and failed.error is not None
    assert HOOK not in failed.error and "not-a-real-token" not in failed.error
    assert "HTTP 502" in failed.error
    soon = notify_due(storage, config, Webhook(HOOK, max_attempts=3, sleep=no_sleep))
    assert soon.urgent == 0 and route.call_count == 3  # backing off: not hammering a failing webhook
    later = now() + timedelta(minutes=1)
    again = notify_due(storage, config, Webhook(HOOK, max_attempts=3, sleep=no_sleep), at=later)
    assert again.urgent == 1 and route.call_count == 4


def test_a_refused_message_is_not_retried(tmp_path: Path, storage: Storage, hook: respx.MockRouter) -> None:
    route = hook.post(HOOK).respond(404, text="no_service")
    store(storage, "@brand refund me now, the product broke", "complaint", True)
    report = notify_due(storage, config_for(tmp_path), Webhook(HOOK, sleep=no_sleep))
    assert route.call_count == 1
    assert report.error == "the webhook refused the message: HTTP 404"


def test_customer_text_cannot_ping_the_channel_or_make_links(
    tmp_path: Path, storage: Storage, hook: respx.MockRouter
) -> None:
    route = hook.post(HOOK).respond(200)
    store(storage, "@brand <!channel> broken again <https://evil.example|click> & more", "complaint", True)
    notify_due(storage, config_for(tmp_path))
    (text,) = texts(route)
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text
    assert "<https://evil.example" not in text and "&amp; more" in text


def test_old_urgent_posts_and_no_webhook_mean_no_message(
    tmp_path: Path, storage: Storage, hook: respx.MockRouter
) -> None:
    route = hook.post(HOOK).respond(200)
    store(storage, "@brand my order is lost", "complaint", True, state=None)
    assert notify_due(storage, config_for(tmp_path), at=now() + timedelta(hours=2)).urgent == 0
    silent = dataclasses.replace(config_for(tmp_path), notify=NotifyConfig())
    assert notify_due(storage, silent).urgent == 0
    assert route.call_count == 0


def test_many_items_are_listed_up_to_ten(tmp_path: Path, storage: Storage, hook: respx.MockRouter) -> None:
    route = hook.post(HOOK).respond(200)
    for n in range(12):
        store(storage, f"@brand order {n} never came", "complaint", True)
    assert notify_due(storage, config_for(tmp_path)).urgent == 12
    text = texts(route)[0]
    assert "12 urgent complaints" in text and "• and 2 more" in text
    assert text.count("• acme-mastodon") == 10


def test_notify_config_keeps_the_url_out_of_reprs_and_errors(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    assert config.notify.webhook_url == HOOK and config.notify.wait_threshold == 900
    assert HOOK not in repr(config) and "not-a-real-token" not in repr(Webhook(HOOK))
    path = tmp_path / "carebot.yaml"
    path.write_text(path.read_text().replace("${HOOK_URL}", "ftp://hooks.example/secret-part"), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    (problem,) = caught.value.problems
    assert "notify.webhook_url: expected an http:// or https:// URL" in problem
    assert "secret-part" not in problem


def test_an_answer_that_never_comes_is_not_sent_again(tmp_path: Path, storage: Storage, hook: respx.MockRouter) -> None:
    """A slow webhook that takes the message but answers too late gets it once, not once per retry."""
    route = hook.post(HOOK)
    route.side_effect = [httpx.ReadTimeout("no answer"), httpx.Response(200)]
    config = config_for(tmp_path)
    store(storage, "@brand you charged me twice and nobody answers", "complaint", True, state=None)
    report = notify_due(storage, config, Webhook(HOOK, sleep=no_sleep))
    assert report.urgent == 1 and report.error is None
    assert notify_due(storage, config, Webhook(HOOK, sleep=no_sleep), at=now() + timedelta(hours=1)).urgent == 0
    assert route.call_count == 1


def test_the_cycle_only_records_alerts_and_one_delivery_tells_them_once(
    tmp_path: Path, storage: Storage, hook: respx.MockRouter
) -> None:
    route = hook.post(HOOK).respond(200)
    config = config_for(tmp_path)
    store(storage, "@brand my order never came", "complaint", True)
    assert raise_mention_alerts(storage, config) == 1
    assert raise_mention_alerts(storage, config) == 0  # raised once per mention and reason
    assert route.call_count == 0  # raising never calls the webhook
    assert raise_alert(storage, key="cap:acme-x:2026-12", kind="cap", account="acme-x", text="acme-x: monthly cap")
    assert not raise_alert(storage, key="cap:acme-x:2026-12", kind="cap", account="acme-x", text="again")
    first = deliver_alerts(storage, config)
    second = deliver_alerts(storage, config)
    assert (first.urgent, first.other, second.urgent, second.other) == (1, 1, 0, 0)
    (text,) = texts(route)
    assert "1 urgent complaint just arrived" in text and ":warning: carebot: acme-x: monthly cap" in text


def test_a_dead_webhook_costs_one_bounded_delivery_not_the_cycle(
    tmp_path: Path, storage: Storage, hook: respx.MockRouter
) -> None:
    route = hook.post(HOOK)
    route.side_effect = httpx.ConnectError("refused")
    slept: list[float] = []

    def clock() -> float:
        return sum(slept)  # time passes only while the webhook waits between tries

    store(storage, "@brand the app is down again", "complaint", True)
    hook_with_budget = Webhook(HOOK, max_attempts=10, backoff=4.0, budget=10.0, sleep=slept.append, clock=clock)
    report = notify_due(storage, config_for(tmp_path), hook_with_budget)
    assert report.error is not None and "ConnectError" in report.error
    assert sum(slept) < 10.0  # the budget bounds the waits between tries
    assert storage.alerts.undelivered()[0].last_error == report.error


def test_alerts_of_two_workers_are_delivered_once(tmp_path: Path, storage: Storage, hook: respx.MockRouter) -> None:
    route = hook.post(HOOK).respond(200)
    config = config_for(tmp_path)
    for n in range(3):
        store(storage, f"@brand order {n} is lost", "complaint", True)
    raise_mention_alerts(storage, config)
    at = now()
    mine = storage.alerts.claim(at=at, lease=timedelta(minutes=2))
    theirs = storage.alerts.claim(at=at, lease=timedelta(minutes=2))
    assert len(mine) == 3 and theirs == []
    assert deliver_alerts(storage, config, at=at).urgent == 0  # claimed, not stale yet
    assert deliver_alerts(storage, config, at=at + timedelta(minutes=3)).urgent == 3  # the claimant died
    assert route.call_count == 1
