"""People's data: `storage.retention` masks and erases old texts, `carebot forget` erases one person (an
erasure request) and says so in an audit line without the data, and no log line at any level carries
personal data. The whole bot against mastodon-mock, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import logging
from datetime import timedelta
from pathlib import Path

import pytest
from mastodon_mock.testing import MockServer

from bot.cli import main as carebot
from bot.clock import now
from bot.config import load_config
from bot.config.settings import StorageConfig
from bot.models import ReplyKind, ReplyState
from bot.run.app import App
from bot.run.cases import team_reply
from bot.run.daemon import run_once
from bot.run.decisions import record_decision
from bot.run.privacy import apply_retention
from bot.storage import NotFound
from tests import configs
from tests.conftest import StartBot
from tests.peers.fault_proxy import FaultProxy, notifications_with
from tests.peers.mastodon import post_as
from tests.test_faults_mastodon import brand_replies

pytestmark = pytest.mark.slow  # the whole bot against mastodon-mock

ACCOUNT = "acme-mastodon"
ENV = {"BRAND_TOKEN": "brand_token"}
# Personal data in the four languages, in the formats the masker finds (tests/test_personal_data.py).
SECRETS = {
    "alice": ("@brand my order never arrived, call me at 415-555-0134 or jane at example dot org", "415-555-0134"),
    "boris": ("@brand деньги списали дважды, мой номер +7 (912) 345-67-89, паспорт 4510 123456", "345-67-89"),
    "dewi": (
        "@brand pesanan belum sampai, hubungi aku di 0812-3456-7890, rekening DE89 3704 0044 0532 0130 00",
        "0812-3456-7890",
    ),
    "layla": ("@brand الطلب ما وصل، رقم جوالي 0551234567", "0551234567"),
}
LEAKS = ("415-555-0134", "jane at example dot org", "345-67-89", "4510 123456", "0812-3456-7890",
         "DE89 3704", "0551234567")  # fmt: skip


@pytest.fixture
def config_path(tmp_path: Path, mastodon_server: MockServer, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BRAND_TOKEN", "brand_token")
    account = configs.mastodon_account(mastodon_server.base_url, name=ACCOUNT)
    sections = "daemon:\n  max_replies_per_author_hour: 50\n"
    return configs.write_config(tmp_path, db_url=db_url, accounts=account, sections=sections)


@pytest.fixture
def app(config_path: Path, running_bot: StartBot) -> App:
    return running_bot(load_config(config_path, ENV))


def post_everyone(base: str) -> dict[str, str]:
    return {who: str(post_as(base, who, text)["id"]) for who, (text, _) in SECRETS.items()}


# --- logs ----------------------------------------------------------------------------------------------


def test_no_log_line_at_any_level_carries_personal_data(
    tmp_path: Path, mastodon_server: MockServer, db_url: str, running_bot: StartBot, caplog: pytest.LogCaptureFixture
) -> None:
    """Debug level included (`carebot run -v`), the lines of a post set aside included."""
    base = mastodon_server.base_url
    with FaultProxy(base) as proxy:
        account = configs.mastodon_account(proxy.base_url, name=ACCOUNT)
        path = configs.write_config(tmp_path, db_url=db_url, accounts=account, sections=configs.SEPARATE_POSTS)
        app = running_bot(load_config(path, ENV))

        def no_account(notification: dict[str, object]) -> None:
            status = notification["status"]
            assert isinstance(status, dict)
            status["account"] = None

        proxy.change_json("GET", "/api/v1/notifications", notifications_with("setaside", no_account))
        caplog.set_level(logging.DEBUG)
        post_everyone(base)
        post_as(base, "alice", "@brand setaside call me at 415-555-0134")
        for _ in range(3):
            run_once(app)
    logged = caplog.text
    assert "mention" in logged and "set aside" in logged  # the lines are there
    assert [leak for leak in LEAKS if leak in logged] == []


# --- retention ---------------------------------------------------------------------------------------


def test_after_the_retention_public_texts_are_masked_and_private_ones_erased(
    app: App, mastodon_server: MockServer
) -> None:
    base = mastodon_server.base_url
    posted = post_everyone(base)
    private = str(post_as(base, "alice", "@brand my card 4111 1111 1111 1111 was charged", visibility="direct")["id"])
    run_once(app)
    app.storage.quarantine.add(
        account=ACCOUNT, platform="mastodon", post_id="x1", cursor="1", stage="read", reason="r", excerpt="e"
    )
    config = dataclasses.replace(app.config, storage=StorageConfig(url=app.config.storage.url, retention=90 * 86400.0))
    assert apply_retention(config, app.storage) == 0  # nothing is 90 days old yet

    later = now() + timedelta(days=91)
    changed = apply_retention(config, app.storage, at=later)
    assert changed > 0
    stored = {m.mention.post_id: m for m in app.storage.mentions.all(ACCOUNT)}
    for who, post_id in posted.items():
        text = stored[post_id].mention.text
        assert text and SECRETS[who][1] not in text  # masked, its words kept
    assert stored[private].mention.text == ""  # a private message: erased
    direct = [r for m in stored.values() for r in app.storage.replies.for_mention(m.id) if r.kind is ReplyKind.DIRECT]
    assert direct and all(r.text == "" for r in direct if r.state is ReplyState.SENT)
    assert all(q.excerpt == "" for q in app.storage.quarantine.recent(ACCOUNT))
    (line,) = app.storage.privacy.audit_lines()
    assert line.action == "retention" and str(changed) in line.detail
    assert apply_retention(config, app.storage, at=later) == 0  # once


# --- forget ------------------------------------------------------------------------------------------


def test_forget_erases_one_person_and_only_them_and_their_posts_are_never_answered_again(
    app: App, mastodon_server: MockServer, config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = mastodon_server.base_url
    posted = post_everyone(base)
    second = str(post_as(base, "alice", "@brand still nothing, it is the order I wrote about")["id"])
    run_once(app)
    mine = [m for m in app.storage.mentions.all(ACCOUNT) if m.mention.author.handle == "alice"]
    assert len(mine) == 2 and mine[0].case_id is not None
    record_decision(app.storage, mine[0], "decision:confirmed", "lead")
    app.storage.alerts.raise_once(key=f"test:{mine[0].id}", kind="test", text="t", at=now(), mention_id=mine[0].id)
    app.storage.quarantine.add(
        account=ACCOUNT, platform="mastodon", post_id="q1", cursor="1", stage="read", reason="r", excerpt="e",
        author_handle="alice",
    )  # fmt: skip
    unsent = team_reply(
        app.config, app.storage, mine[0].case_id, "We are on it", "lead", private=False, request_key="k"
    )
    others_before = {m.id: m for m in app.storage.mentions.all(ACCOUNT) if m.mention.author.handle != "alice"}

    capsys.readouterr()
    args = ["forget", "--author", "@Alice", "--by", "dpo", "--config", str(config_path)]
    assert carebot([*args, "--dry-run"]) == 0
    assert "Would erase: 2 posts" in capsys.readouterr().out
    assert len([m for m in app.storage.mentions.all(ACCOUNT) if m.mention.author.handle == "alice"]) == 2
    assert carebot(args) == 0
    assert "Erased: 2 posts" in capsys.readouterr().out

    after = {m.id: m for m in app.storage.mentions.all(ACCOUNT)}
    for gone in mine:
        tomb = after[gone.id]  # kept as a tombstone: the post is never answered again
        assert (tomb.mention.text, tomb.mention.author.handle, tomb.mention.author.id, tomb.case_id) == (
            "",
            "",
            "",
            None,
        )
        assert all(r.text == "" for r in app.storage.replies.for_mention(gone.id))
    assert app.storage.replies.get(unsent.id).state is ReplyState.REJECTED
    with pytest.raises(NotFound):
        app.storage.cases.get(mine[0].case_id)
    assert all(c.author_handle != "alice" for c in app.storage.cases.listed())
    assert app.storage.decisions.all() == []
    assert app.storage.alerts.get(f"test:{mine[0].id}") is None
    assert app.storage.quarantine.recent(ACCOUNT) == []
    for other_id, other in others_before.items():  # nobody else is touched
        assert after[other_id].mention.text == other.mention.text
    capsys.readouterr()
    assert carebot(["audit", "--config", str(config_path)]) == 0
    audit = capsys.readouterr().out
    assert "forget by dpo" in audit and "2 posts" in audit and "alice" not in audit.lower()
    assert "1 posts" not in audit and "1 cases" not in audit  # counted in words a person reads
    # Asked about someone of whom nothing is stored: said so, and the request is on record all the same.
    assert carebot(["forget", "--author", "@nobody", "--by", "dpo", "--config", str(config_path)]) == 0
    assert "Nothing is stored of that author." in capsys.readouterr().out
    newest = app.storage.privacy.audit_lines()[0]
    assert newest.detail == "an erasure request: nothing was stored of that person"

    replies_before = brand_replies(base)
    run_once(app)  # re-reads the last minutes (the overlap): alice's posts are there, and stay answered once
    run_once(app)
    assert brand_replies(base).keys() == replies_before.keys()
    assert all(len(brand_replies(base)[p]) == 1 for p in (posted["alice"], second))
    assert len(app.storage.mentions.all(ACCOUNT)) == len(after)


def test_commands_on_a_database_that_cannot_be_used_say_so_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BRAND_TOKEN", "brand_token")
    database = tmp_path / "carebot.db"
    path = configs.write_config(
        tmp_path, db_url=f"sqlite:///{database}", accounts=configs.mastodon_account("http://127.0.0.1:9")
    )
    (tmp_path / "carebot.db.rescued-20261205T120000Z").write_bytes(b"")  # a copy saved, the file gone
    for command in (["status"], ["audit"], ["forget", "--author", "jane"]):
        capsys.readouterr()
        assert carebot([*command, "--config", str(path)]) == 1
        err = capsys.readouterr().err
        assert err.startswith("carebot: cannot use the database:") and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1


def test_a_database_in_a_directory_that_does_not_exist_is_named_with_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite says only "unable to open database file": which file, and why, is what the person needs."""
    monkeypatch.setenv("BRAND_TOKEN", "brand_token")
    missing = tmp_path / "no such dir"
    path = configs.write_config(
        tmp_path, db_url=f"sqlite:///{missing / 'carebot.db'}", accounts=configs.mastodon_account("http://127.0.0.1:9")
    )
    for command in (["status"], ["queue", "list"], ["run", "--once"]):
        capsys.readouterr()
        assert carebot([*command, "--config", str(path)]) == 1
        err = capsys.readouterr().err
        assert f"the directory {missing} does not exist" in err, (command, err)
    assert not missing.exists()  # nothing made on the way
