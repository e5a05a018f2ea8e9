"""Secrets and personal data stay private: not in logs (even at DEBUG), errors, reprs or the database.

The bot runs as `carebot run --once -v` in a subprocess, so logging is set up exactly as in production,
against real peers that fail in the ways that make programs print what they hold.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from mastodon_mock.testing import MockServer
from sqlalchemy import create_engine, select

from bot.config import load_config
from bot.run.daemon import run_once
from bot.storage.tables import metadata
from connectors.base import AuthFailed, ConnectorSettings
from connectors.x import XConnector
from tests import configs
from tests.conftest import StartBot
from tests.peers.mastodon import add_fault, post_as
from tests.peers.x import XPeer
from tests.peers.x_fake import BRAND as X_BRAND

pytestmark = pytest.mark.slow  # end-to-end runs whose logs are searched for secrets

ROOT = Path(__file__).resolve().parents[1]
PERSONAL = ("alice.w@example.org", "415 555 0134", "4111 1111 1111 1111")
COMPLAINT = (
    "@brand my order never arrived and I was charged twice! email me at alice.w@example.org "
    "or call +1 415 555 0134, card 4111 1111 1111 1111"
)
X_SECRETS = {
    "consumer_key": "ck-Secret-91aa",
    "consumer_secret": "cs-Secret-72bb",
    "access_token": str(X_BRAND.access_token),
    "access_token_secret": "ats-Secret-63cc",
}

DAEMON = "daemon:\n  retry_backoff: 100ms\n" + configs.SEPARATE_POSTS


def mastodon_config(tmp_path: Path, base_url: str) -> Path:
    return configs.write_config(
        tmp_path,
        db_url=f"sqlite:///{tmp_path / 'carebot.db'}",
        accounts=configs.mastodon_account(base_url, mode=None, poll_interval=None, timeout="1s"),
        sections=DAEMON,
        brand=configs.EMAIL_ONLY_BRAND_YAML,
    )


def carebot_once(config: Path, env: dict[str, str]) -> str:
    """`carebot run --once -v`; everything it printed, stdout and stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "run", "--once", "-v", "--config", str(config)],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.stdout + done.stderr


def database_text(url: str) -> str:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = [row for table in metadata.sorted_tables for row in connection.execute(select(table))]
    finally:
        engine.dispose()
    return "\n".join(repr(tuple(row)) for row in rows)


def test_no_token_or_personal_data_in_debug_logs_errors_or_database(
    tmp_path: Path, mastodon_server: MockServer
) -> None:
    base = mastodon_server.base_url
    config = mastodon_config(tmp_path, base)
    env = {"BRAND_TOKEN": "brand_token"}
    output = carebot_once(config, env)  # starts from now
    post_as(base, "alice", COMPLAINT)
    add_fault(base, effect={"type": "status", "status": 500}, path="/api/v1/statuses", methods=["POST"])
    output += carebot_once(config, env)
    add_fault(base, effect={"type": "malformed"}, path="/api/v1/notifications", methods=["GET"])
    output += carebot_once(config, env)
    add_fault(base, effect={"type": "latency", "delay_ms": 1500}, path="/api/v1/statuses/*/context")
    output += carebot_once(config, env)
    output += carebot_once(config, env)

    assert "1 new" in output and "DEBUG" in output  # it did read the complaint, and logged at DEBUG
    assert re.search(r"[1-9] sent", output), output
    assert "truncated" not in output  # a malformed body is not quoted: it may hold posts
    assert "brand_token" not in output
    for personal in PERSONAL:
        assert personal not in output
    assert "[email]" in output  # the post is logged at DEBUG, masked
    assert "brand_token" not in database_text(f"sqlite:///{tmp_path / 'carebot.db'}")


def test_a_refused_token_is_named_nowhere(tmp_path: Path, mastodon_server: MockServer) -> None:
    token = "wrong-Secret-Zq81xk"
    output = carebot_once(mastodon_config(tmp_path, mastodon_server.base_url), {"BRAND_TOKEN": token})
    assert "AuthFailed" in output or "credentials refused" in output
    assert token not in output
    assert token not in database_text(f"sqlite:///{tmp_path / 'carebot.db'}")


def test_oauth1_secrets_stay_out_of_debug_logs_on_x(tmp_path: Path, x_peer: XPeer) -> None:
    secrets = "".join(f"    {key}: ${{X_{key.upper()}}}\n" for key in X_SECRETS)
    account = configs.x_account(x_peer.base_url, mode=None, token=None, poll_interval=None, timeout=None, extra=secrets)
    path = configs.write_config(
        tmp_path,
        db_url=f"sqlite:///{tmp_path / 'carebot.db'}",
        accounts=account,
        sections=DAEMON,
        brand=configs.EMAIL_ONLY_BRAND_YAML,
    )
    env = {f"X_{key.upper()}": value for key, value in X_SECRETS.items()}
    output = carebot_once(path, env)
    x_peer.fake.post("alice", COMPLAINT.replace("@brand", f"@{X_BRAND.username}"))
    x_peer.fake.fail_next(503, 1, method="POST", path="/2/tweets")
    x_peer.fake.rate_limit_next(1, reset_in=1.0, path="/2/users/*/tweets")
    output += carebot_once(path, env)
    output += carebot_once(path, env)
    assert "1 new" in output
    for secret in X_SECRETS.values():
        assert secret not in output
    for personal in PERSONAL:
        assert personal not in output
    assert all(s not in database_text(f"sqlite:///{tmp_path / 'carebot.db'}") for s in X_SECRETS.values())


def test_reprs_and_connector_errors_hold_no_token(
    tmp_path: Path, mastodon_server: MockServer, running_bot: StartBot
) -> None:
    token = "wrong-Secret-Zq81xk"
    app = running_bot(
        load_config(mastodon_config(tmp_path, mastodon_server.base_url), {"BRAND_TOKEN": token}), first_cycle=False
    )
    (report,) = run_once(app)
    assert report.error is not None and token not in report.error
    app.connector(app.config.accounts[0])
    assert token not in repr(app) and token not in repr(app.config)
    state = app.storage.accounts.get("acme-mastodon")
    assert state is not None and token not in (state.pause_reason or "")


@pytest.mark.parametrize("auth", ["oauth2", "oauth1"])
def test_x_connector_repr_and_errors_hold_no_secret(x_peer: XPeer, auth: str) -> None:
    settings = x_peer.settings(auth=auth)
    connector = XConnector(settings)
    try:
        x_peer.fake.fail_next(401, 1)
        with pytest.raises(AuthFailed) as caught:
            connector.verify()
        shown = f"{caught.value!r} {caught.value} {connector!r}"
        for secret in settings.secrets.values():
            assert secret not in shown
    finally:
        connector.close()


def test_connector_settings_repr_holds_no_secret() -> None:
    settings = ConnectorSettings(account="a", base_url="http://127.0.0.1:1", secrets={"access_token": "tok-Secret-1"})
    assert "tok-Secret-1" not in repr(settings)
