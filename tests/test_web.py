"""The approval desk, server side: every route, login, CSRF, escaping, and what each action stores."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from bot.classifier import Classifier
from bot.clock import now
from bot.config import Config, ConfigError, load_config
from bot.decide.playbooks import Playbooks, load_playbooks, vocabulary
from bot.decide.router import Context, decide
from bot.models import ReplyKind, ReplyState
from bot.run.pipeline import classified, reply_state
from bot.storage import Storage
from bot.storage.records import StoredReply
from bot.web.asgi import NotConfigured, create_app
from bot.web.auth import LoginThrottle
from bot.web.passwords import hash_password, verify_password
from bot.web.server import bind, start_in_thread
from connectors.base import Author, Mention
from tests import configs
from tests.peers.mastodon import free_port

PASSWORDS = {"alice": "correct horse battery", "bob": "staple 42 zebra"}
HASHES = {name: hash_password(password) for name, password in PASSWORDS.items()}
ADMIN_TOKEN = "desk-admin-token-5f1c9a"  # a test value, not a credential
SECRET_KEY = "test-cookie-signing-key-0b7e"


def write_config(directory: Path, db_url: str, users: dict[str, str] | None = None, extra: str = "") -> Path:
    users = HASHES if users is None else users
    user_lines = "".join(f'    {name}: "{line}"\n' for name, line in users.items())
    web = f"""web:
  admin_token: ${{DESK_TOKEN}}
  secret_key: ${{DESK_SECRET}}
{"  users:" + chr(10) + user_lines if users else ""}{extra}"""
    account = configs.mastodon_account("http://127.0.0.1:9", mode="approve", poll_interval=None, timeout=None)
    return configs.write_config(directory, db_url=db_url, accounts=account, sections=web)


ENV = {"DESK_TOKEN": ADMIN_TOKEN, "DESK_SECRET": SECRET_KEY, "BRAND_TOKEN": "brand_token"}


@dataclass
class Desk:
    config: Config
    storage: Storage
    classifier: Classifier
    playbooks: Playbooks
    client: TestClient

    def seed(
        self,
        text: str,
        author: str = "alice",
        display_name: str = "Alice",
        age: timedelta = timedelta(minutes=5),
        post_id: str | None = None,
        conversation_id: str | None = None,
        in_reply_to_id: str | None = None,
    ) -> int:
        """A mention as the daemon would store it (real classifier and router); the reply's id."""
        return seed(
            self.storage,
            self.classifier,
            self.playbooks,
            self.config,
            text,
            author,
            display_name,
            age,
            post_id,
            conversation_id,
            in_reply_to_id,
        )


_counter = iter(range(1, 10**6))


def seed(
    storage: Storage,
    classifier: Classifier,
    playbooks: Playbooks,
    config: Config,
    text: str,
    author: str = "alice",
    display_name: str = "Alice",
    age: timedelta = timedelta(minutes=5),
    post_id: str | None = None,
    conversation_id: str | None = None,
    in_reply_to_id: str | None = None,
) -> int:
    number = next(_counter)
    mention = Mention(
        platform="mastodon",
        post_id=post_id or f"10{number:04d}",
        cursor=str(number),
        author=Author(f"u-{author}", author, display_name),
        text=text,
        created_at=now() - age,
        url=f"http://127.0.0.1:9/@{author}/{number}",
        conversation_id=conversation_id,
        in_reply_to_id=in_reply_to_id,
    )
    result = classifier.classify(text)
    context = Context(brand=config.brand, platform="mastodon", max_characters=500, text_length=len)
    decision = decide(mention, result, playbooks, context)
    state = reply_state(decision, config.accounts[0].mode)
    mention_id = storage.mentions.record("acme-mastodon", mention, classified(result), decision, state)
    assert mention_id is not None
    return storage.replies.for_mention(mention_id)[0].id


@pytest.fixture(scope="module")
def brains() -> tuple[Classifier, Playbooks]:
    playbooks = load_playbooks()
    return Classifier.load(vocabulary(playbooks)), playbooks


def open_desk(tmp_path: Path, db_url: str, brains: tuple[Classifier, Playbooks]) -> Iterator[Desk]:
    config = load_config(write_config(tmp_path, db_url), ENV)
    storage = Storage.open(config.storage.url)
    storage.accounts.ensure("acme-mastodon", "mastodon")
    app = create_app(config, storage, *brains)
    with TestClient(app, follow_redirects=False) as client:
        yield Desk(config, storage, *brains, client)
    storage.close()


@pytest.fixture
def desk(tmp_path: Path, brains: tuple[Classifier, Playbooks]) -> Iterator[Desk]:
    """The desk on SQLite."""
    yield from open_desk(tmp_path, f"sqlite:///{tmp_path / 'desk.db'}", brains)


