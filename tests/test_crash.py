"""kill -9 at any moment loses no mention and answers none twice: the short form of bench/crash.py.

The daemon is a real `carebot run` process against a mastodon-mock subprocess, on SQLite and PostgreSQL.
The kill times are random (the seed is printed, and CAREBOT_CRASH_SEED replays one).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from mastodon_mock.testing import MockServer

from bench.crash import Options, report, run
from bench.crash_check import Posted, check
from bench.crash_faults import FaultPlan
from bench.crash_peers import mastodon_brand_posts
from bot.run.app import App
from bot.run.daemon import run_once
from bot.storage import Storage
from tests.peers.mastodon import BRAND, client, post_as
from tests.test_daemon_mastodon import config_for

pytestmark = pytest.mark.slow  # kills real daemons

ROOT = Path(__file__).resolve().parents[1]
SHORT = Options(kills=7, mentions=20, uptime=(0.5, 3.0), startup_kills=3, settle_timeout=60.0)


def test_kill_9_at_random_moments_loses_nothing_and_duplicates_nothing(db_url: str, tmp_path: Path) -> None:
    seed = os.environ.get("CAREBOT_CRASH_SEED")
    options = Options(**{**SHORT.__dict__, "seed": int(seed) if seed else None})
    result = run(options, db_url, tmp_path)
    summary = report(result)
    print(summary)
    verdict = result.verdict
    assert result.kills == SHORT.kills and result.startup_kills == SHORT.startup_kills, summary
    assert verdict.posted == verdict.stored == SHORT.mentions, summary
    assert verdict.duplicates == [], summary
    assert verdict.losses == [], summary
    assert verdict.disagreements == [], summary
    assert verdict.answered > 0, summary
    assert verdict.answered + sum(verdict.unanswered.values()) == SHORT.mentions, summary
    assert result.settled and result.stop_status == 0, summary
    assert not result.secret_in_log, summary


def test_kill_9_amid_bad_posts_lost_answers_broken_lookups_and_database_trouble_loses_nothing(
    db_url: str, tmp_path: Path
) -> None:
    """The short form of `bench/crash.py --faults`: poison posts are set aside, late posts answered, posts with
    broken handles wait for a person, and the database has outages (PostgreSQL) or full disks (SQLite)."""
    seed = os.environ.get("CAREBOT_CRASH_SEED")
    plan = FaultPlan(poison=0.15, handles=0.1, late=0.15)
    options = Options(**{**SHORT.__dict__, "kills": 8, "mentions": 24, "seed": int(seed) if seed else None})
    result = run(dataclasses.replace(options, faults=plan), db_url, tmp_path)
    summary = report(result)
    print(summary)
    verdict = result.verdict
    assert verdict.duplicates == [] and verdict.losses == [] and verdict.disagreements == [], summary
    poison = sum(n for kind, n in result.faulty_posts.items() if kind.startswith("poison"))
    assert verdict.set_aside == poison, summary
    assert verdict.stored + verdict.set_aside == verdict.posted, summary
    assert result.db_windows >= 1, summary  # the storm may end before the second
    assert result.settled and result.stop_status == 0, summary


def test_the_check_sees_a_duplicate_a_stuck_reply_and_an_unrecorded_post(
    tmp_path: Path, mastodon_server: MockServer, db_url: str
) -> None:
    app = App.build(config_for(tmp_path, mastodon_server.base_url, db_url))
    try:
        run_once(app)  # the cursor starts at "now"
        texts = [
            "@brand how can I contact your support team? is there an email?",
            "@brand does the app have a dark mode?",
        ]
        posted = [Posted(str(post_as(mastodon_server.base_url, "alice", t)["id"]), "alice", t) for t in texts]
        run_once(app)
        account = app.config.accounts[0].name
        clean = check(posted, mastodon_brand_posts(mastodon_server.base_url), app.storage, account)
        assert clean.ok and clean.answered == 2, clean

        with client(mastodon_server.base_url, BRAND) as brand:
            brand.status_post("@alice again", in_reply_to_id=posted[0].post_id)
        stuck = app.storage.replies.for_mention(app.storage.mentions.all(account)[1].id)[0]
        app.storage.replies.release(stuck.id, "as if the sender died", retry_at=None)
        broken = check(posted, mastodon_brand_posts(mastodon_server.base_url), app.storage, account)
        assert len(broken.duplicates) == 1 and posted[0].post_id in broken.duplicates[0]
        assert len(broken.losses) == 1 and "approved" in broken.losses[0]
        assert any("not recorded as sent" in d for d in broken.disagreements)
    finally:
        app.close()


# The child SIGKILLs itself right after the statement that starts with argv[2]: mid-way through the schema.
_DIE_DURING_MIGRATION = textwrap.dedent(
    """
    import os, signal, sys
    from sqlalchemy import event
    from bot import storage

    made = storage.create_db_engine
    def dying_engine(url):
        engine = made(url)
        @event.listens_for(engine, "after_cursor_execute")
        def count(_conn, _cursor, statement, *_args):
            if statement.lstrip().startswith(sys.argv[2]):
                os.kill(os.getpid(), signal.SIGKILL)
        return engine
    storage.create_db_engine = dying_engine
    storage.Storage.open(sys.argv[1])
    """
)


@pytest.mark.parametrize("after", ["CREATE TABLE accounts", "CREATE TABLE replies", "ALTER TABLE replies"])
def test_a_kill_during_the_first_migration_leaves_a_database_that_opens(db_url: str, after: str) -> None:
    child = subprocess.run(
        [sys.executable, "-c", _DIE_DURING_MIGRATION, db_url, after],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        timeout=60,
    )
    assert child.returncode == -9, child.stderr.decode()[-2000:]
    reopened = Storage.open(db_url)  # before the fix: "table accounts already exists", for ever
    try:
        assert reopened.accounts.all() == []
        assert reopened.accounts.ensure("acme", "mastodon").cursor is None
    finally:
        reopened.close()
