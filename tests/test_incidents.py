"""Incidents without a platform: detection across languages, one alert (and one per doubling), the
incident's answer (personal posts keep their hand-off), merge and split keeping every member, false
alarms, and telling each member once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.classifier import Classifier
from bot.clock import use_clock
from bot.config import Config, load_config
from bot.decide.playbooks import Playbooks, load_playbooks, vocabulary
from bot.decide.router import Context
from bot.models import ReplyPurpose, ReplyState
from bot.run.incidents import drain, false_alarm, resolve_incident
from bot.run.pipeline import handle_mention
from bot.storage import Conflict, Storage
from connectors.base import Author, Mention
from tests import configs

ACCOUNT = "acme-mastodon"
T0 = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)
REPORTS = [
    "@brand I can't log in since this morning, password is right",
    "@brand не могу войти в аккаунт, пишет ошибка входа",
    "@brand login keeps failing on the app and the website",
    "@brand вход в приложение не работает, выкидывает",
    "@brand locked out of my account, sign in just spins",
    "@brand не пускает в аккаунт уже час, почините",
]


@pytest.fixture(scope="module")
def brains() -> tuple[Classifier, Playbooks]:
    playbooks = load_playbooks()
    return Classifier.load(vocabulary(playbooks)), playbooks


class Desk:
    def __init__(self, config: Config, storage: Storage, brains: tuple[Classifier, Playbooks]) -> None:
        self.config, self.storage = config, storage
        self.classifier, self.playbooks = brains
        self.n = 0

    def report(self, text: str, at: datetime, author: str | None = None) -> int:
        """A post through the daemon's steps; the stored mention's id."""
        self.n += 1
        who = author or f"u{self.n}"
        mention = Mention("mastodon", f"p{self.n}", str(self.n), Author(who, who), text, at)
        with use_clock(lambda: at):
            ctx = Context(brand=self.config.brand, platform="mastodon", max_characters=500, text_length=len)
            account = self.config.accounts[0]
            handled = handle_mention(self.config, self.storage, self.classifier, self.playbooks, account, mention, ctx)
        assert handled is not None
        stored = handled.mention_id
        return stored


@pytest.fixture
def desk(tmp_path: Path, db_url: str, brains: tuple[Classifier, Playbooks]) -> Iterator[Desk]:
    path = configs.write_config(
        tmp_path,
        db_url=db_url,
        accounts=configs.mastodon_account("http://127.0.0.1:9", token="t0ken"),
        sections="incidents:\n  min_reports: 5\n  window: 30m\n",
    )
    config = load_config(path, {})
    storage = Storage.open(config.storage.url)
    storage.accounts.ensure(ACCOUNT, "mastodon")
    yield Desk(config, storage, brains)
    storage.close()


def test_five_people_in_two_languages_make_one_incident_with_one_alert(desk: Desk) -> None:
    for n, text in enumerate(REPORTS[:4]):
        desk.report(text, T0 + timedelta(minutes=n))
    assert desk.storage.incidents.listed() == []
    desk.report(REPORTS[4], T0 + timedelta(minutes=5))
    (incident,) = desk.storage.incidents.listed()
    assert incident.topic == "login"
    assert {c.lang for c in desk.storage.incidents.members(incident.id)} == {"en", "ru"}
    later = desk.report(REPORTS[5], T0 + timedelta(minutes=6))
    (reply,) = desk.storage.replies.for_mention(later)
    assert "входом в аккаунт" in reply.text and (reply.template_id or "").startswith("incident/incident/ru/")
    assert len(desk.storage.incidents.members(incident.id)) == 6
    assert [a.key for a in desk.storage.alerts.undelivered(["incident"])] == [f"incident:{incident.id}:opened"]


def test_reports_that_name_two_problems_open_one_incident_and_never_an_empty_one(desk: Desk) -> None:
    """Posts often carry two topics' words ("can't log in to the app"). The report that opened the first
    incident used to go on to open the second one too, with nobody in it (every reporter's case had just
    joined the first), and the team was alerted of it. Then a second problem reported by people already in
    an incident opened another empty one."""
    both = [
        "@brand I cannot log in to the app since this morning",
        "@brand не могу войти в приложение, ошибка входа",
        "@brand the app wont let me sign in, login error",
        "@brand приложение не пускает в аккаунт, пишет ошибка входа",
        "@brand can't log in on the app, says wrong password",
    ]
    for n, text in enumerate(both):
        desk.report(text, T0 + timedelta(minutes=n), author=f"u{n}")
    (incident,) = desk.storage.incidents.listed()
    assert len(desk.storage.incidents.members(incident.id)) == 5
    # The same five people report a payment problem in the app: their cases are in the incident already (a
    # case is in one incident), so no other opens, nor does the team hear of one.
    for n in range(5):
        desk.report("@brand payment failed in the app, card declined", T0 + timedelta(minutes=10 + n), author=f"u{n}")
    assert desk.storage.incidents.listed() == [desk.storage.incidents.get(incident.id)]
    assert [a.key for a in desk.storage.alerts.undelivered(["incident"])] == [f"incident:{incident.id}:opened"]
    # Five others with the payment problem do open its incident, of them alone.
    for n in range(5, 10):
        desk.report("@brand payment failed in the app, card declined", T0 + timedelta(minutes=20 + n), author=f"u{n}")
    payment = next(i for i in desk.storage.incidents.listed() if i.id != incident.id)
    assert payment.topic == "payment" and len(desk.storage.incidents.members(payment.id)) == 5


def test_reports_spread_over_more_than_the_window_make_no_incident(desk: Desk) -> None:
    for n, text in enumerate(REPORTS):
        desk.report(text, T0 + timedelta(minutes=40 * n))
    assert desk.storage.incidents.listed() == []


def test_a_personal_report_keeps_its_private_hand_off_and_still_joins(desk: Desk) -> None:
    for n, text in enumerate(REPORTS[:5]):
        desk.report(text, T0 + timedelta(minutes=n))
    (incident,) = desk.storage.incidents.listed()
    personal = desk.report(
        "@brand can't log in and my email is jane.doe@example.org, fix it", T0 + timedelta(minutes=6)
    )
    replies = desk.storage.replies.for_mention(personal)
    assert not any((r.template_id or "").startswith("incident/") for r in replies)
    case_id = desk.storage.mentions.get(personal).case_id
    assert case_id in {c.id for c in desk.storage.incidents.members(incident.id)}


def test_merge_and_split_never_lose_a_member_and_false_alarms_tell_nobody(desk: Desk) -> None:
    for n, text in enumerate(REPORTS[:5]):
        desk.report(text, T0 + timedelta(minutes=n))
    for n in range(5):
        desk.report(f"@brand the app keeps crashing on start, error {n}", T0 + timedelta(minutes=n), author=f"a{n}")
    login, app = sorted(desk.storage.incidents.listed(), key=lambda i: i.topic != "login")
    assert (login.topic, app.topic) == ("login", "app")
    before = {c.id for c in desk.storage.incidents.members(login.id)} | {
        c.id for c in desk.storage.incidents.members(app.id)
    }
    desk.storage.incidents.merge(app.id, login.id, "sam")
    assert {c.id for c in desk.storage.incidents.members(login.id)} == before
    assert desk.storage.incidents.get(app.id).state == "merged"
    with pytest.raises(Conflict):
        desk.storage.incidents.merge(app.id, login.id, "sam")  # a merged incident is not open
    one = min(before)
    desk.storage.incidents.split(login.id, one, "sam")
    assert {c.id for c in desk.storage.incidents.members(login.id)} == before - {one}
    false_alarm(desk.storage, login.id, "sam", "two unrelated problems")
    assert drain(desk.storage, login.id).total == 0


def test_resolving_tells_each_member_once_and_skips_who_opted_out_or_was_helped_otherwise(desk: Desk) -> None:
    ids = [desk.report(text, T0 + timedelta(minutes=n)) for n, text in enumerate(REPORTS)]
    (incident,) = desk.storage.incidents.listed()
    desk.report("@brand stop", T0 + timedelta(minutes=7), author="u1")  # the first reporter opts out
    other = desk.storage.mentions.get(ids[1]).case_id
    assert other is not None
    with use_clock(lambda: T0 + timedelta(minutes=8)):
        desk.storage.cases.resolve(other, "sam", "helped by phone", None)
    with use_clock(lambda: T0 + timedelta(hours=1)):
        progress = resolve_incident(desk.config, desk.storage, desk.playbooks, incident.id, "sam", "fixed")
    assert progress.total == 6 and progress.skipped == 2
    with pytest.raises(Conflict):
        resolve_incident(desk.config, desk.storage, desk.playbooks, incident.id, "sam", "again")
    notices = [
        r
        for case in desk.storage.incidents.members(incident.id)
        for r in desk.storage.cases.replies(case.id)
        if r.purpose == ReplyPurpose.INCIDENT.value
    ]
    assert len(notices) == 4 and all(r.state is ReplyState.APPROVED for r in notices)
    due = sorted(r.next_attempt_at for r in notices if r.next_attempt_at)
    assert len(due) == 4 and due[-1] - due[0] == 3 * timedelta(seconds=3600 / desk.config.incidents.notify_per_hour)


def test_resolving_takes_back_the_bots_drafts_that_still_wait_for_a_person(
    tmp_path: Path, db_url: str, brains: tuple[Classifier, Playbooks]
) -> None:
    """With an account in approve mode the bot's answers wait for a person. Once the incident is fixed, an
    answer still waiting ("we know, we're on it") would contradict the fixed-notification if approved after
    it: it is rejected with the reason, and only the notice waits for approval."""
    path = configs.write_config(
        tmp_path,
        db_url=db_url,
        accounts=configs.mastodon_account("http://127.0.0.1:9", token="t0ken", mode="approve"),
        sections="incidents:\n  min_reports: 5\n  window: 30m\n",
    )
    config = load_config(path, {})
    storage = Storage.open(config.storage.url)
    try:
        storage.accounts.ensure(ACCOUNT, "mastodon")
        desk = Desk(config, storage, brains)
        for n, text in enumerate(REPORTS):
            desk.report(text, T0 + timedelta(minutes=n))
        (incident,) = storage.incidents.listed()
        waiting = [r for r in storage.replies.queue() if r.reply.state is ReplyState.PENDING]
        assert len(waiting) >= 5
        with use_clock(lambda: T0 + timedelta(hours=1)):
            resolve_incident(config, storage, desk.playbooks, incident.id, "sam", "fixed")
        for case in storage.incidents.members(incident.id):
            replies = storage.cases.replies(case.id)
            (notice,) = [r for r in replies if r.purpose == ReplyPurpose.INCIDENT.value]
            assert notice.state is ReplyState.PENDING  # the one thing left for a person to approve
            for earlier in (r for r in replies if r.id != notice.id):
                assert earlier.state is ReplyState.REJECTED, earlier
                assert f"incident #{incident.id} is fixed" in (earlier.rejected_reason or "")
    finally:
        storage.close()