@pytest.fixture
def any_desk(tmp_path: Path, db_url: str, brains: tuple[Classifier, Playbooks]) -> Iterator[Desk]:
    """The desk on SQLite and on PostgreSQL."""
    yield from open_desk(tmp_path, db_url, brains)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def log_in(client: TestClient | httpx.Client, user: str = "alice", password: str | None = None) -> str:
    """Log in through the form; returns the CSRF token of the new session."""
    page = client.get("/login")
    response = client.post(
        "/login",
        data={"csrf": csrf_of(page.text), "user": user, "password": password or PASSWORDS[user], "next": "/"},
    )
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/").text)


def shown(desk: Desk, reply_id: int) -> str:
    return desk.storage.replies.get(reply_id).text


def follow_up_of(storage: Storage, reply_id: int) -> StoredReply | None:
    mention_id = storage.replies.get(reply_id).mention_id
    return next((r for r in storage.replies.for_mention(mention_id) if r.kind is ReplyKind.DIRECT), None)


def as_shown(storage: Storage, reply_id: int) -> dict[str, str]:
    """The fields the queue page's approve form carries for a pending private follow-up, as it shows it."""
    direct = follow_up_of(storage, reply_id)
    if direct is None or direct.state is not ReplyState.PENDING:
        return {}
    return {"direct_id": str(direct.id), "direct_shown": direct.text, "direct_text": direct.text}


COMPLAINT = "@brand my order never arrived and I was charged twice! email me at alice.w@example.org"
QUESTION = "@brand does the app have a dark mode?"


# --- login and sessions ------------------------------------------------------------------------------


def test_pages_need_a_login_and_health_does_not(desk: Desk) -> None:
    client = desk.client
    for path in ("/", "/history?show=sent"):
        response = client.get(path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=%2F")
    reply_id = desk.seed(COMPLAINT)
    for action in ("approve", "reject", "retry", "situation"):
        response = client.post(f"/replies/{reply_id}/{action}", data={"csrf": "x", "shown": "x"})
        assert response.status_code == 403, action
    assert desk.storage.replies.get(reply_id).state is ReplyState.PENDING
    assert client.get("/health").text == "ok"
    assert client.get("/login").status_code == 200


def test_password_login_then_logout(desk: Desk) -> None:
    client = desk.client
    page = client.get("/login?next=/history")
    assert 'name="password"' in page.text and 'name="token"' in page.text
    wrong = client.post(
        "/login", data={"csrf": csrf_of(page.text), "user": "alice", "password": "nope", "next": "/history"}
    )
    assert wrong.status_code == 401
    assert "Wrong user name, password or token" in wrong.text
    unknown = client.post("/login", data={"csrf": csrf_of(page.text), "user": "mallory", "password": "x"})
    assert unknown.status_code == 401
    right = client.post(
        "/login",
        data={"csrf": csrf_of(page.text), "user": "alice", "password": PASSWORDS["alice"], "next": "/history"},
    )
    assert right.status_code == 303 and right.headers["location"] == "/history"
    home = client.get("/")
    assert home.status_code == 200 and "alice" in home.text
    assert client.post("/logout", data={"csrf": "forged"}).status_code == 403
    assert client.post("/logout", data={"csrf": csrf_of(home.text)}).status_code == 303
    assert client.get("/").status_code == 303


def test_admin_token_login(desk: Desk) -> None:
    client = desk.client
    page = client.get("/login")
    assert client.post("/login", data={"csrf": csrf_of(page.text), "token": "guess"}).status_code == 401
    response = client.post("/login", data={"csrf": csrf_of(page.text), "token": ADMIN_TOKEN})
    assert response.status_code == 303
    home = client.get("/")
    assert home.status_code == 200
    assert ADMIN_TOKEN not in home.text
    assert re.search(r'class="who"[^>]*>admin<', home.text)


def test_password_guessing_is_stopped_per_user(desk: Desk) -> None:
    client = desk.client
    page = client.get("/login")
    for _ in range(10):
        wrong = client.post("/login", data={"csrf": csrf_of(page.text), "user": "alice", "password": "guess"})
        assert wrong.status_code == 401
    right = {"csrf": csrf_of(page.text), "user": "alice", "password": PASSWORDS["alice"]}
    blocked = client.post("/login", data=right)
    assert blocked.status_code == 429 and "Too many failed logins" in blocked.text
    assert client.get("/").status_code == 303
    assert log_in(client, "bob")  # other people are not locked out


def test_the_login_throttle_forgets_old_failures() -> None:
    clock = [0.0]
    throttle = LoginThrottle(failures=3, window=60, clock=lambda: clock[0])
    for _ in range(3):
        throttle.failed("10.0.0.1", "alice")
    assert throttle.blocked("10.0.0.1", "alice")
    assert not throttle.blocked("10.0.0.2", "alice") and not throttle.blocked("10.0.0.1", "bob")
    clock[0] = 61.0
    assert not throttle.blocked("10.0.0.1", "alice")


def test_login_needs_the_form_csrf_token_and_never_redirects_elsewhere(desk: Desk) -> None:
    client = desk.client
    no_token = client.post("/login", data={"user": "alice", "password": PASSWORDS["alice"]})
    assert no_token.status_code == 403
    assert client.get("/").status_code == 303
    page = client.get("/login")
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        response = client.post(
            "/login",
            data={"csrf": csrf_of(page.text), "user": "alice", "password": PASSWORDS["alice"], "next": target},
        )
        assert response.headers["location"] == "/", target
        client.cookies.clear()
        page = client.get("/login")


def test_a_forged_or_stale_session_cookie_is_not_a_login(
    tmp_path: Path, desk: Desk, brains: tuple[Classifier, Playbooks]
) -> None:
    log_in(desk.client)
    cookie = desk.client.cookies["carebot_session"]
    payload, signature = cookie.split(".", 1)
    desk.client.cookies.clear()
    desk.client.cookies.set("carebot_session", payload.replace("a", "b", 1) + "." + signature)
    assert desk.client.get("/").status_code == 303
    desk.client.cookies.clear()
    desk.client.cookies.set("carebot_session", cookie)
    assert desk.client.get("/").status_code == 200

    # A new password for alice ends the sessions opened with the old one (same signing key).
    renewed = load_config(
        write_config(tmp_path, desk.config.storage.url, {**HASHES, "alice": hash_password("new one")}), ENV
    )
    with TestClient(create_app(renewed, desk.storage, *brains), follow_redirects=False) as other:
        other.cookies.set("carebot_session", cookie)
        assert other.get("/").status_code == 303
    with TestClient(create_app(desk.config, desk.storage, *brains), follow_redirects=False) as same:
        same.cookies.set("carebot_session", cookie)
        assert same.get("/").status_code == 200


def test_security_headers_and_no_caching(desk: Desk) -> None:
    page = desk.client.get("/login")
    cookie = page.headers.get("set-cookie", "").lower()
    assert "carebot_session=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    log_in(desk.client)
    response = desk.client.get("/")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"
    assert desk.client.get("/static/desk.js").status_code == 200
    assert desk.client.get("/static/desk.css").status_code == 200


def test_a_desk_nobody_can_log_in_to_is_refused(tmp_path: Path) -> None:
    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'x.db'}", users={})
    text = path.read_text().replace("  admin_token: ${DESK_TOKEN}\n", "")
    path.write_text(text)
    config = load_config(path, ENV)
    storage = Storage.open(config.storage.url)
    try:
        with pytest.raises(NotConfigured):
            create_app(config, storage)
    finally:
        storage.close()


