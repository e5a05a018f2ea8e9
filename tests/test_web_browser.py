"""The approval desk in a real headless Chromium (Debian's package, driven by Playwright), with the bot
running against mastodon-mock: what a support lead does, and what customers then see on the server."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mastodon_mock.testing import MockServer

from bot.cli.web import start_web_in_thread
from bot.config import load_config
from bot.models import ReplyKind, ReplyState
from bot.run.app import App
from bot.run.daemon import run_once
from bot.web.passwords import hash_password
from bot.web.server import WebHandle
from tests import configs
from tests.conftest import StartBot
from tests.peers.mastodon import BRAND, client, free_port, post_as

pytestmark = pytest.mark.slow  # a real browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORDS = {"alice": "alice-desk-pass", "bob": "bob-desk-pass"}
COMPLAINT = "@brand my order never arrived and I was charged twice! email me at alice.w@example.org"


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install -y chromium, or .ci/install-chromium.sh)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright; never `playwright install`)"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    problem = _missing()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{problem} (CI=true: the browser tests must run)")
        pytest.skip(problem)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class Running:
    app: App
    desk: WebHandle
    mastodon: MockServer

    def cycle(self) -> None:
        run_once(self.app)


def write_config(directory: Path, base_url: str, port: int) -> Path:
    users = "".join(f'    {name}: "{hash_password(pw)}"\n' for name, pw in PASSWORDS.items())
    web = f"""web:
  host: 127.0.0.1
  port: {port}
  secret_key: browser-test-cookie-key
  users:
{users}"""
    # The fixed-notifications spread 10 ms apart, not 40 s: the incident test waits for all five.
    incidents = "incidents:\n  notify_per_hour: 360000\n"
    return configs.write_config(
        directory,
        db_url=f"sqlite:///{directory / 'bot.db'}",
        accounts=configs.mastodon_account(base_url, mode="approve"),
        sections=web + incidents,
    )


@pytest.fixture
def running(tmp_path: Path, mastodon_server: MockServer, browser: Any, running_bot: StartBot) -> Iterator[Running]:
    """The bot in approve mode after its first cycle, and the desk next to it (as `carebot run --web`)."""
    config = load_config(write_config(tmp_path, mastodon_server.base_url, free_port()), {"BRAND_TOKEN": "brand_token"})
    app = running_bot(config)  # after its first cycle, a new account answers from now on
    desk = start_web_in_thread(config, app.storage, classifier=app.classifier, playbooks=app.playbooks)
    yield Running(app, desk, mastodon_server)
    desk.stop()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


def log_in(page: Any, url: str, user: str) -> None:
    page.goto(f"{url}/")
    assert "/login" in page.url
    page.fill("#user", user)
    page.fill("#password", PASSWORDS[user])
    page.click("button:has-text('Log in')")
    page.wait_for_selector(".figures")


def replies_on_server(base_url: str, post_id: str) -> list[dict[str, Any]]:
    """The brand's public replies to `post_id` (a private follow-up answers it too, as a direct status)."""
    with client(base_url, BRAND) as api:
        me = api.account_verify_credentials()
        statuses = api.account_statuses(me["id"], limit=40)
    return [s for s in statuses if str(s["in_reply_to_id"]) == post_id and s["visibility"] != "direct"]


def queued_public(app: App, post_id: str) -> int:
    for item in app.storage.replies.queue():
        if item.mention.mention.post_id == post_id and item.reply.kind is ReplyKind.PUBLIC:
            return item.reply.id
    raise AssertionError(f"no public reply to {post_id} in the queue")


