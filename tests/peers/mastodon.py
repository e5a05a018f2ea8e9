"""mastodon-mock as a real peer: an in-process server for connector tests, a subprocess for daemon tests.

The seed is one brand account (a bot) and four customers, one per supported
language. Every account's token is "<name>_token".

Fixtures: `mastodon_server` (the session's in-process server, reset before the
test), `mastodon_process` (a `serve` subprocess for the session). Plain
functions (`mastodon_subprocess`, `post_as`, `add_fault`, ...) work outside
pytest too, e.g. for `carebot demo`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from mastodon import Mastodon
from mastodon_mock.config import SeedAccount, SeedConfig
from mastodon_mock.testing import MockServer

from connectors.base import ConnectorSettings

BRAND = "brand"
CUSTOMERS: tuple[str, ...] = ("alice", "boris", "dewi", "layla")
_DISPLAY_NAMES = {
    BRAND: "Brand Support",
    "alice": "Alice",
    "boris": "Борис",
    "dewi": "Dewi",
    "layla": "ليلى",
}
# Mock-server tokens, not credentials.
SEED = SeedConfig(
    accounts=[
        SeedAccount(
            username=name,
            display_name=_DISPLAY_NAMES[name],
            access_token=f"{name}_token",
            bot=name == BRAND,
        )
        for name in (BRAND, *CUSTOMERS)
    ]
)
READY_TIMEOUT = 20.0
STOP_GRACE = 5.0


def token_of(username: str) -> str:
    return f"{username}_token"


# --- talking to a running mock -------------------------------------------------


def reset(base_url: str) -> None:
    """Wipe the mock and re-seed it; also drops every fault rule."""
    httpx.post(f"{base_url}/api/v1/_mock/reset", timeout=10).raise_for_status()


def add_fault(
    base_url: str,
    *,
    effect: dict[str, Any],
    path: str | None = None,
    methods: list[str] | None = None,
    count: int | None = 1,
) -> dict[str, Any]:
    """Register a fault rule on the mock's control plane (see mastodon_mock/faults.py)."""
    rule = {"match": {"methods": methods, "path": path}, "effect": effect, "count": count}
    response = httpx.post(f"{base_url}/api/v1/_mock/faults", json=rule, timeout=10)
    response.raise_for_status()
    created: dict[str, Any] = response.json()
    return created


@contextmanager
def client(base_url: str, username: str) -> Iterator[Mastodon]:
    """A Mastodon.py client logged in as a seeded account, closed afterwards."""
    api = Mastodon(access_token=token_of(username), api_base_url=base_url, ratelimit_method="throw")
    try:
        yield api
    finally:
        api.session.close()


def post_as(base_url: str, username: str, text: str, **kwargs: Any) -> Any:
    """Post `text` as a seeded account; returns the status (a Mastodon.py dict)."""
    with client(base_url, username) as api:
        return api.status_post(text, **kwargs)


def settings_for(base_url: str, username: str = BRAND, timeout: float = 5.0) -> ConnectorSettings:
    return ConnectorSettings(
        account=f"{username}@mock",
        base_url=base_url,
        secrets={"access_token": token_of(username)},
        timeout=timeout,
    )


# --- the mock as a subprocess -------------------------------------------------


@dataclass(frozen=True)
class RunningMock:
    base_url: str
    pid: int
    workdir: Path


def config_toml(seed: SeedConfig = SEED) -> str:
    """A `mastodon_mock serve` config: in-memory database, the given seed."""
    lines = ["[database]", 'path = ":memory:"', "", "[seed]", "accounts = ["]
    for account in seed.accounts:
        fields = [f"username = {_toml_str(account.username)}"]
        if account.display_name:
            fields.append(f"display_name = {_toml_str(account.display_name)}")
        if account.access_token:
            fields.append(f"access_token = {_toml_str(account.access_token)}")
        if account.bot:
            fields.append("bot = true")
        lines.append("  { " + ", ".join(fields) + " },")
    lines.append("]")
    return "\n".join(lines) + "\n"


@contextmanager
def mastodon_subprocess(
    workdir: Path | None = None, seed: SeedConfig = SEED, port: int | None = None
) -> Iterator[RunningMock]:
    """Run `python -m mastodon_mock serve` on a free loopback port until the block ends.

    Ready when `GET /health` answers. Its output goes to `mock.log` in `workdir`
    (a fresh temporary folder if not given), which is also its TMPDIR, because
    each start leaves an empty temporary folder behind.
    """
    with tempfile.TemporaryDirectory(prefix="carebot-mastodon-") as scratch:
        folder = Path(workdir) if workdir is not None else Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        config = folder / "mock.toml"
        config.write_text(config_toml(seed), encoding="utf-8")
        chosen = port or free_port()
        log = (folder / "mock.log").open("wb")
        command = [
            sys.executable, "-m", "mastodon_mock", "serve",
            "--config", str(config), "--host", "127.0.0.1", "--port", str(chosen),
            "--log-level", "warning",
        ]  # fmt: skip
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "TMPDIR": str(folder)}
        )
        base_url = f"http://127.0.0.1:{chosen}"
        try:
            _wait_ready(base_url, process, folder / "mock.log")
            yield RunningMock(base_url=base_url, pid=process.pid, workdir=folder)
        finally:
            stop_process(process)
            log.close()


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it has not exited within the grace period."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_GRACE)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_GRACE)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_ready(base_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(encoding="utf-8", errors="replace")[-2000:]
            raise RuntimeError(f"mastodon-mock exited with {process.returncode} before it was ready:\n{tail}")
        try:
            if httpx.get(f"{base_url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"mastodon-mock at {base_url} not ready after {READY_TIMEOUT:g} s")


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --- pytest fixtures ------------------------------------------------------------


@pytest.fixture(scope="session")
def mastodon_session_server() -> Iterator[MockServer]:
    with MockServer(seed=SEED) as server:
        yield server


@pytest.fixture
def mastodon_server(mastodon_session_server: MockServer) -> MockServer:
    """The session's in-process mastodon-mock, wiped and re-seeded for this test."""
    reset(mastodon_session_server.base_url)
    return mastodon_session_server


@pytest.fixture(scope="session")
def mastodon_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningMock]:
    """A `mastodon_mock serve` subprocess for the session (reset it yourself between tests)."""
    with mastodon_subprocess(tmp_path_factory.mktemp("mastodon-mock")) as running:
        yield running