# --- the queue page ----------------------------------------------------------------------------------


def test_queue_shows_everything_a_person_needs_escaped_and_masked(desk: Desk) -> None:
    hostile = "@brand <script>alert('x')</script> my payment failed and nobody helps, call me +1 415 555 0134"
    reply_id = desk.seed(hostile, author="mallory", display_name='<img src=x onerror="alert(1)">')
    log_in(desk.client)
    page = desk.client.get("/").text
    assert "<script>alert" not in page and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=" in page
    assert "415 555 0134" not in page  # personal data masked on the page
    assert "Personal data hidden: phone" in page
    item = re.search(rf'<li class="card item[^"]*" id="item-{reply_id}".*?</li>', page, re.S)
    assert item, page
    html = item.group(0)
    assert "mastodon · acme-mastodon" in html
    assert "@mallory" in html
    assert ">complaint<" in html and "urgent" in html
    assert re.search(r'class="confidence"[^>]*>\d+%<', html)
    assert 'lang="en"' in html
    draft = desk.storage.replies.get(reply_id).text
    assert f'<span class="used">{len(draft)}</span> / 500' in html
    assert re.search(r"waiting 5m", html)
    assert 'href="http://127.0.0.1:9/@mallory/' in html


def test_queue_puts_complaints_first_then_the_longest_waiting(desk: Desk) -> None:
    old_question = desk.seed(QUESTION, age=timedelta(hours=2))
    new_complaint = desk.seed(COMPLAINT, age=timedelta(minutes=1))
    newer_question = desk.seed("@brand how do I turn off notifications in the app?", age=timedelta(minutes=30))
    log_in(desk.client)
    page = desk.client.get("/").text
    order = [int(i) for i in re.findall(r'id="item-(\d+)"', page)]
    assert order == [new_complaint, old_question, newer_question]


