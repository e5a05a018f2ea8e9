"""A claim by a process that has died is taken over at once; a live one's never is."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from mastodon_mock.testing import MockServer

from bot.models import ReplyState
from bot.run.app import App
from bot.run.daemon import run_once
from bot.run.liveness import is_dead, process_identity
from bot.run.outbox import CLAIM_LEASE
from bot.storage.records import StoredReply
from tests.conftest import StartBot
from tests.peers.mastodon import BRAND, client, post_as
from tests.test_daemon_mastodon import config_for


def identity_of(process: subprocess.Popen[bytes]) -> str:
    """The identity `process` would record in a claim, read from /proc while it runs."""
    machine, _pid, _start = process_identity().rsplit(":", 2)
    stat = Path(f"/proc/{process.pid}/stat").read_text()
    started = stat[stat.rfind(")") + 2 :].split()[19]
    return f"{machine}:{process.pid}:{started}"


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield process
    if process.poll() is None:
        process.kill()
        process.wait()


pytestmark = pytest.mark.skipif(not process_identity().startswith("linux:"), reason="needs Linux /proc")


def test_this_process_and_a_running_child_are_alive(child: subprocess.Popen[bytes]) -> None:
    assert not is_dead(process_identity())
    assert not is_dead(identity_of(child))


def test_a_killed_child_is_dead_even_before_it_is_reaped(child: subprocess.Popen[bytes]) -> None:
    identity = identity_of(child)
    child.kill()
    child.wait()
    assert is_dead(identity)


def test_a_reused_pid_is_not_the_same_process(child: subprocess.Popen[bytes]) -> None:
    machine, pid, started = identity_of(child).rsplit(":", 2)
    assert is_dead(f"{machine}:{pid}:{int(started) - 1}")


def test_what_cannot_be_judged_here_counts_as_alive() -> None:
    _, boot, namespace, pid, started = process_identity().split(":")
    assert not is_dead(f"linux:{boot}:{int(namespace) + 1}:{pid}:{started}")  # another container
    assert not is_dead(f"linux:00000000-0000-0000-0000-000000000000:{namespace}:999999:1")  # another boot
    assert not is_dead("unknown:somehost:123")
    assert not is_dead(None)


def _claimed_reply(app: App, server: MockServer, claimed_by: str) -> StoredReply:
    """A mention's approved reply, claimed by `claimed_by` with a full lease, as a crash leaves it."""
    run_once(app)  # the cursor starts at "now"
    post_as(server.base_url, "alice", "@brand how can I contact your support team? is there an email?")
    run_once(app)
    (item,) = app.storage.replies.queue()
    approved = app.storage.replies.approve(item.reply.id, "lead")
    assert app.storage.replies.claim(approved, CLAIM_LEASE, claimed_by)
    return app.storage.replies.get(approved.id)


def _public_replies(base_url: str) -> list[dict[str, object]]:
    with client(base_url, BRAND) as api:
        me = api.account_verify_credentials()
        return [s for s in api.account_statuses(me["id"]) if s["visibility"] != "direct"]


def test_a_dead_senders_claim_is_sent_at_once_not_after_the_lease(
    tmp_path: Path,
    mastodon_server: MockServer,
    db_url: str,
    child: subprocess.Popen[bytes],
    running_bot: StartBot,
) -> None:
    app = running_bot(config_for(tmp_path, mastodon_server.base_url, db_url, mode="approve"), first_cycle=False)
    dead = identity_of(child)
    child.kill()
    child.wait()
    reply = _claimed_reply(app, mastodon_server, dead)
    run_once(app)
    assert app.storage.replies.get(reply.id).state is ReplyState.SENT
    assert len(_public_replies(mastodon_server.base_url)) == 1


def test_a_live_senders_claim_is_left_alone(
    tmp_path: Path,
    mastodon_server: MockServer,
    db_url: str,
    child: subprocess.Popen[bytes],
    running_bot: StartBot,
) -> None:
    app = running_bot(config_for(tmp_path, mastodon_server.base_url, db_url, mode="approve"), first_cycle=False)
    reply = _claimed_reply(app, mastodon_server, identity_of(child))
    run_once(app)
    assert app.storage.replies.get(reply.id).state is ReplyState.SENDING
    assert _public_replies(mastodon_server.base_url) == []
