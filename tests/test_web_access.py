"""The desk as an attacker tries it: sessions that logout ends, numbers out of range, errors with the
security headers, bodies past the limit, forged client addresses, login floods, accounts that are not
yours, private follow-ups nobody saw, and approvals taken back."""

from __future__ import annotations

import asyncio
import html
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from bot.classifier import Classifier
from bot.clock import now
from bot.config import ConfigError, load_config
from bot.decide.playbooks import Playbooks, load_playbooks, vocabulary
from bot.models import ReplyKind, ReplyState
from bot.storage import Storage
from bot.web.access import MAX_ID, bounded_int
from bot.web.asgi import create_app
from bot.web.auth import Busy, HashingGate, LoginThrottle
from bot.web.passwords import hash_password, weak_hash
from bot.web.server import start_in_thread
from connectors.base import Author, Mention
from tests import configs
from tests.test_web import (
    COMPLAINT,
    ENV,
    HASHES,
    PASSWORDS,
    QUESTION,
    Desk,
    as_shown,
    csrf_of,
    follow_up_of,
    log_in,
    open_desk,
    seed,
    shown,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def brains() -> tuple[Classifier, Playbooks]:
    playbooks = load_playbooks()
    return Classifier.load(vocabulary(playbooks)), playbooks


@pytest.fixture
def desk(tmp_path: Path, brains: tuple[Classifier, Playbooks]) -> Iterator[Desk]:
    yield from open_desk(tmp_path, f"sqlite:///{tmp_path / 'desk.db'}", brains)


@pytest.fixture
def any_desk(tmp_path: Path, db_url: str, brains: tuple[Classifier, Playbooks]) -> Iterator[Desk]:
    yield from open_desk(tmp_path, db_url, brains)


# --- sessions ------------------------------------------------------------------------------------------


def test_logout_ends_the_session_for_a_copy_of_the_cookie_too(any_desk: Desk) -> None:
    desk = any_desk
    reply_id = desk.seed(QUESTION)
    csrf = log_in(desk.client)
    copied = desk.client.cookies["carebot_session"]
    assert desk.storage.sessions.count("alice") == 1
    assert desk.client.post("/logout", data={"csrf": csrf}).status_code == 303
    assert desk.storage.sessions.count("alice") == 0
    with TestClient(desk.client.app, follow_redirects=False) as thief:
        thief.cookies.set("carebot_session", copied)
        assert thief.get("/").status_code == 303  # to the login page
        forged = thief.post(f"/replies/{reply_id}/reject", data={"csrf": csrf, "reason": "stolen"})
        assert forged.status_code == 403
    assert desk.storage.replies.get(reply_id).state is ReplyState.PENDING


def test_a_session_lives_on_the_server_and_the_cookie_holds_no_user(desk: Desk) -> None:
    log_in(desk.client)
    cookie = desk.client.cookies["carebot_session"]
    import base64

    payload = base64.b64decode(cookie.split(".")[0] + "==").decode()
    assert "alice" not in payload and "csrf" not in payload and '"sid"' in payload


def test_a_login_ends_the_session_it_replaces(desk: Desk) -> None:
    csrf = log_in(desk.client)
    again = desk.client.post("/login", data={"csrf": csrf, "user": "bob", "password": PASSWORDS["bob"]})
    assert again.status_code == 303
    assert desk.storage.sessions.count() == 1 and desk.storage.sessions.count("bob") == 1


# --- numbers from the URL --------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["²", "①", "10^26", "-1", "0", "1e3", " 7", "99999999999999999999999", str(2**31)])
def test_bounded_int_refuses_what_is_not_a_plain_id(raw: str) -> None:
    assert bounded_int(raw) is None


def test_bounded_int_takes_ascii_digits_within_range() -> None:
    assert bounded_int("42") == 42 and bounded_int(str(MAX_ID)) == MAX_ID
    assert bounded_int("7", low=1, high=5) is None


@pytest.mark.parametrize("before", ["²", "①", "10^26", str(2**64), "99999999999999999999999999"])
def test_history_with_any_before_is_a_page_not_a_500(any_desk: Desk, before: str) -> None:
    log_in(any_desk.client)
    response = any_desk.client.get("/history", params={"before": before})
    assert response.status_code == 200


@pytest.mark.parametrize("reply_id", ["²", "①", str(2**63), str(2**63 - 1), str(2**31 - 1), "1" * 40, "0"])
def test_actions_on_ids_out_of_range_are_404(any_desk: Desk, reply_id: str) -> None:
    csrf = log_in(any_desk.client)
    for action in ("approve", "unapprove", "reject", "retry", "situation"):
        response = any_desk.client.post(f"/replies/{reply_id}/{action}", data={"csrf": csrf, "shown": "x"})
        assert response.status_code == 404, (action, response.text)


def test_the_last_resort_error_page_carries_the_security_headers(desk: Desk) -> None:
    log_in(desk.client)

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("the database fell over: secret details here")

    desk.storage.figures.desk = broken  # type: ignore[method-assign]
    with TestClient(desk.client.app, raise_server_exceptions=False, follow_redirects=False) as client:
        client.cookies = desk.client.cookies
        response = client.get("/")
    assert response.status_code == 500
    assert "secret details" not in response.text and "Traceback" not in response.text
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"


# --- request bodies --------------------------------------------------------------------------------------


def test_a_chunked_body_past_the_limit_is_refused_as_it_arrives(desk: Desk) -> None:
    def chunks() -> Iterator[bytes]:  # no content-length: only counting as it arrives can stop it
        for _ in range(200):
            yield b"user=" + b"a" * 16_000

    for path in ("/login", "/logout", "/replies/1/approve"):
        if path.startswith("/replies"):
            log_in(desk.client)
        response = desk.client.post(
            path, content=chunks(), headers={"content-type": "application/x-www-form-urlencoded"}
        )
        assert response.status_code == 413, path
        assert response.headers["x-frame-options"] == "DENY"
    declared = desk.client.post(
        "/login", content=b"x" * 70_000, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert declared.status_code == 413


def test_the_real_server_stops_reading_a_huge_chunked_login(desk: Desk) -> None:
    """Over a real socket: the desk answers 413 long before 300 MB are pushed, and reads no more."""
    handle = start_in_thread(desk.client.app, "127.0.0.1", 0)
    host, port = handle.url.removeprefix("http://").split(":")
    pushed = 0
    answer = b""
    try:
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(
                b"POST /login HTTP/1.1\r\nHost: desk\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
            )
            chunk = b"10000\r\n" + b"a" * 0x10000 + b"\r\n"
            sock.settimeout(0.05)
            try:
                while pushed < 300 * 2**20:
                    sock.sendall(chunk)
                    pushed += 0x10000
                    try:
                        answer += sock.recv(4096)
                    except TimeoutError:
                        continue
                    if answer:
                        break
            except OSError:
                pass  # the server closed the connection: it read no further
            sock.settimeout(5)
            try:
                while b"\r\n\r\n" not in answer:
                    data = sock.recv(4096)
                    if not data:
                        break
                    answer += data
            except OSError:
                pass
    finally:
        handle.stop()
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert pushed < 300 * 2**20


# --- the login throttle ------------------------------------------------------------------------------------


def test_a_new_forwarded_for_per_try_does_not_escape_the_throttle(desk: Desk) -> None:
    handle = start_in_thread(desk.client.app, "127.0.0.1", 0)
    try:
        with httpx.Client(base_url=handle.url, timeout=30) as http:
            token = csrf_of(http.get("/login").text)
            codes = []
            for n in range(11):
                response = http.post(
                    "/login",
                    data={"csrf": token, "token": f"guess-{n}"},
                    headers={"X-Forwarded-For": f"203.0.113.{n}", "X-Real-IP": f"198.51.100.{n}"},
                )
                codes.append(response.status_code)
    finally:
        handle.stop()
    assert codes[:10] == [401] * 10
    assert codes[10] == 429


def test_a_trusted_proxy_s_forwarded_for_is_believed(desk: Desk) -> None:
    handle = start_in_thread(desk.client.app, "127.0.0.1", 0, trusted_proxies=["127.0.0.1"])
    try:
        with httpx.Client(base_url=handle.url, timeout=30) as http:
            token = csrf_of(http.get("/login").text)
            codes = [
                http.post(
                    "/login", data={"csrf": token, "token": "guess"}, headers={"X-Forwarded-For": f"203.0.113.{n}"}
                ).status_code
                for n in range(11)
            ]
    finally:
        handle.stop()
    assert codes == [401] * 11  # eleven clients behind the proxy, one failure each


def test_the_throttle_keeps_bounded_memory_and_counts_every_name_of_a_client() -> None:
    throttle = LoginThrottle(failures=10, per_client=50, max_keys=100)
    for n in range(300):
        throttle.failed(f"10.0.{n // 250}.{n % 250}", f"{n}-" + "x" * 60_000)
    assert throttle.size() <= 200
    one = LoginThrottle(failures=10, per_client=50)
    for n in range(50):
        assert not one.blocked("10.0.0.1", f"name-{n}")
        one.failed("10.0.0.1", f"name-{n}")
    assert one.blocked("10.0.0.1", "a-new-name")
    assert not one.blocked("10.0.0.2", "a-new-name")


def test_password_checks_beyond_the_gate_are_refused_not_queued() -> None:
    gate = HashingGate(limit=1, waiting=1)
    release = threading.Event()

    def slow() -> str:
        release.wait(10)
        return "checked"

    async def flood() -> list[object]:
        tasks = [asyncio.ensure_future(gate.check(slow)) for _ in range(4)]
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        loop = asyncio.get_running_loop()
        loop.call_later(0.2, release.set)
        return await asyncio.gather(*tasks, return_exceptions=True)

    results = asyncio.run(flood())
    assert results.count("checked") == 2
    assert sum(isinstance(r, Busy) for r in results) == 2


def test_logins_while_the_gate_is_full_get_503(desk: Desk) -> None:
    desk.client.app.state.desk.hashing = HashingGate(limit=0, waiting=0)
    page = desk.client.get("/login")
    response = desk.client.post(
        "/login", data={"csrf": csrf_of(page.text), "user": "alice", "password": PASSWORDS["alice"]}
    )
    assert response.status_code == 503 and response.headers["retry-after"]
    assert "busy" in response.text


# --- password hashes ---------------------------------------------------------------------------------------


def test_importing_the_desk_and_the_command_line_hashes_nothing() -> None:
    code = (
        "import bot.cli, bot.web.asgi, bot.web.auth as a; "
        "assert a._dummy_line.cache_info().currsize == 0, 'hashed at import'; print('ok')"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "ok", done.stderr


def test_an_old_cost_hash_still_logs_in_and_the_person_is_told(tmp_path: Path, brains: tuple) -> None:
    old = hash_password("old-pass-123", n=2**14)
    assert weak_hash(old) and not weak_hash(HASHES["alice"])
    desk = _desk_with(tmp_path, brains, users={**HASHES, "carol": old})
    with TestClient(desk, follow_redirects=False) as client:
        page = client.get("/login")
        response = client.post("/login", data={"csrf": csrf_of(page.text), "user": "carol", "password": "old-pass-123"})
        assert response.status_code == 303
        assert "old, weaker hash" in client.get("/").text


# --- accounts a person may act on --------------------------------------------------------------------------


TWO_ACCOUNTS = [
    configs.mastodon_account("http://127.0.0.1:9", name="acme-mastodon", mode="approve"),
    configs.mastodon_account("http://127.0.0.1:9", name="acme-help", mode="approve"),
]


def _desk_with(tmp_path: Path, brains: tuple, users: dict[str, str] | None = None, access: str = "") -> object:
    users = users or HASHES
    lines = "".join(f'    {name}: "{line}"\n' for name, line in users.items())
    web = f"web:\n  admin_token: ${{DESK_TOKEN}}\n  secret_key: ${{DESK_SECRET}}\n  users:\n{lines}{access}"
    path = configs.write_config(
        tmp_path, db_url=f"sqlite:///{tmp_path / 'access.db'}", accounts=TWO_ACCOUNTS, sections=web
    )
    config = load_config(path, ENV)
    storage = Storage.open(config.storage.url)
    for account in config.accounts:
        storage.accounts.ensure(account.name, "mastodon")
    app = create_app(config, storage, *brains)
    app.state.test_config = config
    return app


def test_a_user_acts_only_on_the_accounts_given_to_them(tmp_path: Path, brains: tuple) -> None:
    app = _desk_with(tmp_path, brains, access="  access:\n    bob: [acme-help]\n")
    desk = app.state.desk  # type: ignore[attr-defined]
    theirs = seed(desk.storage, *brains, app.state.test_config, COMPLAINT)  # type: ignore[attr-defined]
    mine = _record_for(desk.storage, brains, app.state.test_config, "acme-help", QUESTION)  # type: ignore[attr-defined]
    with TestClient(app, follow_redirects=False) as bob:
        csrf = log_in(bob, "bob")
        page = bob.get("/").text
        assert f'id="item-{mine}"' in page and f'id="item-{theirs}"' not in page
        assert re.search(r'data-figure="waiting_now">1<', page)
        for action, extra in (("approve", {"shown": shown_of(desk, theirs)}), ("reject", {"reason": "no"})):
            response = bob.post(f"/replies/{theirs}/{action}", data={"csrf": csrf, **extra})
            assert response.status_code == 404, action
        assert desk.storage.replies.get(theirs).state is ReplyState.PENDING
        desk.storage.replies.reject(theirs, "alice", "handled elsewhere")
        assert f"#{theirs}" not in bob.get("/history").text
    with TestClient(app, follow_redirects=False) as alice:
        log_in(alice, "alice")
        page = alice.get("/").text
        assert f'id="item-{mine}"' in page
        assert f"#{theirs}" in alice.get("/history").text


def shown_of(desk: object, reply_id: int) -> str:
    return desk.storage.replies.get(reply_id).text  # type: ignore[attr-defined,no-any-return]


def _record_for(storage: Storage, brains: tuple, config: object, account: str, text: str) -> int:
    from datetime import timedelta

    from bot.clock import now
    from bot.decide.router import Context, decide
    from bot.run.pipeline import classified, reply_state
    from connectors.base import Author, Mention

    classifier, playbooks = brains
    mention = Mention("mastodon", f"help-{text[:8]}", "1", Author("u-x", "xena", "Xena"), text, now() - timedelta(1))
    result = classifier.classify(text)
    context = Context(brand=config.brand, platform="mastodon", max_characters=500, text_length=len)  # type: ignore[attr-defined]
    decision = decide(mention, result, playbooks, context)
    from bot.models import Mode

    mention_id = storage.mentions.record(
        account, mention, classified(result), decision, reply_state(decision, Mode.APPROVE)
    )
    assert mention_id is not None
    return storage.replies.for_mention(mention_id)[0].id


def test_access_names_real_users_and_accounts(tmp_path: Path) -> None:
    lines = "".join(f'    {name}: "{line}"\n' for name, line in HASHES.items())
    access = "  access:\n    bob: [acme-nowhere]\n    mallory: [acme-help]\n"
    web = f"web:\n  users:\n{lines}{access}"
    path = configs.write_config(tmp_path, db_url="sqlite:///x.db", accounts=TWO_ACCOUNTS, sections=web)
    with pytest.raises(ConfigError) as caught:
        load_config(path, ENV)
    problems = "\n".join(caught.value.problems)
    assert re.search(r"carebot.yaml:\d+: web.access.bob: no account named 'acme-nowhere'", problems)
    assert "web.access.mallory: 'mallory' is not in web.users" in problems


# --- private follow-ups --------------------------------------------------------------------------------------


def test_a_follow_up_is_shown_under_its_reply_and_not_approved_unseen(any_desk: Desk) -> None:
    desk = any_desk
    reply_id = desk.seed(COMPLAINT)
    direct = follow_up_of(desk.storage, reply_id)
    assert direct is not None and direct.state is ReplyState.PENDING
    csrf = log_in(desk.client)
    page = desk.client.get("/").text
    item = re.search(rf'id="item-{reply_id}".*?</li>', page, re.S)
    assert item and 'name="direct_text"' in item.group(0) and "Then, privately" in item.group(0)
    assert f'name="direct_id" value="{direct.id}"' in item.group(0)
    assert f'id="item-{direct.id}"' not in page  # not an item of its own

    text = shown(desk, reply_id)
    crafted = desk.client.post(f"/replies/{reply_id}/approve", data={"csrf": csrf, "shown": text, "text": text})
    assert crafted.status_code == 303
    assert "was not shown" in desk.client.get("/").text
    alone = desk.client.post(f"/replies/{direct.id}/approve", data={"csrf": csrf, "shown": direct.text})
    assert alone.status_code == 303
    assert "approved with its public reply" in desk.client.get("/").text
    stale = {
        **as_shown(desk.storage, reply_id),
        "direct_shown": "an older follow-up",
        "direct_text": "an older follow-up",
    }
    desk.client.post(f"/replies/{reply_id}/approve", data={"csrf": csrf, "shown": text, "text": text, **stale})
    assert "changed while you were looking at it" in desk.client.get("/").text
    for one in (reply_id, direct.id):
        assert desk.storage.replies.get(one).state is ReplyState.PENDING


def test_an_edited_follow_up_is_approved_with_its_reply(any_desk: Desk) -> None:
    desk = any_desk
    reply_id = desk.seed(COMPLAINT)
    csrf = log_in(desk.client)
    text = shown(desk, reply_id)
    fields = as_shown(desk.storage, reply_id)
    fields["direct_text"] = "Hi Alice, this is Sam from Acme.\r\nWhat is your order number?"
    response = desk.client.post(
        f"/replies/{reply_id}/approve", data={"csrf": csrf, "shown": text, "text": text, **fields}
    )
    assert response.status_code == 303
    assert "then its private follow-up" in desk.client.get("/").text
    direct = follow_up_of(desk.storage, reply_id)
    assert direct is not None and direct.state is ReplyState.APPROVED
    assert direct.text == "Hi Alice, this is Sam from Acme.\nWhat is your order number?"
    assert direct.decided_by == "alice" and direct.approved_by == "alice"
    too_long = desk.seed(COMPLAINT.replace("twice", "three times"))
    fields = {**as_shown(desk.storage, too_long), "direct_text": "x" * 501}
    refused = desk.client.post(
        f"/replies/{too_long}/approve",
        data={"csrf": csrf, "shown": shown(desk, too_long), "text": shown(desk, too_long), **fields},
    )
    assert refused.status_code == 422 and "private follow-up" in refused.text


def test_a_failed_follow_up_is_listed_to_retry_or_reject(desk: Desk) -> None:
    reply_id = desk.seed(COMPLAINT)
    desk.storage.replies.approve(reply_id, "alice")
    for one in (reply_id, follow_up_of(desk.storage, reply_id).id):  # type: ignore[union-attr]
        assert desk.storage.replies.claim(desk.storage.replies.get(one), __import__("datetime").timedelta(minutes=1))
    desk.storage.replies.mark_sent(reply_id, "p1")
    direct = follow_up_of(desk.storage, reply_id)
    assert direct is not None
    desk.storage.replies.park(direct.id, "Unavailable: 503")
    csrf = log_in(desk.client)
    page = desk.client.get("/").text
    assert f'id="item-{direct.id}"' in page and "Private message" in page
    desk.client.post(f"/replies/{direct.id}/retry", data={"csrf": csrf})
    assert desk.storage.replies.get(direct.id).state is ReplyState.APPROVED


# --- taking an approval back -------------------------------------------------------------------------------


def test_an_approval_can_be_taken_back_until_it_is_sent(any_desk: Desk) -> None:
    desk = any_desk
    reply_id = desk.seed(COMPLAINT)
    csrf = log_in(desk.client)
    text = shown(desk, reply_id)
    desk.client.post(
        f"/replies/{reply_id}/approve",
        data={"csrf": csrf, "shown": text, "text": text, **as_shown(desk.storage, reply_id)},
    )
    page = desk.client.get("/").text
    assert f'id="approved-{reply_id}"' in page and "Take back the approval" in page
    assert desk.client.post(f"/replies/{reply_id}/unapprove", data={"csrf": csrf}).status_code == 303
    assert "no longer approved" in desk.client.get("/").text
    reply = desk.storage.replies.get(reply_id)
    direct = follow_up_of(desk.storage, reply_id)
    assert reply.state is ReplyState.PENDING and reply.approved_by is None
    assert direct is not None and direct.state is ReplyState.PENDING

    desk.storage.replies.approve(reply_id, "bob")
    assert desk.storage.replies.claim(desk.storage.replies.get(reply_id), __import__("datetime").timedelta(minutes=1))
    desk.client.post(f"/replies/{reply_id}/unapprove", data={"csrf": csrf})
    assert desk.storage.replies.get(reply_id).state is ReplyState.SENDING  # too late: being sent
    assert f"Reply #{reply_id} was approved by bob and is being sent right now" in desk.client.get("/").text
    assert desk.storage.replies.get(reply_id).kind is ReplyKind.PUBLIC


def _case_post(app: Any, brains: tuple, account_name: str, author: str, text: str) -> int:
    """A post handled as the daemon handles it, case included; the case's id."""
    from bot.decide.router import Context
    from bot.run.cases import decide_in_case
    from bot.run.pipeline import classified, reply_state

    classifier, playbooks = brains
    config, storage = app.state.test_config, app.state.desk.storage
    account = config.account(account_name)
    mention = Mention(
        "mastodon", f"case-{account_name}-{author}", "1", Author(f"u-{author}", author, author), text, now()
    )
    result = classifier.classify(text)
    context = Context(brand=config.brand, platform="mastodon", max_characters=500, text_length=len)
    decision, plan = decide_in_case(config, storage, playbooks, account, mention, result, context)
    mention_id = storage.mentions.record(
        account_name, mention, classified(result), decision, reply_state(decision, account.mode), plan
    )
    assert mention_id is not None
    case_id = storage.mentions.get(mention_id).case_id
    assert case_id is not None
    return int(case_id)


def test_cases_of_other_accounts_are_not_there_for_a_limited_user(tmp_path: Path, brains: tuple) -> None:
    app: Any = _desk_with(tmp_path, brains, access="  access:\n    bob: [acme-help]\n")
    their_case = _case_post(app, brains, "acme-mastodon", "alice", COMPLAINT)
    my_case = _case_post(app, brains, "acme-help", "xena", COMPLAINT.replace("twice", "three times"))
    with TestClient(app, follow_redirects=False) as bob:
        csrf = log_in(bob, "bob")
        listed = bob.get("/cases?show=active").text
        assert f'id="case-{my_case}"' in listed and f'id="case-{their_case}"' not in listed
        assert bob.get(f"/cases/{my_case}").status_code == 200
        assert bob.get(f"/cases/{their_case}").status_code == 404
        note = bob.post(f"/cases/{their_case}/note", data={"csrf": csrf, "text": "peeking"})
        assert note.status_code == 404
        assert bob.get(f"/cases/{2**40}").status_code == 404
    with TestClient(app, follow_redirects=False) as alice:
        log_in(alice, "alice")
        assert alice.get(f"/cases/{their_case}").status_code == 200


def test_incidents_of_other_accounts_are_not_there_for_a_limited_user(tmp_path: Path, brains: tuple) -> None:
    app: Any = _desk_with(tmp_path, brains, access="  access:\n    bob: [acme-help]\n")
    storage = app.state.desk.storage
    theirs_case = _case_post(app, brains, "acme-mastodon", "alice", COMPLAINT)
    mine_case = _case_post(app, brains, "acme-help", "xena", COMPLAINT.replace("twice", "three times"))
    theirs = storage.incidents.open("acme-mastodon", "payment", [theirs_case], now(), "test")
    mine = storage.incidents.open("acme-help", "payment", [mine_case], now(), "test")
    assert theirs is not None and mine is not None
    with TestClient(app, follow_redirects=False) as bob:
        csrf = log_in(bob, "bob")
        listed = bob.get("/incidents").text
        assert f"/incidents/{mine.id}" in listed and f"/incidents/{theirs.id}" not in listed
        assert bob.get(f"/incidents/{mine.id}").status_code == 200
        assert bob.get(f"/incidents/{theirs.id}").status_code == 404
        resolve = bob.post(f"/incidents/{theirs.id}/false-alarm", data={"csrf": csrf, "note": "not ours"})
        assert resolve.status_code == 404
        assert storage.incidents.get(theirs.id).state == "open"
        merged = bob.post(f"/incidents/{mine.id}/merge", data={"csrf": csrf, "into": str(theirs.id)})
        assert merged.status_code == 303
        assert "merges only into another of the same account" in bob.get(f"/incidents/{mine.id}").text
        assert storage.incidents.get(mine.id).state == "open"


def _words_form(page: str) -> dict[str, str]:
    """The incident page's words form as the browser would send it unchanged."""
    form = page[page.index('class="incident-words"') : page.index("</form>", page.index('class="incident-words"'))]
    return {name: html.unescape(value) for name, value in re.findall(r'name="([^"]+)" value="([^"]*)"', form)}


def test_two_people_saving_an_incidents_words_keep_each_others(tmp_path: Path, brains: tuple) -> None:
    """Alice set the English words and the fix time; Bob, on the page he had opened before, changed only
    the Russian words: the whole form was saved, Alice's words and the fix time were gone, and both were
    told their words were in use."""
    app: Any = _desk_with(tmp_path, brains)
    storage = app.state.desk.storage
    english = _case_post(app, brains, "acme-mastodon", "alice", COMPLAINT)
    russian = _case_post(app, brains, "acme-mastodon", "boris", "@acme деньги списали дважды, оплата не прошла!")
    incident = storage.incidents.open("acme-mastodon", "payment", [english, russian], now(), "test")
    assert incident is not None
    page = f"/incidents/{incident.id}"
    with TestClient(app, follow_redirects=False) as alice, TestClient(app, follow_redirects=False) as bob:
        alice_csrf, bob_csrf = log_in(alice, "alice"), log_in(bob, "bob")
        alice_form, bob_form = _words_form(alice.get(page).text), _words_form(bob.get(page).text)
        alice_form |= {"csrf": alice_csrf, "wording_en": "card payments", "eta": "18:00 CET"}
        assert alice.post(f"{page}/word", data=alice_form).status_code == 303
        bob_form |= {"csrf": bob_csrf, "wording_ru": "оплатой картой"}
        assert bob.post(f"{page}/word", data=bob_form).status_code == 303
        saved = storage.incidents.get(incident.id)
        assert saved.wording.get("en") == "card payments" and saved.wording.get("ru") == "оплатой картой"
        assert saved.eta == "18:00 CET"
        # Both changed the English words: the later one is refused, and says what they are now.
        bob_form |= {"wording_ru": bob_form["seen_wording_ru"], "wording_en": "paying"}
        bob.post(f"{page}/word", data=bob_form)
        assert "changed while you were looking: now “card payments”" in html.unescape(bob.get(page).text)
        assert storage.incidents.get(incident.id).wording["en"] == "card payments"


def test_a_case_is_handed_over_in_the_desk_only_to_someone_who_may_open_it(tmp_path: Path, brains: tuple) -> None:
    """The desk could only take a case or give it up: handing it to a colleague took the command line, and
    "Take it" silently took a case from whoever had it."""
    app: Any = _desk_with(tmp_path, brains, access="  access:\n    bob: [acme-help]\n")
    storage = app.state.desk.storage
    theirs = _case_post(app, brains, "acme-mastodon", "alice", COMPLAINT)
    shared = _case_post(app, brains, "acme-help", "xena", COMPLAINT.replace("twice", "three times"))
    with TestClient(app, follow_redirects=False) as alice, TestClient(app, follow_redirects=False) as bob:
        csrf = log_in(alice, "alice")
        assert 'name="to"' not in alice.get(f"/cases/{theirs}").text  # bob may not open it: nobody to hand to
        alice.post(f"/cases/{theirs}/assign", data={"csrf": csrf, "to": "bob"})  # a forged form
        assert "bob may not act on acme-mastodon" in html.unescape(alice.get(f"/cases/{theirs}").text)
        assert storage.cases.get(theirs).assigned_to is None
        assert re.search(r'<option value="bob">bob</option>', alice.get(f"/cases/{shared}").text)
        alice.post(f"/cases/{shared}/assign", data={"csrf": csrf, "to": "bob"})
        assert storage.cases.get(shared).assigned_to == "bob"
        assert "is with bob now" in alice.get(f"/cases/{shared}").text
        alice.post(f"/cases/{shared}/assign", data={"csrf": csrf, "take": "1"})
        assert storage.cases.get(shared).assigned_to == "alice"
        bob_csrf = log_in(bob, "bob")
        assert "Take it from alice" in bob.get(f"/cases/{shared}").text
        bob.post(f"/cases/{shared}/assign", data={"csrf": bob_csrf, "take": "1"})
        assert "instead of alice" in bob.get(f"/cases/{shared}").text


def test_two_people_answering_one_case_from_open_pages_are_told_of_each_other(tmp_path: Path, brains: tuple) -> None:
    """Alice and Bob both had the case open and both answered: both replies went out, and Bob never saw
    that Alice had just written."""
    app: Any = _desk_with(tmp_path, brains)
    storage = app.state.desk.storage
    case = _case_post(app, brains, "acme-mastodon", "xena", COMPLAINT)

    def reply_form(client: TestClient, csrf: str, text: str) -> dict[str, str]:
        page = client.get(f"/cases/{case}").text
        hidden = dict(re.findall(r'name="(request_key|seen_reply)" value="([^"]*)"', page))
        return {"csrf": csrf, "text": text, **hidden}

    with TestClient(app, follow_redirects=False) as alice, TestClient(app, follow_redirects=False) as bob:
        alice_csrf, bob_csrf = log_in(alice, "alice"), log_in(bob, "bob")
        alice_form = reply_form(alice, alice_csrf, "We refunded the second charge.")
        bob_form = reply_form(bob, bob_csrf, "Checking with the warehouse now.")
        assert alice.post(f"/cases/{case}/reply", data=alice_form).status_code == 303
        refused = bob.post(f"/cases/{case}/reply", data=bob_form)
        assert refused.status_code == 422 and "alice replied meanwhile" in refused.text
        assert ">Checking with the warehouse now.</textarea>" in refused.text  # his words kept
        assert bob.post(f"/cases/{case}/reply", data=reply_form(bob, bob_csrf, "Also checking.")).status_code == 303
    team = [r.decided_by for r in storage.cases.replies(case) if r.purpose == "team"]
    assert team == ["alice", "bob"]