def test_thread_context_is_shown_when_known(desk: Desk) -> None:
    desk.seed("@brand my invoice is wrong, I was billed twice", post_id="500", conversation_id="c1")
    follow_up = desk.seed(
        "@brand still nothing? it is the double charge from yesterday",
        post_id="501",
        conversation_id="c1",
        in_reply_to_id="500",
    )
    log_in(desk.client)
    page = desk.client.get("/").text
    item = re.search(rf'id="item-{follow_up}".*?</li>\s*</ol>|id="item-{follow_up}".*', page, re.S)
    assert item and "Earlier in this thread (1)" in item.group(0)
    assert "my invoice is wrong" in item.group(0)


def test_an_answer_to_our_reply_shows_what_it_answers(desk: Desk) -> None:
    """The most common follow-up answers our reply, a post of ours: the queue said "Replying to post ...
    (not seen by carebot)" and showed nothing of the conversation."""
    first = desk.seed("@brand my invoice is wrong, I was billed twice", post_id="600", age=timedelta(minutes=20))
    desk.storage.replies.mark_sent(first, "ours-1")  # the bot's answer, now post ours-1 on the platform
    follow_up = desk.seed("@brand still nothing?", post_id="601", in_reply_to_id="ours-1", age=timedelta(minutes=2))
    log_in(desk.client)
    page = desk.client.get("/").text
    item = re.search(rf'id="item-{follow_up}".*?</li>\s*</ol>|id="item-{follow_up}".*', page, re.S)
    assert item and "Earlier in this thread (2)" in item.group(0) and "not seen by carebot" not in item.group(0)
    assert "my invoice is wrong" in item.group(0)


# --- actions -------------------------------------------------------------------------------------------


def test_every_action_refuses_a_missing_or_forged_csrf_token(desk: Desk) -> None:
    reply_id = desk.seed(COMPLAINT)
    log_in(desk.client)
    text = shown(desk, reply_id)
    for action, extra in (
        ("approve", {"text": text}),
        ("reject", {"reason": "no"}),
        ("retry", {}),
        ("situation", {"situation": "other"}),
    ):
        for token in (None, "forged"):
            data = {"shown": text, **extra} | ({"csrf": token} if token else {})
            response = desk.client.post(f"/replies/{reply_id}/{action}", data=data)
            assert response.status_code == 403, (action, token)
    assert desk.storage.replies.get(reply_id).state is ReplyState.PENDING
    assert desk.storage.mentions.get(desk.storage.replies.get(reply_id).mention_id).situation == "complaint"


def test_approve_as_is_records_who(desk: Desk) -> None:
    reply_id = desk.seed(COMPLAINT)
    csrf = log_in(desk.client)
    text = shown(desk, reply_id)
    form = {"csrf": csrf, "shown": text, "text": text, **as_shown(desk.storage, reply_id)}
    response = desk.client.post(f"/replies/{reply_id}/approve", data=form)
    assert response.status_code == 303
    reply = desk.storage.replies.get(reply_id)
    assert reply.state is ReplyState.APPROVED
    assert reply.approved_by == "alice" and reply.decided_by == "auto" and reply.text == text
    page = desk.client.get("/").text
    assert f"Reply #{reply_id} approved" in page
    assert f'id="item-{reply_id}"' not in page


def test_edit_then_approve_posts_the_edit_with_browser_line_breaks(desk: Desk) -> None:
    reply_id = desk.seed(COMPLAINT)
    csrf = log_in(desk.client)
    original = shown(desk, reply_id)
    edited = "@alice We're so sorry.\r\nPlease write to help@acme.example with your order number."
    desk.client.post(
        f"/replies/{reply_id}/approve",
        data={
            "csrf": csrf,
            "shown": original.replace("\n", "\r\n"),
            "text": edited,
            **as_shown(desk.storage, reply_id),
        },
    )
    reply = desk.storage.replies.get(reply_id)
    assert reply.state is ReplyState.APPROVED
    assert reply.text == edited.replace("\r\n", "\n")
    assert reply.decided_by == "alice" and reply.approved_by == "alice"


def test_an_edit_over_the_limit_is_refused_and_kept(desk: Desk) -> None:
    reply_id = desk.seed(COMPLAINT)
    csrf = log_in(desk.client)
    too_long = "@alice " + "é" * 600
    response = desk.client.post(
        f"/replies/{reply_id}/approve", data={"csrf": csrf, "shown": shown(desk, reply_id), "text": too_long}
    )
    assert response.status_code == 422
    assert "607 characters; mastodon allows 500" in response.text
    assert too_long in response.text  # the person's edit is still in the box
    assert desk.storage.replies.get(reply_id).state is ReplyState.PENDING
    empty = desk.client.post(
        f"/replies/{reply_id}/approve", data={"csrf": csrf, "shown": shown(desk, reply_id), "text": "  "}
    )
    assert empty.status_code == 422 and "empty" in empty.text