def test_log_in_edit_approve_and_the_reply_is_posted_once(running: Running, page: Any) -> None:
    from playwright.sync_api import expect

    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    post = post_as(running.mastodon.base_url, "alice", COMPLAINT)
    post_as(
        running.mastodon.base_url, "boris", "@brand <script>alert('xss')</script> <img src=x onerror=alert(2)> help"
    )
    running.cycle()
    reply_id = queued_public(running.app, str(post["id"]))

    log_in(page, running.desk.url, "alice")
    item = page.locator(f"#item-{reply_id}")
    expect(item).to_contain_text("charged twice")
    expect(item).to_contain_text("complaint")
    expect(item.locator(".urgent-badge")).to_be_visible()
    expect(item).not_to_contain_text("alice.w@example.org")
    expect(page.locator("body")).to_contain_text("<script>alert('xss')</script>")  # shown as text
    assert dialogs == []

    edited = "@alice We're so sorry about the double charge. Please email help@acme.example and we'll fix it today."
    area = item.locator("textarea[name=text]")
    area.fill(edited)
    expect(item.locator("form.approve > .count-row .used")).to_have_text(str(len(edited)))
    item.locator("button:has-text('Approve')").click()
    expect(page.locator(".flash-ok")).to_contain_text(f"Reply #{reply_id} approved with your edit")
    expect(page.locator(f"#item-{reply_id}")).to_have_count(0)
    stored = running.app.storage.replies.get(reply_id)
    assert stored.approved_by == "alice" and stored.decided_by == "alice"

    running.cycle()
    running.cycle()
    on_server = replies_on_server(running.mastodon.base_url, str(post["id"]))
    assert len(on_server) == 1
    assert "double charge" in on_server[0]["content"]
    assert running.app.storage.replies.get(reply_id).state is ReplyState.SENT

    page.click("nav >> text=History")
    expect(page.locator(f"#reply-{reply_id}")).to_contain_text("Sent after approval by alice")


def test_two_people_approving_at_once_post_once(running: Running, browser: Any) -> None:
    from playwright.sync_api import expect

    post = post_as(running.mastodon.base_url, "alice", COMPLAINT)
    running.cycle()
    reply_id = queued_public(running.app, str(post["id"]))
    contexts = [browser.new_context(), browser.new_context()]
    try:
        pages = [context.new_page() for context in contexts]
        for page, user in zip(pages, ("alice", "bob"), strict=True):
            log_in(page, running.desk.url, user)
            expect(page.locator(f"#item-{reply_id}")).to_be_visible()
        buttons = [p.locator(f"#item-{reply_id} button:has-text('Approve')") for p in pages]
        for button in buttons:  # both requests leave before either answer is read
            button.click(no_wait_after=True)
        for page in pages:
            expect(page.locator(".flash")).to_be_visible()
        messages = [page.locator(".flash").inner_text() for page in pages]
    finally:
        for context in contexts:
            context.close()
    winners = [m for m in messages if re.search(rf"Reply #{reply_id} approved;", m)]
    losers = [m for m in messages if re.search(rf"Reply #{reply_id} was already approved by (alice|bob)", m)]
    assert len(winners) == 1 and len(losers) == 1, messages

    running.cycle()
    running.cycle()
    assert len(replies_on_server(running.mastodon.base_url, str(post["id"]))) == 1


