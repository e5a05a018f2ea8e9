"""Metrics and health of a running carebot, scraped over HTTP: from the bot in-process and from a real
`carebot run` serving them on its own port, without the desk."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from mastodon_mock.testing import MockServer
from prometheus_client.parser import text_string_to_metric_families

from bot.cli.web import start_ops_in_thread
from bot.clock import now
from bot.config import load_config
from bot.run.daemon import run_once
from bot.run.metrics import health
from tests import configs
from tests.conftest import StartBot
from tests.peers.mastodon import free_port, post_as

ROOT = Path(__file__).resolve().parents[1]
COMPLAINT = "@brand my order never arrived and I was charged twice!"


def write_config(tmp_path: Path, base_url: str, port: int, mode: str = "approve") -> Path:
    return configs.write_config(
        tmp_path,
        db_url=f"sqlite:///{tmp_path / 'metrics.db'}",
        accounts=configs.mastodon_account(base_url, mode=mode),
        sections=f"metrics:\n  host: 127.0.0.1\n  port: {port}\n  stale_after: 1m\n",
    )


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    return found[(name, tuple(sorted(labels.items())))]


def test_metrics_and_health_scraped_from_the_running_bot(
    tmp_path: Path, mastodon_server: MockServer, running_bot: StartBot
) -> None:
    config = load_config(write_config(tmp_path, mastodon_server.base_url, free_port()), {"BRAND_TOKEN": "brand_token"})
    app = running_bot(config)
    post_as(mastodon_server.base_url, "alice", COMPLAINT)
    post_as(mastodon_server.base_url, "boris", "@brand how do I reach support by email?")
    run_once(app)
    server = start_ops_in_thread(app)
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            scraped = http.get("/metrics")
            assert scraped.status_code == 200
            assert scraped.headers["content-type"].startswith("text/plain")
            found = samples(scraped.text)
            account = {"account": "acme-mastodon"}
            assert value(found, "carebot_queue_depth", **account) == 2  # approve mode: both wait
            assert value(found, "carebot_queue_oldest_wait_seconds", **account) >= 0
            assert value(found, "carebot_account_paused", **account) == 0
            assert value(found, "carebot_mentions_total", **account) == 2
            assert value(found, "carebot_cycles_total", result="ok", **account) == 2
            assert value(found, "carebot_replies_total", outcome="sent", **account) == 0
            assert value(found, "carebot_classifier_seconds_count") == 2
            assert value(found, "carebot_last_good_cycle_timestamp_seconds", **account) > 0
            assert value(found, "carebot_alerts_undelivered") == 0

            for item in app.storage.replies.queue():
                app.storage.replies.approve(item.reply.id, "alice")
            run_once(app)
            found = samples(http.get("/metrics").text)
            assert value(found, "carebot_queue_depth", **account) == 0
            assert value(found, "carebot_replies_total", outcome="sent", **account) >= 2

            ok = http.get("/health")
            assert ok.status_code == 200 and ok.text.startswith("ok\n")
            assert "database: ok" in ok.text and "acme-mastodon: ok (last good cycle" in ok.text

            # An hour without a good cycle, in a process that has run that long: stale.
            app.storage.accounts.update("acme-mastodon", last_cycle_at=now() - timedelta(hours=1))
            app.started_at = now() - timedelta(hours=1)
            stale = http.get("/health")
            assert stale.status_code == 503
            assert "acme-mastodon: stale: last good cycle 1h00m ago, more than 1m" in stale.text
    finally:
        server.stop()


def test_health_fails_when_the_database_does_not_answer(
    tmp_path: Path, mastodon_server: MockServer, running_bot: StartBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(write_config(tmp_path, mastodon_server.base_url, free_port()), {"BRAND_TOKEN": "brand_token"})
    app = running_bot(config)
    assert health(app.storage, config, app.started_at).ok

    def down() -> None:
        raise ConnectionRefusedError("the database went away")

    monkeypatch.setattr(app.storage.db, "ping", down)
    found = health(app.storage, config, app.started_at)
    assert not found.ok and found.lines == ["database: does not answer (ConnectionRefusedError)"]


def test_a_new_process_gets_time_for_its_first_cycle(
    tmp_path: Path, mastodon_server: MockServer, running_bot: StartBot
) -> None:
    config = load_config(write_config(tmp_path, mastodon_server.base_url, free_port()), {"BRAND_TOKEN": "brand_token"})
    app = running_bot(config, first_cycle=False)
    assert health(app.storage, config, now()).lines[1] == "acme-mastodon: ok (starting: no cycle yet)"
    late = health(app.storage, config, now() - timedelta(minutes=5))
    assert not late.ok and "acme-mastodon: stale: last good cycle never" in late.lines[1]


def _until(condition: Callable[[], bool], process: subprocess.Popen[str], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"carebot exited with {process.returncode}: {process.communicate()[0]}")
        if time.monotonic() > deadline:
            raise AssertionError("carebot did not get there")
        time.sleep(0.2)


@pytest.mark.slow
def test_carebot_run_serves_metrics_and_health_without_the_desk(tmp_path: Path, mastodon_server: MockServer) -> None:
    port = free_port()
    path = write_config(tmp_path, mastodon_server.base_url, port)
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "run", "--config", str(path)],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT), "BRAND_TOKEN": "brand_token"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:

            def read_once() -> bool:
                # The first cycle starts the account's cursor at "now": a post made before it is not answered.
                try:
                    answer = http.get("/health")
                except httpx.TransportError:
                    return False
                return answer.status_code == 200 and "last good cycle" in answer.text

            _until(read_once, process)
            post_as(mastodon_server.base_url, "alice", COMPLAINT)

            def counted() -> bool:
                found = samples(http.get("/metrics").text)
                return found.get(("carebot_queue_depth", (("account", "acme-mastodon"),)), 0) == 1

            _until(counted, process)
            assert http.get("/login").status_code == 404  # the desk is not served here
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, output
    assert "brand_token" not in output