def test_the_second_approver_is_told_who_was_first(desk: Desk) -> None:
    reply_id = desk.seed(COMPLAINT)
    text = shown(desk, reply_id)
    first = log_in(desk.client)
    with TestClient(desk.client.app, follow_redirects=False) as other:
        second = log_in(other, "bob")
        assert (
            desk.client.post(
                f"/replies/{reply_id}/approve",
                data={"csrf": first, "shown": text, "text": text, **as_shown(desk.storage, reply_id)},
            ).status_code
            == 303
        )
        late = {"csrf": second, "shown": text, "text": text + "!", **as_shown(desk.storage, reply_id)}
        response = other.post(f"/replies/{reply_id}/approve", data=late)
        assert response.status_code == 303
        assert f"Reply #{reply_id} was already approved by alice." in other.get("/").text
    reply = desk.storage.replies.get(reply_id)
    assert reply.approved_by == "alice" and reply.text == text


def test_a_draft_changed_under_the_page_is_not_approved_blind(desk: Desk) -> None:
    reply_id = desk.seed(QUESTION)
    current = shown(desk, reply_id)
    csrf = log_in(desk.client)
    stale = {"csrf": csrf, "shown": "an older draft", "text": "an older draft"}
    assert desk.client.post(f"/replies/{reply_id}/approve", data=stale).status_code == 303
    assert desk.storage.replies.get(reply_id).state is ReplyState.PENDING
    assert "changed while you were looking at it" in desk.client.get("/").text
    # An edit is what the person typed and saw: it is approved whatever the draft became meanwhile.
    edited = {"csrf": csrf, "shown": "an older draft", "text": "@alice Yes: Settings, then Display."}
    desk.client.post(f"/replies/{reply_id}/approve", data=edited)
    reply = desk.storage.replies.get(reply_id)
    assert reply.state is ReplyState.APPROVED and reply.text == "@alice Yes: Settings, then Display."
    assert current != reply.text


def test_an_edit_on_a_page_whose_private_follow_up_was_taken_back_meanwhile_is_not_approved(desk: Desk) -> None:
    """Alice's page shows a complaint's reply and its private follow-up. Bob re-routes the post to a contact
    request, whose playbook has no follow-up: it is rejected. Alice's edit then used to be approved with
    "then its private follow-up", and no private message ever went."""
    reply_id = desk.seed(COMPLAINT)
    alices_page = {"shown": shown(desk, reply_id), **as_shown(desk.storage, reply_id)}
    assert "direct_id" in alices_page  # the page shows a follow-up waiting with the reply
    csrf = log_in(desk.client)
    rerouted = {"csrf": csrf, "shown": alices_page["shown"], "situation": "contact_request"}
    assert desk.client.post(f"/replies/{reply_id}/situation", data=rerouted).status_code == 303
    assert desk.storage.replies.get(int(alices_page["direct_id"])).state is ReplyState.REJECTED

    edit = "@alice So sorry! Please send us your order number by DM."
    response = desk.client.post(f"/replies/{reply_id}/approve", data={"csrf": csrf, **alices_page, "text": edit})
    assert response.status_code == 303
    assert "changed while you were looking at it" in desk.client.get("/").text
    assert desk.storage.replies.get(reply_id).state is ReplyState.PENDING  # nothing approved on a stale page


def test_an_edit_that_repeats_the_customers_personal_data_in_public_is_refused(desk: Desk) -> None:
    """docs/GUIDE.md, principle 3: a public reply never repeats personal data. The desk masks the customer's
    e-mail address in the post it shows, yet a person's edit carrying it (or a card number) went out."""
    reply_id = desk.seed(COMPLAINT)  # the customer wrote alice.w@example.org
    csrf = log_in(desk.client)
    form = {"csrf": csrf, "shown": shown(desk, reply_id), **as_shown(desk.storage, reply_id)}
    for edit, said in (
        ("@alice We wrote to alice.w@example.org about it.", "an e-mail address"),
        ("@alice The refund went to card 4111 1111 1111 1111.", "a card number"),
    ):
        response = desk.client.post(f"/replies/{reply_id}/approve", data={**form, "text": edit})
        assert response.status_code == 422 and said in response.text and "privately" in response.text
        assert edit in response.text  # the person's words are kept in the box, to change
        assert desk.storage.replies.get(reply_id).state is ReplyState.PENDING
    brand = desk.config.brand.support_email
    fine = f"@alice So sorry! Please write to {brand} and we'll sort it out."
    assert desk.client.post(f"/replies/{reply_id}/approve", data={**form, "text": fine}).status_code == 303
    assert desk.storage.replies.get(reply_id).text == fine  # the brand's own address is not personal data


