"""Storage on SQLite and PostgreSQL: stored once, answered once, compare-and-set state changes."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from bot.models import Action, Decision, ReplyKind, ReplyPurpose, ReplyState
from bot.storage import Conflict, NotFound, Storage
from bot.storage.engine import newest_revision
from bot.storage.records import Classified
from bot.storage.replies import insert_reply
from bot.storage.tables import metadata
from connectors.base import Author, Mention

CLASSIFIED = Classified(
    lang="en",
    situation="complaint",
    confidence=0.9,
    scores={"complaint": 0.9, "other": 0.1},
    personal_data=[{"kind": "email", "start": 3, "end": 20}],
    angry=False,
    opt_out=False,
)


def mention(post_id: str, author: str = "alice", text: str = "@acme it broke") -> Mention:
    return Mention(
        platform="mastodon",
        post_id=post_id,
        cursor=post_id,
        author=Author(id=f"id-{author}", handle=author),
        text=text,
        created_at=datetime(2026, 11, 23, 9, 0, tzinfo=UTC),
    )


def decision(text: str | None = "@alice sorry, please email us", direct: str | None = None) -> Decision:
    return Decision(
        situation="complaint",
        action=Action.REPLY if text else Action.RECORD,
        reason="test",
        reply_text=text,
        direct_text=direct,
        template_id="complaint/ack/en/0",
        urgent=True,
        priority=100,
    )


def test_schema_is_created_by_the_migration(storage: Storage, db_url: str) -> None:
    engine = create_engine(db_url)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert {"accounts", "mentions", "replies", "opt_outs", "alembic_version"} <= tables


def test_the_newest_revision_is_alembics_head() -> None:
    """Storage.open skips Alembic when the database is at `newest_revision()`, worked out from file names."""
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory

    config = AlembicConfig()
    config.set_main_option("script_location", "bot.storage:migrations")
    assert ScriptDirectory.from_config(config).get_heads() == [newest_revision()]


def test_the_migrations_build_exactly_the_tables_the_code_describes(storage: Storage, db_url: str) -> None:
    """Every table, column and index of bot/storage/tables.py, and nothing else, after all the migrations."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_reopening_keeps_data(db_url: str) -> None:
    first = Storage.open(db_url)
    first.accounts.ensure("a", "mastodon")
    first.mentions.record("a", mention("1"), CLASSIFIED, decision(), ReplyState.APPROVED)
    first.close()
    second = Storage.open(db_url)  # migrations run again: a no-op on an up-to-date database
    assert second.mentions.has("a", "1")
    second.close()


def test_a_mention_is_stored_once(storage: Storage) -> None:
    storage.accounts.ensure("a", "mastodon")
    assert storage.mentions.record("a", mention("1"), CLASSIFIED, decision(), ReplyState.APPROVED)
    assert storage.mentions.record("a", mention("1"), CLASSIFIED, decision(), ReplyState.APPROVED) is None
    assert len(storage.mentions.all("a")) == 1
    stored = storage.mentions.all("a")[0]
    assert len(storage.replies.for_mention(stored.id)) == 1
    assert stored.mention.created_at == datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_public_and_direct_replies_are_kept_apart(storage: Storage) -> None:
    storage.accounts.ensure("a", "mastodon")
    mention_id = storage.mentions.record("a", mention("1"), CLASSIFIED, decision(direct="details?"), ReplyState.PENDING)
    assert mention_id is not None
    kinds = sorted(r.kind for r in storage.replies.for_mention(mention_id))
    assert kinds == [ReplyKind.DIRECT, ReplyKind.PUBLIC]


def test_no_reply_row_without_text(storage: Storage) -> None:
    storage.accounts.ensure("a", "mastodon")
    mention_id = storage.mentions.record("a", mention("1"), CLASSIFIED, decision(text=None), None)
    assert mention_id is not None
    assert storage.replies.for_mention(mention_id) == []


def test_claim_is_won_by_one_worker_only(storage: Storage) -> None:
    storage.accounts.ensure("a", "mastodon")
    storage.mentions.record("a", mention("1"), CLASSIFIED, decision(), ReplyState.APPROVED)
    (due,) = storage.replies.due("a")
    wins: list[datetime | None] = []
    barrier = threading.Barrier(4)

    def worker() -> None:
        barrier.wait()
        wins.append(storage.replies.claim(due, timedelta(seconds=60)))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(win is not None for win in wins) == 1
    assert storage.replies.due("a") == []  # claimed and the lease is still running


