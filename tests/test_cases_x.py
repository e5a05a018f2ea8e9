"""Cases end to end on X, through the fake X behind Prism's validating proxy.

X has no automated DMs, so the conversation stays in the public thread: the hand-off, then "already
tried, nobody answered" (one holding reply, escalated), "it works now" (resolving proposed), a person's
public reply, resolution, and the check-back, which on X waits for a person's approval: X accepts
automated replies only to posts that mention the account, and a check-back answers none.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.config import load_config
from bot.models import CaseState, ReplyPurpose, ReplyState
from bot.run.app import App
from bot.run.cases import resolve_case, team_reply
from bot.run.daemon import run_once
from tests import configs
from tests.conftest import StartBot
from tests.peers.x import XPeer
from tests.peers.x_fake import BRAND

pytestmark = pytest.mark.slow  # the whole bot against the fake X behind Prism


def bot_on_x(tmp_path: Path, peer: XPeer, running_bot: StartBot) -> App:
    path = configs.write_config(
        tmp_path,
        db_url=f"sqlite:///{tmp_path / 'carebot.db'}",
        accounts=configs.x_account(peer.base_url),
        sections="daemon:\n  retry_backoff: 100ms\ncases:\n  check_back_after: 1ms\n",
    )
    return running_bot(load_config(path, {"X_TOKEN": str(BRAND.bearer_token)}))


def replies_to(peer: XPeer, post_id: str) -> list[dict[str, Any]]:
    return [
        p
        for p in peer.fake.brand_posts()
        if any(r["type"] == "replied_to" and r["id"] == post_id for r in p.get("referenced_tweets", []))
    ]


def case_of(app: App, post_id: str) -> Any:
    (stored,) = [m for m in app.storage.mentions.all() if m.mention.post_id == post_id]
    assert stored.case_id is not None
    return app.storage.cases.get(stored.case_id)


def test_the_conversation_on_x_is_one_case_and_the_check_back_waits_for_a_person(
    tmp_path: Path, x_peer: XPeer, running_bot: StartBot
) -> None:
    app = bot_on_x(tmp_path, x_peer, running_bot)
    brand = f"@{BRAND.username}"
    first = x_peer.fake.post("alice", f"{brand} my order 5521 never arrived and I was charged twice. Fix this!")
    run_once(app)
    (hand_off,) = replies_to(x_peer, first)
    case = case_of(app, first)

    second = x_peer.fake.post(
        "alice",
        f"{brand} I already emailed you twice yesterday, nobody answers. Still no refund.",
        in_reply_to=hand_off["id"],
    )
    run_once(app)
    assert len(replies_to(x_peer, second)) <= 1  # at most the holding reply, never the hand-off again
    assert all(p["text"] != hand_off["text"] for p in replies_to(x_peer, second))
    case = case_of(app, second)
    assert case.escalated and case.state == CaseState.WAITING_ON_US.value

    third = x_peer.fake.post("alice", f"{brand} ok thanks, it's working now", in_reply_to=hand_off["id"])
    run_once(app)
    assert replies_to(x_peer, third) == []
    assert case_of(app, third).resolve_proposed

    team_reply(
        app.config, app.storage, case.id, "The refund is done, sorry again.", "sam", private=False, request_key="r1"
    )
    run_once(app)
    run_once(app)
    team = [p for p in x_peer.fake.brand_posts() if "refund is done" in p["text"]]
    assert len(team) == 1

    resolve_case(app.config, app.storage, case.id, "sam", "refunded")
    before = len(x_peer.fake.brand_posts())
    run_once(app)
    run_once(app)
    assert len(x_peer.fake.brand_posts()) == before  # the check-back waits for a person on X
    (check_back,) = [r for r in app.storage.cases.replies(case.id) if r.purpose == ReplyPurpose.CHECK_BACK.value]
    assert check_back.state is ReplyState.PENDING
    app.storage.replies.approve(check_back.id, "sam")
    for _ in range(3):
        run_once(app)
    assert len(x_peer.fake.brand_posts()) == before + 1
    assert app.storage.replies.get(check_back.id).state is ReplyState.SENT