def test_many_people_approving_at_once_approve_once(tmp_path: Path, any_desk: Desk) -> None:
    reply_id = any_desk.seed(COMPLAINT)
    text = shown(any_desk, reply_id)
    fields = {"shown": text, "text": text, **as_shown(any_desk.storage, reply_id)}
    handle = start_in_thread(any_desk.client.app, "127.0.0.1", 0)
    try:
        clients = [httpx.Client(base_url=handle.url, timeout=10) for _ in range(6)]
        tokens = [log_in(c, "alice" if i % 2 else "bob") for i, c in enumerate(clients)]
        barrier = threading.Barrier(len(clients))
        outcomes: list[str] = []

        def approve(client: httpx.Client, token: str) -> None:
            barrier.wait()
            client.post(f"/replies/{reply_id}/approve", data={"csrf": token, **fields})
            outcomes.append(client.get("/").text)

        threads = [threading.Thread(target=approve, args=pair) for pair in zip(clients, tokens, strict=True)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        for client in clients:
            client.close()
    finally:
        handle.stop()
    assert len(outcomes) == 6
    won = [page for page in outcomes if f"Reply #{reply_id} approved;" in page]
    lost = [page for page in outcomes if f"Reply #{reply_id} was already approved by" in page]
    assert len(won) == 1 and len(lost) == 5
    assert any_desk.storage.replies.get(reply_id).state is ReplyState.APPROVED


def test_reject_needs_a_reason_and_records_it(desk: Desk) -> None:
    reply_id = desk.seed(QUESTION)
    csrf = log_in(desk.client, "bob")
    response = desk.client.post(f"/replies/{reply_id}/reject", data={"csrf": csrf, "reason": "   "})
    assert response.status_code == 422 and "Say why" in response.text
    assert desk.storage.replies.get(reply_id).state is ReplyState.PENDING
    desk.client.post(f"/replies/{reply_id}/reject", data={"csrf": csrf, "reason": "answered by phone already"})
    reply = desk.storage.replies.get(reply_id)
    assert reply.state is ReplyState.REJECTED
    assert reply.approved_by == "bob" and reply.rejected_reason == "answered by phone already"


def test_retry_a_failed_send(desk: Desk) -> None:
    reply_id = desk.seed(COMPLAINT)
    csrf = log_in(desk.client)
    desk.client.post(f"/replies/{reply_id}/retry", data={"csrf": csrf})
    assert desk.storage.replies.get(reply_id).state is ReplyState.PENDING  # only a failed reply is retried
    desk.storage.replies.approve(reply_id, "alice")
    desk.storage.replies.park(reply_id, "Unavailable: 503 from the server")
    page = desk.client.get("/").text
    assert "Last error" in page and "503 from the server" in page and ">Retry<" in page
    assert desk.client.post(f"/replies/{reply_id}/retry", data={"csrf": csrf}).status_code == 303
    reply = desk.storage.replies.get(reply_id)
    assert reply.state is ReplyState.APPROVED and reply.attempts == 0 and reply.approved_by == "alice"


def test_unknown_reply_is_404(desk: Desk) -> None:
    csrf = log_in(desk.client)
    assert desk.client.post("/replies/9999/approve", data={"csrf": csrf, "shown": "x"}).status_code == 404
    assert desk.client.post("/replies/abc/approve", data={"csrf": csrf}).status_code == 404


def test_forms_must_be_forms(desk: Desk) -> None:
    reply_id = desk.seed(QUESTION)
    csrf = log_in(desk.client)
    response = desk.client.post(f"/replies/{reply_id}/approve", json={"csrf": csrf, "shown": "x"})
    assert response.status_code == 415
    big = desk.client.post(f"/replies/{reply_id}/reject", data={"csrf": csrf, "reason": "x" * 70_000})
    assert big.status_code == 413


def test_change_situation_redrafts_from_that_playbook(any_desk: Desk) -> None:
    desk = any_desk
    reply_id = desk.seed("@brand the app does not open since the update, what do I do?")
    before = desk.storage.replies.get(reply_id)
    mention = desk.storage.mentions.get(before.mention_id)
    target = "complaint" if mention.situation != "complaint" else "simple_question"
    csrf = log_in(desk.client)
    response = desk.client.post(
        f"/replies/{reply_id}/situation", data={"csrf": csrf, "shown": before.text, "situation": target}
    )
    assert response.status_code == 303
    after = desk.storage.replies.get(reply_id)
    changed = desk.storage.mentions.get(before.mention_id)
    assert changed.situation == target
    assert after.state is ReplyState.PENDING
    assert after.template_id and after.template_id.startswith(f"{target}/")
    assert after.text != before.text and after.text.startswith("@alice")
    assert "situation set to" in changed.reason and "by alice" in changed.reason
    assert f"re-drafted from the {target} playbook" in desk.client.get("/").text


def test_change_to_a_silent_playbook_changes_nothing(desk: Desk) -> None:
    reply_id = desk.seed(QUESTION)
    before = desk.storage.replies.get(reply_id)
    csrf = log_in(desk.client)
    response = desk.client.post(
        f"/replies/{reply_id}/situation", data={"csrf": csrf, "shown": before.text, "situation": "trolling"}
    )
    assert response.status_code == 422
    assert "drafts no reply" in response.text
    assert desk.storage.replies.get(reply_id).text == before.text
    assert desk.storage.mentions.get(before.mention_id).situation == "simple_question"
    bad = desk.client.post(
        f"/replies/{reply_id}/situation", data={"csrf": csrf, "shown": before.text, "situation": "<b>x</b>"}
    )
    assert bad.status_code == 422 and "<b>x</b>" not in bad.text


# --- history and figures --------------------------------------------------------------------------------


def test_history_says_what_was_sent_by_whom_and_what_was_rejected(desk: Desk) -> None:
    by_person = desk.seed(COMPLAINT)
    rejected = desk.seed(QUESTION)
    desk.storage.replies.approve(by_person, "alice", text="@alice So sorry: please email help@acme.example")
    reply = desk.storage.replies.get(by_person)
    assert desk.storage.replies.claim(reply, timedelta(minutes=1))
    desk.storage.replies.mark_sent(by_person, "post-77")
    desk.storage.replies.reject(rejected, "bob", "<b>duplicate</b> of a DM")
    log_in(desk.client)
    page = desk.client.get("/history").text
    assert "Sent after approval by <strong>alice</strong>, text by <strong>alice</strong>" in page
    assert "So sorry: please email help@acme.example" in page
    assert "Rejected by <strong>bob</strong>" in page and "&lt;b&gt;duplicate&lt;/b&gt; of a DM" in page
    assert "alice.w@example.org" not in page  # the post is masked here too
    only_sent = desk.client.get("/history?show=sent").text
    assert "Rejected by" not in only_sent and "So sorry" in only_sent


def test_figures_on_both_backends(any_desk: Desk) -> None:
    desk = any_desk
    waiting_old = desk.seed(COMPLAINT, age=timedelta(hours=3))
    desk.seed(QUESTION, age=timedelta(minutes=10))
    for age in (timedelta(minutes=10), timedelta(minutes=20), timedelta(minutes=60)):
        reply_id = desk.seed("@brand how do I reach support by email?", age=age)
        desk.storage.replies.approve(reply_id, "alice")
        assert desk.storage.replies.claim(desk.storage.replies.get(reply_id), timedelta(minutes=1))
        desk.storage.replies.mark_sent(reply_id, f"p{reply_id}")
    assert waiting_old
    numbers = desk.storage.figures.desk()
    assert numbers.waiting_now == 2
    assert numbers.oldest_wait is not None and timedelta(hours=3) <= numbers.oldest_wait < timedelta(hours=3, minutes=1)
    assert numbers.answered_today == 3
    median = numbers.median_first_response
    assert median is not None and timedelta(minutes=20) <= median < timedelta(minutes=21)
    log_in(desk.client)
    page = desk.client.get("/").text
    assert re.search(r'data-figure="waiting_now">2<', page)
    assert re.search(r'data-figure="oldest_wait">3h00m<', page)
    assert re.search(r'data-figure="answered_today">3<', page)
    assert re.search(r'data-figure="median_first_response">20m<', page)


def test_posts_set_aside_are_counted_on_the_queue_page(desk: Desk) -> None:
    log_in(desk.client)
    assert 'data-figure="set_aside"' not in desk.client.get("/").text  # none: no figure
    desk.storage.quarantine.add(
        account="acme-mastodon", platform="mastodon", post_id="9", cursor="9", stage="read",
        reason="unreadable notification: created_at is missing", excerpt="my order [order]",
    )  # fmt: skip
    assert desk.storage.figures.desk().set_aside == 1
    assert re.search(r'data-figure="set_aside">1<', desk.client.get("/").text)


def test_figures_count_only_today(desk: Desk) -> None:
    reply_id = desk.seed(QUESTION)
    desk.storage.replies.approve(reply_id, "alice")
    desk.storage.replies.claim(desk.storage.replies.get(reply_id), timedelta(minutes=1))
    desk.storage.replies.mark_sent(reply_id, "p1")
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    assert desk.storage.figures.desk(at=tomorrow).answered_today == 0
    assert desk.storage.figures.desk().answered_today == 1


# --- config, passwords and the server ------------------------------------------------------------------


def test_password_hashes_are_salted_and_checked() -> None:
    line = hash_password("s3cret")
    assert line.startswith("scrypt$131072$8$1$") and "s3cret" not in line
    assert line != hash_password("s3cret")
    assert verify_password("s3cret", line)
    assert not verify_password("s3cret!", line)
    assert not verify_password("s3cret", "scrypt$broken")
    assert not verify_password("s3cret", "bcrypt$1$2$3$4$5")


def test_web_config_reads_users_token_and_secrets_without_showing_them(tmp_path: Path) -> None:
    (tmp_path / "cookie.key").write_text("file-secret-key\n", encoding="utf-8")
    path = write_config(tmp_path, "sqlite:///x.db", extra="  session_max_age: 2h\n  secure_cookies: true\n")
    path.write_text(path.read_text().replace("secret_key: ${DESK_SECRET}", "secret_key_file: cookie.key"))
    config = load_config(path, ENV)
    assert config.web.users["alice"] == HASHES["alice"]
    assert config.web.admin_token == ADMIN_TOKEN and config.web.secret_key == "file-secret-key"
    assert config.web.session_max_age == 7200 and config.web.secure_cookies is True
    assert ADMIN_TOKEN not in repr(config) and "file-secret-key" not in repr(config)
    assert HASHES["alice"] not in repr(config)


def test_web_config_problems_name_the_line_and_never_echo_a_password(tmp_path: Path) -> None:
    path = write_config(tmp_path, "sqlite:///x.db", users={"alice": "hunter2", "no spaces": HASHES["bob"]})
    with pytest.raises(ConfigError) as caught:
        load_config(path, ENV)
    problems = "\n".join(caught.value.problems)
    assert "web.users.alice: expected a hash line from `carebot web hash-password`" in problems
    assert "web.users.no spaces: a user name is" in problems
    assert "hunter2" not in problems
    assert re.search(r"carebot.yaml:\d+: web.users.alice", problems)


def test_start_in_thread_serves_and_stops_and_a_taken_port_is_an_error(desk: Desk) -> None:
    handle = start_in_thread(desk.client.app, "127.0.0.1", 0)
    try:
        assert httpx.get(f"{handle.url}/health", timeout=5).text == "ok"
        port = int(handle.url.rsplit(":", 1)[1])
        with pytest.raises(OSError):
            start_in_thread(desk.client.app, "127.0.0.1", port)
    finally:
        handle.stop()
    assert not handle.thread.is_alive()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{handle.url}/health", timeout=2)


ROOT = Path(__file__).resolve().parents[1]


def run_cli(*argv: str, stdin: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *argv],  # `carebot ...` as a process
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **(env or {})},
    )


