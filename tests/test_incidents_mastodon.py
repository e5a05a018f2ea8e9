"""Incidents end to end on mastodon-mock: a burst of similar complaints from many people in two languages
is one incident with one alert; later reporters get the incident's answer; resolving it tells every member
once, on the server, and nobody who opted out."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from mastodon import Mastodon
from mastodon_mock.testing import MockServer

from bot.cli import main as cli
from bot.config import load_config
from bot.models import ReplyPurpose, ReplyState
from bot.run.app import App
from bot.run.daemon import run_once
from tests import configs
from tests.conftest import StartBot
from tests.peers.mastodon import BRAND, client
from tests.terminal import terminal

pytestmark = pytest.mark.slow  # the whole bot against mastodon-mock

ENV = {"BRAND_TOKEN": "brand_token"}
LOGIN = [  # varied wording, two languages, one problem
    ("en", "@brand I can't log in since this morning, the app says wrong password but it's right"),
    ("ru", "@brand не могу войти в аккаунт с утра, пишет неверный пароль"),
    ("en", "@brand login is broken?? keeps throwing me back to the sign in screen"),
    ("ru", "@brand вход в приложение не работает, выкидывает на экран логина"),
    ("en", "@brand locked out of my account, password reset email never comes"),
    ("ru", "@brand не могу зайти в приложение, ошибка входа, почините уже"),
    ("en", "@brand cannot sign in on android or web, is login down for everyone?"),
]


def write_config(tmp_path: Path, base_url: str, mode: str = "auto") -> Path:
    return configs.write_config(
        tmp_path,
        db_url=f"sqlite:///{tmp_path / 'carebot.db'}",
        accounts=configs.mastodon_account(base_url, mode=mode),
        sections="daemon:\n  max_replies_per_author_hour: 50\n"
        "incidents:\n  window: 30m\n  min_reports: 4\n  notify_per_hour: 360000\n",
    )


def customer(base_url: str, name: str) -> Mastodon:
    answer = httpx.post(f"{base_url}/api/v1/_mock/dev_user", json={"username": name}, timeout=10)
    answer.raise_for_status()
    return Mastodon(access_token=answer.json()["access_token"], api_base_url=base_url)


def report(base_url: str, texts: list[str], first: int = 0) -> None:
    """Each text posted by a customer of its own: user{first}, user{first + 1}, ..."""
    for n, text in enumerate(texts, start=first):
        customer(base_url, f"user{n}").status_post(text)


def brand_statuses(base_url: str) -> list[dict[str, Any]]:
    with client(base_url, BRAND) as api:
        me = api.account_verify_credentials()
        found: list[dict[str, Any]] = []
        page = api.account_statuses(me["id"], limit=40)
        while page:
            found.extend(page)
            page = api.fetch_next(page)
    return found


def plain(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html)


@pytest.fixture
def bot(tmp_path: Path, mastodon_server: MockServer, running_bot: StartBot) -> App:
    return running_bot(load_config(write_config(tmp_path, mastodon_server.base_url), ENV))


def test_a_burst_of_reports_is_one_incident_and_everyone_is_told_once_when_it_is_fixed(
    bot: App, mastodon_server: MockServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = mastodon_server.base_url
    people = [customer(base, f"user{n}") for n in range(len(LOGIN))]
    posted: dict[str, str] = {}
    for person, (_lang, text) in zip(people[:3], LOGIN[:3], strict=True):
        posted[str(person.status_post(text)["id"])] = person.account_verify_credentials()["acct"]
    run_once(bot)
    assert bot.storage.incidents.listed() == []  # three people: not yet an incident

    for person, (_lang, text) in zip(people[3:5], LOGIN[3:5], strict=True):
        posted[str(person.status_post(text)["id"])] = person.account_verify_credentials()["acct"]
    run_once(bot)
    (incident,) = bot.storage.incidents.listed()
    assert incident.topic == "login" and incident.state == "open"
    members = bot.storage.incidents.members(incident.id)
    assert len(members) == 5 and {c.lang for c in members} == {"en", "ru"}
    assert len([a for a in bot.storage.alerts.undelivered(["incident"]) if ":opened" in a.key]) == 1

    # Later reporters get the incident's one answer, in their language, no request for details.
    late = {}
    for person, (lang, text) in zip(people[5:], LOGIN[5:], strict=True):
        late[str(person.status_post(text)["id"])] = lang
    run_once(bot)
    by_target = {str(s["in_reply_to_id"]): plain(s["content"]) for s in brand_statuses(base)}
    for post_id, lang in late.items():
        words = {"en": "the problem with logging in", "ru": "с входом в аккаунт"}[lang]
        assert words in by_target[post_id], by_target[post_id]
    assert len(bot.storage.incidents.members(incident.id)) == 7
    assert len([a for a in bot.storage.alerts.undelivered(["incident"]) if ":opened" in a.key]) == 1

    # One member opts out before the fix; resolving from the CLI tells the six others, once each.
    people[0].status_post("@brand stop")
    run_once(bot)
    config = write_config(tmp_path, base)
    monkeypatch.setenv("BRAND_TOKEN", "brand_token")
    before = {s["id"] for s in brand_statuses(base)}
    assert cli(["incidents", "resolve", str(incident.id), "--note", "auth fixed", "--config", str(config)]) == 0
    for _ in range(4):
        run_once(bot)
    fixed = [s for s in brand_statuses(base) if s["id"] not in before]
    assert len(fixed) == 6
    for status in fixed:  # the "fixed" message, in the member's language
        assert re.search(r"fixed|back to normal|устранена|исправили|снова", plain(status["content"]), re.IGNORECASE)
    told = sorted(re.findall(r"@(user\d+)", " ".join(plain(s["content"]) for s in fixed)))
    assert told == sorted(f"user{n}" for n in range(1, len(LOGIN)))  # user0 said stop
    notices = [
        r
        for case in bot.storage.incidents.members(incident.id)
        for r in bot.storage.cases.replies(case.id)
        if r.purpose == ReplyPurpose.INCIDENT.value
    ]
    assert len(notices) == 6 and all(r.state is ReplyState.SENT for r in notices)
    assert cli(["incidents", "resolve", str(incident.id), "--config", str(config)]) == 1  # once only


def test_the_team_runs_an_incident_from_the_command_line(
    bot: App,
    mastodon_server: MockServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """What a person on the team does with an incident from a terminal: list it, name the problem in their
    own words, give the expected fix, take out a case that is not part of it, read it back; the next
    reporter's answer says what they set."""
    base = mastodon_server.base_url
    report(base, [text for _lang, text in LOGIN[:5]])
    run_once(bot)
    (incident,) = bot.storage.incidents.listed()
    config = write_config(tmp_path, base)
    monkeypatch.setenv("BRAND_TOKEN", "brand_token")
    carebot = terminal(config, capsys)

    number = str(incident.id)
    assert f"incident #{incident.id} open · login · " in carebot("incidents", "list")
    assert "5 people (3 en, 2 ru)" in carebot("incidents", "list")
    carebot("incidents", "word", number, "--lang", "en", "--text", "  signing   in ")
    carebot("incidents", "eta", number, "--text", "18:00 UTC")
    locked_out = next(c for c in bot.storage.incidents.members(incident.id) if c.author_handle.startswith("user4"))
    assert "is no longer part of" in carebot("incidents", "split", number, str(locked_out.id), "--by", "ana")

    shown = json.loads(carebot("incidents", "show", number, "--json"))
    assert shown["people"] == 4 and locked_out.id not in [m["case"] for m in shown["members"]]
    assert shown["wording"]["en"] == "signing in" and shown["eta"] == "18:00 UTC"
    assert {"kind": "split", "by": "ana"}.items() <= next(e for e in shown["timeline"] if e["kind"] == "split").items()
    text = carebot("incidents", "show", number)
    assert "expected fix: 18:00 UTC" in text and "en: signing in" in text

    late = str(customer(base, "user5").status_post(LOGIN[6][1])["id"])
    run_once(bot)
    (answer,) = [plain(s["content"]) for s in brand_statuses(base) if str(s["in_reply_to_id"]) == late]
    assert "the problem with signing in" in answer and "(we expect it fixed by 18:00 UTC)" in answer

    capsys.readouterr()
    assert cli(["incidents", "word", number, "--lang", "en", "--text", "   ", "--config", str(config)]) != 0
    assert "empty" in capsys.readouterr().err
    # Words too long for the answer to fit a post were taken, then dropped at the next report for the
    # generic answer, with nothing said: now they are refused, and the old ones stay.
    for command in (["word", number, "--lang", "en", "--text", "x" * 81], ["eta", number, "--text", "y" * 61]):
        assert cli(["incidents", *command, "--config", str(config)]) != 0
        assert "characters; at most" in capsys.readouterr().err
    unchanged = bot.storage.incidents.get(incident.id)
    assert unchanged.wording["en"] == "signing in" and unchanged.eta == "18:00 UTC"


