"""Cases end to end on mastodon-mock: one customer's problem, followed from first post to check-back.

The conversation of issue 11, played on the server: a complaint, a follow-up in the thread saying nobody
answered, the details in the private thread, "it's working now", a person's private reply, resolution and
the one check-back. What the tests check is what appears on the server.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from mastodon_mock.testing import MockServer

from bot.cli import main as cli
from bot.config import load_config
from bot.models import CaseState, ReplyKind, ReplyPurpose, ReplyState
from bot.run.app import App
from bot.run.daemon import run_once
from tests import configs
from tests.conftest import StartBot
from tests.peers.mastodon import BRAND, client, post_as
from tests.terminal import terminal

pytestmark = pytest.mark.slow  # the whole bot against mastodon-mock

ENV = {"BRAND_TOKEN": "brand_token"}
COMPLAINT = "@brand my order #5521 never arrived and I was charged twice. Fix this!"
ALREADY = "@brand I already emailed you twice yesterday, nobody answers. Still no refund."
DETAILS = "@brand order 5521, my email is alice.w@example.org, charged 2x 49.99 on 3 Dec"
WORKING = "@brand ok thanks, it's working now"


def write_config(tmp_path: Path, base_url: str, extra: str = "") -> Path:
    return configs.write_config(
        tmp_path,
        db_url=f"sqlite:///{tmp_path / 'carebot.db'}",
        accounts=configs.mastodon_account(base_url),
        sections=f"cases:\n  check_back_after: 1ms\n{extra}",
    )


def statuses_of_brand(base_url: str) -> list[dict[str, Any]]:
    with client(base_url, BRAND) as api:
        me = api.account_verify_credentials()
        found: list[dict[str, Any]] = []
        page = api.account_statuses(me["id"], limit=40)
        while page:
            found.extend(page)
            page = api.fetch_next(page)
    return sorted(found, key=lambda s: int(s["id"]))


def plain(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html)


def case_of(app: App, post_id: str) -> Any:
    (stored,) = [m for m in app.storage.mentions.all() if m.mention.post_id == post_id]
    assert stored.case_id is not None
    return app.storage.cases.get(stored.case_id)


@pytest.fixture
def bot(tmp_path: Path, mastodon_server: MockServer, running_bot: StartBot) -> App:
    return running_bot(load_config(write_config(tmp_path, mastodon_server.base_url), ENV))


def test_a_customer_who_writes_privately_first_gets_one_private_acknowledgement(
    bot: App, mastodon_server: MockServer
) -> None:
    """A first private message got "please DM us or email ...", then a second private message "Hi again":
    both went out on their own, and the first was listed as a public reply."""
    base = mastodon_server.base_url
    damaged = "@brand my parcel 7781 was damaged on arrival, what should I do?"
    first = str(post_as(base, "dewi", damaged, visibility="direct")["id"])
    run_once(bot)
    run_once(bot)
    (answer,) = statuses_of_brand(base)
    assert answer["visibility"] == "direct" and str(answer["in_reply_to_id"]) == first
    words = plain(answer["content"])
    assert "DM" not in words and "email" not in words and "Hi again" not in words
    case = case_of(bot, first)
    assert case.situation == "complaint" and case.state == CaseState.OPEN.value  # a person takes it
    (reply,) = bot.storage.cases.replies(case.id)
    assert reply.kind is ReplyKind.DIRECT and reply.state is ReplyState.SENT


def test_a_conversation_is_one_case_from_complaint_to_check_back(
    bot: App,
    mastodon_server: MockServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = mastodon_server.base_url
    # 1. The complaint: an apology in public that moves to DM, and the DM asking for the details.
    first = str(post_as(base, "alice", COMPLAINT)["id"])
    run_once(bot)
    after_hand_off = statuses_of_brand(base)
    public = [s for s in after_hand_off if s["visibility"] != "direct"]
    private = [s for s in after_hand_off if s["visibility"] == "direct"]
    assert len(public) == 1 and len(private) == 1
    assert str(public[0]["in_reply_to_id"]) == first
    case = case_of(bot, first)
    assert case.state == CaseState.OPEN.value and case.situation == "complaint"

    # 2. In the thread: "already emailed twice, nobody answers". No second hand-off: one short holding
    #    reply, the case escalated and waiting on us, the team told that it is an escalation.
    second = str(post_as(base, "alice", ALREADY, in_reply_to_id=public[0]["id"])["id"])
    run_once(bot)
    new = statuses_of_brand(base)[len(after_hand_off) :]
    assert len(new) == 1 and new[0]["visibility"] != "direct"
    assert str(new[0]["in_reply_to_id"]) == second
    hand_off_words = plain(public[0]["content"]).split("@alice", 1)[-1].strip()[:40]
    assert hand_off_words not in plain(new[0]["content"])
    case = case_of(bot, second)
    assert case.id == case_of(bot, first).id
    assert case.escalated and case.urgent and case.state == CaseState.WAITING_ON_US.value
    escalations = bot.storage.alerts.undelivered(["escalation"])
    assert len(escalations) == 1 and f"case #{case.id}" in escalations[0].text
    assert "escalated" in escalations[0].text

    # 3. The details, in the private thread the bot opened: no "don't post it publicly", no second
    #    request for details (the holding reply of this case went out minutes ago).
    before = len(statuses_of_brand(base))
    third = str(post_as(base, "alice", DETAILS, in_reply_to_id=private[0]["id"], visibility="direct")["id"])
    run_once(bot)
    assert len(statuses_of_brand(base)) == before
    assert case_of(bot, third).id == case.id
    for status in statuses_of_brand(base):
        assert "publicly" not in plain(status["content"]).lower()
    (stored,) = [m for m in bot.storage.cases.posts(case.id) if m.mention.post_id == third]
    assert stored.mention.visibility == "direct" and stored.personal_data  # the team sees it was there

    # 4. "ok thanks, it's working now": no canned thank-you; resolving is proposed to the team.
    fourth = str(post_as(base, "alice", WORKING, in_reply_to_id=new[0]["id"])["id"])
    run_once(bot)
    assert len(statuses_of_brand(base)) == before
    case = case_of(bot, fourth)
    assert case.resolve_proposed and case.id == case_of(bot, first).id

    # 5. A person answers privately from the command line: exactly one DM goes out, in the private thread.
    config = write_config(tmp_path, base)
    monkeypatch.setenv("BRAND_TOKEN", "brand_token")
    words = "Refund of the double charge is on its way, you'll see it in 3-5 days. Sorry for the wait!"
    assert (
        cli(["cases", "reply", str(case.id), "--private", "--text", words, "--by", "sam", "--config", str(config)]) == 0
    )
    capsys.readouterr()
    assert cli(["cases", "show", str(case.id), "--config", str(config)]) == 0  # what sam read before answering
    shown = capsys.readouterr().out
    assert "@alice (public):" in shown and "@alice (private): @brand order 5521, my email is" in shown
    assert "alice.w@example.org" not in shown  # personal data masked, on a terminal too
    assert cli(["cases", "show", str(case.id), "--json", "--config", str(config)]) == 0
    posts = json.loads(capsys.readouterr().out)["posts"]
    assert len(posts) == 4 and "order 5521" in posts[2]["text"] and "alice.w@" not in posts[2]["text"]
    run_once(bot)
    run_once(bot)
    team = [s for s in statuses_of_brand(base)[before:] if "Refund of the double charge" in plain(s["content"])]
    assert len(team) == 1 and team[0]["visibility"] == "direct"
    assert str(team[0]["in_reply_to_id"]) == third  # the newest post of the private thread
    case = bot.storage.cases.get(case.id)
    assert case.first_human_response_at is not None and case.state == CaseState.WAITING_ON_CUSTOMER.value

    # 6. Resolved by the person; one check-back goes out (check_back_after is 1 ms here), only one.
    assert cli(["cases", "resolve", str(case.id), "--note", "refunded", "--by", "sam", "--config", str(config)]) == 0
    with_team = len(statuses_of_brand(base))
    for _ in range(3):
        run_once(bot)
    check_backs = statuses_of_brand(base)[with_team:]
    assert len(check_backs) == 1
    replies = bot.storage.cases.replies(case.id)
    (check_back,) = [r for r in replies if r.purpose == ReplyPurpose.CHECK_BACK.value]
    assert check_back.state is ReplyState.SENT and (check_back.template_id or "").startswith(
        "check_back/check_back/en/"
    )
    assert plain(check_backs[0]["content"]) == check_back.text  # in English
    assert check_backs[0]["visibility"] == "public"  # where the customer last wrote: the public thread
    history = [e.kind for e in bot.storage.cases.events(case.id)]
    for kind in ("opened", "joined", "escalated", "resolve_proposed", "team_reply", "resolved", "check_back"):
        assert kind in history, (kind, history)


def test_a_customer_who_writes_after_resolution_reopens_the_case_and_gets_no_check_back(
    bot: App, mastodon_server: MockServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = mastodon_server.base_url
    first = str(post_as(base, "boris", "@brand приложение не работает третий день, деньги списали!")["id"])
    run_once(bot)
    case = case_of(bot, first)
    config = write_config(tmp_path, base, extra="  check_back: true\n")
    monkeypatch.setenv("BRAND_TOKEN", "brand_token")
    assert cli(["cases", "resolve", str(case.id), "--config", str(config)]) == 0
    (reply,) = [s for s in statuses_of_brand(base) if s["visibility"] != "direct"]
    again = str(post_as(base, "boris", "@brand опять не работает", in_reply_to_id=reply["id"])["id"])
    before = len(statuses_of_brand(base))
    run_once(bot)
    run_once(bot)
    case = case_of(bot, again)
    assert case.state == CaseState.WAITING_ON_US.value and case.check_back_due_at is None
    assert "reopened" in [e.kind for e in bot.storage.cases.events(case.id)]
    check_backs = [r for r in bot.storage.cases.replies(case.id) if r.purpose == ReplyPurpose.CHECK_BACK.value]
    assert all(r.state is not ReplyState.SENT for r in check_backs)
    texts = {r.text for r in check_backs}
    assert not [s for s in statuses_of_brand(base)[before:] if plain(s["content"]) in texts]


def test_the_team_takes_notes_and_hands_a_case_over_from_the_command_line(
    bot: App,
    mastodon_server: MockServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = mastodon_server.base_url
    first = str(post_as(base, "boris", "@brand приложение не работает третий день, деньги списали!")["id"])
    run_once(bot)
    case = case_of(bot, first)
    config = write_config(tmp_path, base)
    monkeypatch.setenv("BRAND_TOKEN", "brand_token")
    carebot = terminal(config, capsys)

    number = str(case.id)
    (listed,) = json.loads(carebot("cases", "list", "--json"))
    assert listed["id"] == case.id and listed["author_handle"] == "boris" and listed["assigned_to"] is None
    assert "ana is on it" in carebot("cases", "assign", number, "--by", "ana")  # takes it herself
    carebot("cases", "note", number, "--text", "double charge, card ending 4242", "--by", "ana")
    assert "sam is on it" in carebot("cases", "assign", number, "--to", "sam", "--by", "ana")
    carebot("cases", "resolve", number, "--by", "sam")
    assert carebot("cases", "list").strip() == "No open cases."
    assert "is waiting_on_us again" in carebot("cases", "reopen", number, "--reason", "charged again", "--by", "sam")

    shown = json.loads(carebot("cases", "show", number, "--json"))
    assert shown["case"]["assigned_to"] == "sam" and shown["case"]["state"] == "waiting_on_us"
    history = [(e["kind"], e["by"]) for e in shown["events"]]
    for step in [("assigned", "ana"), ("note", "ana"), ("assigned", "ana"), ("resolved", "sam"), ("reopened", "sam")]:
        assert step in history, (step, history)
    assert any(e["text"] == "double charge, card ending 4242" for e in shown["events"])  # the team's own words
    assert cli(["cases", "note", "999", "--text", "x", "--config", str(config)]) != 0  # no such case
    for empty in ("", "   "):  # a note of nothing is refused, and nothing is added to the history
        capsys.readouterr()
        assert cli(["cases", "note", number, "--text", empty, "--config", str(config)]) == 1
        assert "the note is empty" in capsys.readouterr().err
    assert len(json.loads(carebot("cases", "show", number, "--json"))["events"]) == len(shown["events"])