def test_hash_password_command_reads_stdin() -> None:
    done = run_cli("web", "hash-password", stdin="tr0ub4dor&3\n")
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip()
    assert verify_password("tr0ub4dor&3", line) and "tr0ub4dor" not in line
    assert run_cli("web", "hash-password", stdin="\n").returncode == 2


def test_the_desk_takes_connections_from_the_moment_its_address_is_printed() -> None:
    """`carebot web` prints the URL once `bind` returns; a browser that comes before uvicorn has started
    serving must wait in the kernel's queue, not be refused."""
    sock = bind("127.0.0.1", 0)
    try:
        with socket.create_connection(sock.getsockname()[:2], timeout=5):
            pass
    finally:
        sock.close()


def test_web_command_serves_until_sigterm_and_keeps_secrets_out_of_its_output(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'cli.db'}")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "web", "--config", str(config), "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **ENV},
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert f"http://127.0.0.1:{port}/" in first, first
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            assert http.get("/health").text == "ok"  # at once: the desk listens before it prints its address
            page = http.get("/login")
            assert page.status_code == 200
            wrong = http.post("/login", data={"csrf": csrf_of(page.text), "token": "wrong-token"})
            assert wrong.status_code == 401
            assert log_in(http)
        process.send_signal(signal.SIGTERM)
        output = first + process.communicate(timeout=15)[0]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert ADMIN_TOKEN not in output and SECRET_KEY not in output
    assert "desk: alice logged in" in output


def test_web_command_refuses_a_desk_nobody_can_log_in_to(tmp_path: Path) -> None:
    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'cli.db'}", users={})
    path.write_text(path.read_text().replace("  admin_token: ${DESK_TOKEN}\n", ""))
    done = run_cli("web", "--config", str(path), env=ENV)
    assert done.returncode == 2
    assert "needs someone to log in" in done.stderr