APP_DOWN = [  # the app crashing: a second incident, which the team finds is the login outage again
    "@brand the app keeps crashing on start since this morning",
    "@brand app won't open at all, blank screen then it closes",
    "@brand your app crashes every time I open it",
    "@brand app not loading, frozen on the splash screen",
]


def test_two_incidents_merged_into_one_and_a_false_alarm_from_the_command_line(
    bot: App,
    mastodon_server: MockServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = mastodon_server.base_url
    report(base, [text for _lang, text in LOGIN[:4]] + APP_DOWN)
    run_once(bot)
    login, app = sorted(bot.storage.incidents.listed(), key=lambda i: i.topic != "login")
    assert (login.topic, app.topic) == ("login", "app")
    config = write_config(tmp_path, base)
    monkeypatch.setenv("BRAND_TOKEN", "brand_token")

    def carebot(*args: str) -> int:
        return cli([*args, "--config", str(config)])

    assert carebot("incidents", "merge", str(app.id), str(login.id), "--by", "ana") == 0
    assert len(bot.storage.incidents.members(login.id)) == 8
    assert bot.storage.incidents.get(app.id).state == "merged"
    assert carebot("incidents", "merge", str(app.id), str(login.id)) != 0  # merged already: refused, nothing changes
    assert len(bot.storage.incidents.members(login.id)) == 8

    before = len(brand_statuses(base))
    capsys.readouterr()
    assert carebot("incidents", "false-alarm", str(login.id), "--note", "two unrelated bugs", "--by", "ana") == 0
    assert "nobody is told" in capsys.readouterr().out
    for _ in range(2):
        run_once(bot)
    assert len(brand_statuses(base)) == before  # nobody told it is fixed
    assert bot.storage.incidents.get(login.id).state != "open"
    assert carebot("incidents", "resolve", str(login.id)) != 0  # closed: there is nothing to resolve
    # Nobody joins it any more and nobody is told: words or a fix time "taken" now would go nowhere.
    capsys.readouterr()
    for command in (["eta", str(login.id), "--text", "18:00"], ["word", str(login.id), "--lang", "en", "--text", "x"]):
        assert carebot("incidents", *command) == 1
        assert "change only while it is open" in capsys.readouterr().err
    assert bot.storage.incidents.get(login.id).eta is None


def test_fixed_notifications_that_wait_for_a_person_go_out_after_one_approval_from_the_command_line(
    mastodon_server: MockServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    running_bot: StartBot,
) -> None:
    """An account in `approve` mode: resolving an incident queues its "fixed" messages for a person, and one
    `carebot incidents approve` lets them all go, each member told once."""
    base = mastodon_server.base_url
    config = write_config(tmp_path, base, mode="approve")
    bot = running_bot(load_config(config, ENV))
    report(base, [text for _lang, text in LOGIN[:4]])
    run_once(bot)
    (incident,) = bot.storage.incidents.listed()
    monkeypatch.setenv("BRAND_TOKEN", "brand_token")
    carebot = terminal(config, capsys)
    number = str(incident.id)
    for wrong, said in ((number, f"incident {number} is open: it has fixed-notifications"), ("999", "no incident 999")):
        capsys.readouterr()
        assert cli(["incidents", "approve", wrong, "--config", str(config)]) == 1  # a message, not a traceback
        assert said in capsys.readouterr().err

    assert "4 people to tell; 4 wait for approval" in carebot("incidents", "resolve", number, "--by", "ana")
    before = {s["id"] for s in brand_statuses(base)}
    run_once(bot)
    assert {s["id"] for s in brand_statuses(base)} == before  # nothing goes out before a person says so
    assert "told it is fixed: 0 of 4 (4 waiting for approval" in carebot("incidents", "show", number)

    assert "4 fixed-notifications approved" in carebot("incidents", "approve", number, "--by", "ana")
    for _ in range(3):
        run_once(bot)
    fixed = [plain(s["content"]) for s in brand_statuses(base) if s["id"] not in before]
    told = sorted(re.findall(r"@(user\d)", " ".join(fixed)))
    assert told == ["user0", "user1", "user2", "user3"]  # each once
    assert "told it is fixed: 4 of 4 (0 waiting for approval" in carebot("incidents", "show", number)
    assert "0 fixed-notifications approved" in carebot("incidents", "approve", number)  # nothing left to approve
