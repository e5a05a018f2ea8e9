"""The desk's case pages: the thread in order, a person's reply (once, however often the form is sent),
taking, resolving, reopening and notes; login and CSRF on every action."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from bot.classifier import Classifier
from bot.clock import now
from bot.config import Config, load_config
from bot.decide.playbooks import Playbooks, load_playbooks, vocabulary
from bot.decide.router import Context
from bot.models import CaseState, ReplyKind, ReplyPurpose, ReplyState
from bot.run.pipeline import handle_mention
from bot.storage import Storage
from bot.web.asgi import create_app
from connectors.base import Author, Mention
from tests import test_web as web

ACCOUNT = "acme-mastodon"


@pytest.fixture(scope="module")
def brains() -> tuple[Classifier, Playbooks]:
    playbooks = load_playbooks()
    return Classifier.load(vocabulary(playbooks)), playbooks


class Desk:
    def __init__(self, config: Config, storage: Storage, brains: tuple[Classifier, Playbooks], client: TestClient):
        self.config, self.storage, self.client = config, storage, client
        self.classifier, self.playbooks = brains
        self.number = 0

    def post(self, text: str, *, author: str = "alice", visibility: str = "public", reply_to: str | None = None) -> str:
        """A customer's post handled as the daemon handles it (case joining included); its post id."""
        self.number += 1
        mention = Mention(
            platform="mastodon",
            post_id=f"70{self.number:04d}",
            cursor=str(self.number),
            author=Author(f"u-{author}", author, author.title()),
            text=text,
            created_at=now() - timedelta(minutes=30 - self.number),
            visibility=visibility,
            in_reply_to_id=reply_to,
        )
        context = Context(brand=self.config.brand, platform="mastodon", max_characters=500, text_length=len)
        account = self.config.accounts[0]
        parts = (self.config, self.storage, self.classifier, self.playbooks)
        assert handle_mention(*parts, account, mention, context) is not None
        return mention.post_id

    def case_of(self, post_id: str) -> int:
        (stored,) = [m for m in self.storage.mentions.all() if m.mention.post_id == post_id]
        assert stored.case_id is not None
        return stored.case_id


@pytest.fixture
def desk(tmp_path: Path, brains: tuple[Classifier, Playbooks]) -> Iterator[Desk]:
    config = load_config(web.write_config(tmp_path, f"sqlite:///{tmp_path / 'desk.db'}"), web.ENV)
    storage = Storage.open(config.storage.url)
    storage.accounts.ensure(ACCOUNT, "mastodon")
    with TestClient(create_app(config, storage, *brains), follow_redirects=False) as client:
        yield Desk(config, storage, brains, client)
    storage.close()


COMPLAINT = "@brand my order #5521 never arrived and I was charged twice"
DETAILS = "@brand order 5521, email alice.w@example.org, card ending 4242"


def test_case_pages_need_a_login_and_actions_need_csrf(desk: Desk) -> None:
    case_id = desk.case_of(desk.post(COMPLAINT))
    for path in ("/cases", f"/cases/{case_id}"):
        response = desk.client.get(path)
        assert response.status_code == 303 and response.headers["location"].startswith("/login")
    for action in ("reply", "assign", "resolve", "reopen", "note"):
        answer = desk.client.post(f"/cases/{case_id}/{action}", data={"csrf": "x", "text": "hi", "request_key": "k"})
        assert answer.status_code == 403, action
    web.log_in(desk.client)
    forged = desk.client.post(f"/cases/{case_id}/resolve", data={"csrf": "forged"})
    assert forged.status_code == 403
    assert desk.storage.cases.get(case_id).state == CaseState.OPEN.value


def test_the_thread_shows_private_details_in_full_and_public_ones_masked(desk: Desk) -> None:
    first = desk.post(COMPLAINT + ", call me at 415-867-5309")
    case_id = desk.case_of(first)
    desk.post(DETAILS, visibility="direct", reply_to=first)
    assert desk.case_of(first) == case_id
    web.log_in(desk.client)
    listing = desk.client.get("/cases").text
    assert f"Case #{case_id}" in listing and "customer wrote" in listing
    page = desk.client.get(f"/cases/{case_id}").text
    assert "alice.w@example.org" in page  # the private thread is where details belong: the team sees them
    assert "415-867-5309" not in page  # the public post is shown masked
    assert page.index("never arrived") < page.index("order 5521")  # in order
    for bad in ("²", "①", str(10**26), "-1", "abc"):
        assert desk.client.get(f"/cases/{bad}").status_code == 404


def test_a_reply_from_the_case_page_is_made_once_and_resolving_reopening_and_notes_work(desk: Desk) -> None:
    case_id = desk.case_of(desk.post(COMPLAINT))
    csrf = web.log_in(desk.client)
    page = desk.client.get(f"/cases/{case_id}").text
    key = re.search(r'name="request_key" value="([^"]+)"', page)
    assert key
    form = {"csrf": csrf, "request_key": key.group(1), "text": "We found the order and refunded it.", "private": "1"}
    for _ in range(2):  # a double click, a reload that sends the form again
        assert desk.client.post(f"/cases/{case_id}/reply", data=form).status_code == 303
    team = [r for r in desk.storage.cases.replies(case_id) if r.purpose == ReplyPurpose.TEAM.value]
    assert len(team) == 1
    assert team[0].kind is ReplyKind.DIRECT and team[0].state is ReplyState.APPROVED
    assert team[0].text == "@alice We found the order and refunded it." and team[0].decided_by == "alice"
    # Refused words come back in the box, as they were sent: they used to be thrown away.
    for refused, why in (
        (["x" * 600, "1"], "Not done: the reply is"),
        (["Refund for order 5521 is done.", ""], "a number the customer wrote"),
    ):
        text, private = refused
        page = desk.client.post(
            f"/cases/{case_id}/reply", data={**form, "request_key": why[:8], "text": text, "private": private}
        )
        assert page.status_code == 422 and why in page.text
        assert f">{text}</textarea>" in page.text and ("checked" in page.text) == bool(private)

    desk.client.post(f"/cases/{case_id}/assign", data={"csrf": csrf, "take": "1"})
    assert desk.storage.cases.get(case_id).assigned_to == "alice"
    desk.client.post(f"/cases/{case_id}/note", data={"csrf": csrf, "text": "called the warehouse"})
    desk.client.post(f"/cases/{case_id}/resolve", data={"csrf": csrf, "note": "refunded"})
    case = desk.storage.cases.get(case_id)
    assert case.state == CaseState.RESOLVED.value and case.resolved_by == "alice" and case.check_back_due_at
    page = desk.client.get(f"/cases/{case_id}").text
    assert "called the warehouse" in page and "refunded" in page
    desk.client.post(f"/cases/{case_id}/reopen", data={"csrf": csrf})
    assert desk.storage.cases.get(case_id).state == CaseState.WAITING_ON_US.value


def test_someone_else_on_the_case_is_shown(desk: Desk) -> None:
    case_id = desk.case_of(desk.post(COMPLAINT))
    desk.storage.cases.assign(case_id, "bob", "bob")
    web.log_in(desk.client)
    assert "bob is on this case" in desk.client.get(f"/cases/{case_id}").text