def test_keyboard_and_phone_screen(running: Running, browser: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    base = running.mastodon.base_url
    post_as(base, "layla", "@brand الطلب وصلني ناقص وما حد يرد علي، ابغى حل اليوم")
    post_as(base, "boris", "@brand приложение не работает третий день, деньги списали, а доступа нет!!!")
    post_as(base, "alice", COMPLAINT)
    post_as(base, "dewi", "@brand kak, cara ganti email di akun gimana ya?")
    post_as(base, "alice", "@brand does the app have a dark mode?")
    running.cycle()

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        log_in(page, running.desk.url, "alice")
        shot = Path(os.environ.get("CAREBOT_SCREENSHOT", tmp_path / "queue.png"))
        page.screenshot(path=str(shot), full_page=False)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

        page.set_viewport_size({"width": 390, "height": 844})
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page is {overflow}px wider than a phone screen"
        page.screenshot(path=str(shot.with_name("queue-phone.png")))

        items = page.locator(".queue > .item")
        expect(items.first).to_have_class(re.compile(r"\bselected\b"))
        page.keyboard.press("j")
        expect(items.nth(1)).to_have_class(re.compile(r"\bselected\b"))
        page.keyboard.press("k")
        page.keyboard.press("e")
        area = items.first.locator("textarea[name=text]")
        expect(area).to_be_focused()
        area.fill("x" * 501)
        expect(items.first.locator("form.approve > .count-row .count")).to_have_class(re.compile(r"\bover\b"))
        expect(items.first.locator("button:has-text('Approve')")).to_be_disabled()
        page.keyboard.press("Escape")
        page.keyboard.press("r")
        expect(items.first.locator("input[name=reason]")).to_be_focused()
        first_id = items.first.get_attribute("data-id")
        page.keyboard.type("asked on the phone already")
        page.keyboard.press("Enter")
        expect(page.locator(".flash-ok")).to_contain_text(f"Reply #{first_id} rejected")
        assert running.app.storage.replies.get(int(first_id or 0)).rejected_reason == "asked on the phone already"

        page.keyboard.press("a")  # the next one, as drafted
        expect(page.locator(".flash-ok")).to_contain_text("approved; it goes out with the next cycle")
    finally:
        context.close()


def direct_on_server(base_url: str, post_id: str) -> list[dict[str, Any]]:
    """The brand's private follow-ups to `post_id` (direct statuses in its thread)."""
    with client(base_url, BRAND) as api:
        me = api.account_verify_credentials()
        statuses = api.account_statuses(me["id"], limit=40)
    return [s for s in statuses if str(s["in_reply_to_id"]) == post_id and s["visibility"] == "direct"]


def test_a_private_follow_up_is_shown_edited_and_approved_with_its_reply(running: Running, page: Any) -> None:
    from playwright.sync_api import expect

    post = post_as(running.mastodon.base_url, "alice", COMPLAINT)
    running.cycle()
    reply_id = queued_public(running.app, str(post["id"]))
    direct = next(
        r
        for r in running.app.storage.replies.for_mention(running.app.storage.replies.get(reply_id).mention_id)
        if r.kind is ReplyKind.DIRECT
    )

    log_in(page, running.desk.url, "alice")
    item = page.locator(f"#item-{reply_id}")
    follow_up = item.locator(".follow-up textarea")
    expect(item.locator(".follow-up")).to_contain_text("Then, privately")
    expect(follow_up).to_have_value(direct.text)
    expect(page.locator(f"#item-{direct.id}")).to_have_count(0)  # not an item of its own
    expect(item.locator("form.approve button[type=submit]")).to_have_text("Approve both")

    follow_up.fill("")
    expect(item.locator("button:has-text('Approve both')")).to_be_disabled()  # an empty follow-up cannot go
    edited = "Hi Alice, Sam from Acme here. Which order number was charged twice?"
    follow_up.fill(edited)
    expect(item.locator(".follow-up .count .used")).to_have_text(str(len(edited)))
    item.locator("button:has-text('Approve both')").click()
    expect(page.locator(".flash-ok")).to_contain_text(
        f"Reply #{reply_id} approved; it goes out with the next cycle, then its private follow-up"
    )
    expect(page.locator(f"#approved-{reply_id}")).to_contain_text(edited)

    running.cycle()
    running.cycle()
    assert len(replies_on_server(running.mastodon.base_url, str(post["id"]))) == 1
    (dm,) = direct_on_server(running.mastodon.base_url, str(post["id"]))
    assert "Which order number was charged twice?" in dm["content"]
    assert running.app.storage.replies.get(direct.id).decided_by == "alice"


def test_logout_ends_the_session_for_a_copied_cookie_and_an_approval_is_taken_back(
    running: Running, browser: Any
) -> None:
    from playwright.sync_api import expect

    post = post_as(running.mastodon.base_url, "boris", "@brand how do I reach support by email?")
    running.cycle()
    reply_id = queued_public(running.app, str(post["id"]))
    mine, thief = browser.new_context(), browser.new_context()
    try:
        page = mine.new_page()
        log_in(page, running.desk.url, "alice")
        thief.add_cookies(mine.cookies())  # a copy of the cookie, made before logging out
        stolen = thief.new_page()
        stolen.goto(f"{running.desk.url}/")
        expect(stolen.locator(f"#item-{reply_id}")).to_be_visible()

        page.locator(f"#item-{reply_id} button:has-text('Approve')").click()
        expect(page.locator(f"#approved-{reply_id}")).to_be_visible()
        page.locator(f"#approved-{reply_id} button:has-text('Take back the approval')").click()
        expect(page.locator(".flash-ok")).to_contain_text(f"Reply #{reply_id} is no longer approved")
        expect(page.locator(f"#item-{reply_id}")).to_be_visible()

        page.click("button:has-text('Log out')")
        expect(page.locator("#password")).to_be_visible()
        stolen.reload()
        assert "/login" in stolen.url  # the copy opens nothing any more
        expect(stolen.locator("#password")).to_be_visible()
    finally:
        mine.close()
        thief.close()
    running.cycle()
    assert replies_on_server(running.mastodon.base_url, str(post["id"])) == []
    assert running.app.storage.replies.get(reply_id).state is ReplyState.PENDING


def test_a_case_page_reads_the_thread_replies_privately_and_resolves(running: Running, page: Any) -> None:
    from playwright.sync_api import expect

    base = running.mastodon.base_url
    post = post_as(base, "alice", COMPLAINT)
    running.cycle()
    (stored,) = [m for m in running.app.storage.mentions.all() if m.mention.post_id == str(post["id"])]
    assert stored.case_id is not None
    case_id = stored.case_id

    log_in(page, running.desk.url, "alice")
    page.click("nav >> text=Cases")
    page.click(f"#case-{case_id} a")
    expect(page.locator("h1")).to_contain_text(f"Case #{case_id}")
    expect(page.locator(".thread")).to_contain_text("charged twice")
    page.select_option("select.saved", index=1)  # a saved reply goes into the box, to be edited
    area = page.locator("#reply-text")
    expect(area).not_to_have_value("")
    words = "@alice We found your order: the double charge is refunded today."
    area.fill(words)
    expect(page.locator(".case-reply .count .used")).to_have_text(str(len(words)))
    page.check("input[name=private]")
    page.click("button:has-text('Send reply')")
    expect(page.locator(".flash-ok")).to_contain_text("goes out privately")
    page.fill("#resolve-note", "refunded")
    page.click("button:has-text('Resolve')")
    expect(page.locator("h1 .state")).to_have_text("resolved")

    running.cycle()
    running.cycle()
    with client(base, BRAND) as api:
        me = api.account_verify_credentials()
        statuses = api.account_statuses(me["id"], limit=40)
    private = [s for s in statuses if s["visibility"] == "direct" and "double charge is refunded" in s["content"]]
    assert len(private) == 1 and str(private[0]["in_reply_to_id"]) == str(post["id"])


def test_an_incident_is_worded_resolved_and_its_notifications_approved_from_the_desk(
    running: Running, page: Any
) -> None:
    from playwright.sync_api import expect

    from tests.test_incidents_mastodon import LOGIN, customer

    base = running.mastodon.base_url
    people = [customer(base, f"desk{n}") for n in range(5)]
    for person, (_lang, text) in zip(people, LOGIN[:5], strict=True):
        person.status_post(text)
    running.cycle()
    (incident,) = running.app.storage.incidents.listed()

    log_in(page, running.desk.url, "alice")
    page.click("nav >> text=Incidents")
    page.click(f"#incident-{incident.id} a")
    expect(page.locator("h1")).to_contain_text(f"Incident #{incident.id}")
    expect(page.locator(".members li")).to_have_count(5)
    page.fill("#wording-en", "signing in")
    page.fill("#eta", "18:00 CET")
    page.click("button:has-text('Save the words')")
    expect(page.locator(".flash-ok")).to_contain_text("use your words")
    page.fill("#resolve-note", "auth service restarted")
    page.click("button:has-text('tell everyone')")
    expect(page.locator(".flash-ok")).to_contain_text("5 people will be told")
    with client(base, BRAND) as api:
        me = api.account_verify_credentials()
        before = {s["id"] for s in api.account_statuses(me["id"], limit=40)}
    page.click("button:has-text('Approve all 5')")  # approve mode: one click for the batch
    expect(page.locator(".flash-ok")).to_contain_text("5 fixed-notifications approved")

    running.cycle()
    running.cycle()
    with client(base, BRAND) as api:
        told = [s for s in api.account_statuses(me["id"], limit=40) if s["id"] not in before]
    assert len(told) == 5  # once each
    assert len([s for s in told if "signing in" in s["content"]]) == 3  # the team's words, in English
    expect(page.locator("#drain")).to_be_visible()