def test_a_claim_from_a_copy_read_before_a_person_changed_the_reply_fails(storage: Storage) -> None:
    """The sender reads the due replies, then claims them one by one and posts its copy's text. Before, the
    claim looked only at the state: a person who took the approval back, edited the draft and approved it
    again in between had the old words posted, while the desk showed the new ones as sent."""
    storage.accounts.ensure("a", "mastodon")
    mention_id = storage.mentions.record("a", mention("1"), CLASSIFIED, decision(), ReplyState.PENDING)
    assert mention_id is not None
    (draft,) = storage.replies.for_mention(mention_id)
    storage.replies.approve(draft.id, "ana")
    (read_by_the_sender,) = storage.replies.due("a")
    storage.replies.unapprove(draft.id, "ana")
    storage.replies.approve(draft.id, "ana", text="@alice sorry about that: write to help@acme.example")
    assert not storage.replies.claim(read_by_the_sender, timedelta(seconds=60))
    (fresh,) = storage.replies.due("a")  # the sender's next round reads it again
    assert fresh.text == "@alice sorry about that: write to help@acme.example"
    assert storage.replies.claim(fresh, timedelta(seconds=60))


def test_a_claim_from_a_copy_read_before_another_attempt_fails(storage: Storage) -> None:
    """Two workers read the same due reply. One claims it, its post times out (the outcome unknown), and
    it gives the reply back. The other's copy still says nothing was tried: claiming from it would post
    without first looking for the first post."""
    storage.accounts.ensure("a", "mastodon")
    storage.mentions.record("a", mention("1"), CLASSIFIED, decision(), ReplyState.APPROVED)
    (first_copy,) = storage.replies.due("a")
    (second_copy,) = storage.replies.due("a")
    assert storage.replies.claim(first_copy, timedelta(seconds=60))
    storage.replies.release(first_copy.id, "timed out", retry_at=None, outcome_unknown=True)
    assert not storage.replies.claim(second_copy, timedelta(seconds=60))
    (fresh,) = storage.replies.due("a")
    assert fresh.outcome_unknown and fresh.attempts == 1
    assert storage.replies.claim(fresh, timedelta(seconds=60))


def test_approving_a_notice_spread_under_the_posting_limit_keeps_its_turn(storage: Storage) -> None:
    """An incident's notices wait for their turn (`not_before`) so as to stay under the platform's posting
    limit; approving them at once made them all due at once."""
    storage.accounts.ensure("a", "mastodon")
    mention_id = storage.mentions.record("a", mention("1"), CLASSIFIED, decision(text=None), None)
    assert mention_id is not None
    turn = datetime.now(UTC) + timedelta(hours=2)
    with storage.db.begin() as tx:
        notice = insert_reply(
            tx, mention_id, "a", ReplyKind.PUBLIC, "@alice it is fixed", None, ReplyState.PENDING, datetime.now(UTC),
            purpose=ReplyPurpose.INCIDENT, not_before=turn,
        )  # fmt: skip
    approved = storage.replies.approve(notice, "ana")
    assert approved.state is ReplyState.APPROVED and approved.next_attempt_at == turn
    assert storage.replies.due("a") == []  # not before its turn


def test_an_abandoned_send_comes_back_after_its_lease(storage: Storage) -> None:
    storage.accounts.ensure("a", "mastodon")
    storage.mentions.record("a", mention("1"), CLASSIFIED, decision(), ReplyState.APPROVED)
    (due,) = storage.replies.due("a")
    assert storage.replies.claim(due, timedelta(seconds=-1))  # as if the sender died long ago
    (again,) = storage.replies.due("a")
    assert again.state is ReplyState.SENDING and again.attempts == 1
    assert storage.replies.claim(again, timedelta(seconds=60))
    storage.replies.mark_sent(again.id, "999")
    assert storage.replies.get(again.id).state is ReplyState.SENT
    assert storage.replies.due("a") == []


def test_a_claim_renews_while_it_stands_and_not_once_another_sender_took_the_reply(storage: Storage) -> None:
    storage.accounts.ensure("a", "mastodon")
    storage.mentions.record("a", mention("1"), CLASSIFIED, decision(), ReplyState.APPROVED)
    (due,) = storage.replies.due("a")
    first = storage.replies.claim(due, timedelta(seconds=-1))  # its lease already over: a slow sender
    assert first is not None
    assert storage.replies.renew_claim(due.id, first, timedelta(seconds=60))  # nobody took it: still ours
    assert storage.replies.due("a") == []  # and no longer up for grabs
    assert storage.replies.renew_claim(due.id, first, timedelta(seconds=-1))  # over again
    (taken,) = storage.replies.due("a")
    second = storage.replies.claim(taken, timedelta(seconds=60))  # another sender takes it over
    assert second is not None and second != first
    assert not storage.replies.renew_claim(due.id, first, timedelta(seconds=60))  # the first sender must not post
    # ... nor undo the second's work when its own attempt ends
    assert not storage.replies.release(due.id, "Unavailable: timed out", retry_at=None, claimed_at=first)
    assert not storage.replies.park(due.id, "gave up", claimed_at=first)
    assert not storage.replies.drop(due.id, "no longer needed", claimed_at=first)
    assert not storage.replies.reword(due.id, "@alice other words", None, claimed_at=first)
    taken = storage.replies.get(due.id)
    assert taken.state is ReplyState.SENDING and taken.updated_at == second and taken.text != "@alice other words"
    assert storage.replies.renew_claim(due.id, second, timedelta(seconds=60))
    storage.replies.mark_sent(due.id, "999")
    assert not storage.replies.renew_claim(due.id, second, timedelta(seconds=60))  # done: nothing to renew
    assert not storage.replies.park(due.id, "gave up", claimed_at=second)  # nor anything to end
    assert storage.replies.get(due.id).state is ReplyState.SENT


def test_queue_is_most_urgent_first_and_approval_is_compare_and_set(storage: Storage) -> None:
    storage.accounts.ensure("a", "mastodon")
    calm = Decision("simple_question", Action.REPLY, "q", reply_text="@bob thanks", priority=10)
    storage.mentions.record("a", mention("1", "bob"), CLASSIFIED, calm, ReplyState.PENDING)
    storage.mentions.record("a", mention("2"), CLASSIFIED, decision(), ReplyState.PENDING)
    queue = storage.replies.queue()
    assert [item.mention.mention.post_id for item in queue] == ["2", "1"]
    first = queue[0].reply
    approved = storage.replies.approve(first.id, "lead@acme", text="@alice edited")
    assert approved.state is ReplyState.APPROVED and approved.text == "@alice edited"
    assert approved.approved_by == "lead@acme"
    with pytest.raises(Conflict):
        storage.replies.approve(first.id, "someone-else")
    with pytest.raises(NotFound):
        storage.replies.approve(12345, "x")
    second = queue[1].reply
    rejected = storage.replies.reject(second.id, "lead@acme", "not needed")
    assert rejected.state is ReplyState.REJECTED and rejected.rejected_reason == "not needed"


def test_parked_reply_can_be_retried(storage: Storage) -> None:
    storage.accounts.ensure("a", "mastodon")
    storage.mentions.record("a", mention("1"), CLASSIFIED, decision(), ReplyState.APPROVED)
    (due,) = storage.replies.due("a")
    storage.replies.claim(due, timedelta(seconds=60))
    storage.replies.park(due.id, "Unavailable: 503")
    assert [i.reply.state for i in storage.replies.queue()] == [ReplyState.FAILED]
    retried = storage.replies.retry(due.id, "lead")
    assert retried.state is ReplyState.APPROVED and retried.attempts == 0
    assert [r.id for r in storage.replies.due("a")] == [due.id]


def test_released_reply_waits_for_its_retry_time(storage: Storage) -> None:
    storage.accounts.ensure("a", "mastodon")
    storage.mentions.record("a", mention("1"), CLASSIFIED, decision(), ReplyState.APPROVED)
    (due,) = storage.replies.due("a")
    storage.replies.claim(due, timedelta(seconds=60))
    storage.replies.release(due.id, "Unavailable: 502", retry_at=datetime.now(UTC) + timedelta(hours=1))
    assert storage.replies.due("a") == []
    assert storage.replies.get(due.id).last_error == "Unavailable: 502"


def test_author_history_counts_recent_replies_and_opt_outs(storage: Storage) -> None:
    storage.accounts.ensure("a", "mastodon")
    storage.mentions.record("a", mention("1"), CLASSIFIED, decision(), ReplyState.APPROVED)
    storage.mentions.record("a", mention("2"), CLASSIFIED, decision(), ReplyState.APPROVED)
    history = storage.mentions.author_history("mastodon", "id-alice")
    assert history.replies_last_hour == 2
    assert history.last_template_id == "complaint/ack/en/0"
    assert not history.opted_out
    stop = Classified("en", "other", 0.9, {}, [], angry=False, opt_out=True)
    storage.mentions.record("a", mention("3", text="@acme stop"), stop, decision(text=None), None)
    assert storage.mentions.author_history("mastodon", "id-alice").opted_out
    assert not storage.mentions.author_history("mastodon", "id-bob").opted_out


def test_cursor_and_pause_survive(storage: Storage) -> None:
    storage.accounts.ensure("a", "mastodon")
    until = datetime.now(UTC) + timedelta(minutes=5)
    storage.accounts.update("a", cursor="12345", paused_until=until, pause_reason="rate limited")
    state = storage.accounts.get("a")
    assert state is not None
    assert state.cursor == "12345"
    assert state.paused_until is not None and abs((state.paused_until - until).total_seconds()) < 1
