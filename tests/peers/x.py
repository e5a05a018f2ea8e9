"""pytest fixtures for X's real test peers: Stoplight Prism and the stateful fake.

- `x_prism_mock`: ``prism mock`` serving X's own OpenAPI spec (v2.159): stateless, random
  schema-valid answers, and a 422 for any request the spec does not allow (contract tests).
- `x_peer`: the stateful fake (`tests.peers.x_fake.FakeX`, reset for each test) behind
  ``prism proxy --errors``, which checks requests *and* the fake's answers against the spec
  (behaviour tests). Drive it through `x_peer.fake`; point carebot at `x_peer.base_url`.

Both Prism processes start once per session (~6 s each) and are stopped at its end. Prism is
found at `$PRISM` or `.ci/node/node_modules/.bin/prism` (`.ci/install-prism.sh`), the spec at
`$CAREBOT_X_SPEC` or `../shared/x-api/openapi-v2.159.json` beside the clone. Without them the
tests skip, except under CI=true, where they fail.

The spec's OAuth 1.0a scheme (``http`` / ``OAuth``) is one Prism always answers with 401, so
the served copy declares it as an ``Authorization`` header key: both auth modes get through.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from connectors.base import ConnectorSettings
from tests.peers.x_fake import BRAND, FakeX

REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 90.0  # Prism needs ~6 s on an idle machine; CI machines are shared


@dataclass(frozen=True)
class XPeer:
    """The fake X (to drive and inspect) and the URL carebot should talk to (Prism in front)."""

    fake: FakeX
    base_url: str

    def settings(self, auth: str = "oauth2", timeout: float = 5.0, **options: object) -> ConnectorSettings:
        return x_settings(self.base_url, auth=auth, timeout=timeout, **options)


def x_settings(base_url: str, auth: str = "oauth2", timeout: float = 5.0, **options: object) -> ConnectorSettings:
    """Settings for the fake's brand account, by OAuth 2.0 user token or OAuth 1.0a."""
    if auth == "oauth2":
        secrets = {"bearer_token": str(BRAND.bearer_token)}
    else:
        secrets = {
            "consumer_key": "fake-consumer-key",
            "consumer_secret": "fake-consumer-secret",
            "access_token": str(BRAND.access_token),
            "access_token_secret": "fake-access-secret",
        }
    return ConnectorSettings(account="brand-x", base_url=base_url, secrets=secrets, options=options, timeout=timeout)


def spec_path() -> Path:
    override = os.environ.get("CAREBOT_X_SPEC")
    return Path(override) if override else REPO.parent / "shared" / "x-api" / "openapi-v2.159.json"


def prism_path() -> Path:
    override = os.environ.get("PRISM")
    return Path(override) if override else REPO / ".ci" / "node" / "node_modules" / ".bin" / "prism"


def _missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (required when CI=true)", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrismProcess:
    """One Prism process on a free loopback port, its output in a log file."""

    def __init__(self, args: list[str], log_path: Path) -> None:
        self.port = free_port()
        self.log_path = log_path
        self._log = log_path.open("wb")
        command = [str(prism_path()), *args[:1], "-h", "127.0.0.1", "-p", str(self.port), *args[1:]]
        self._process = subprocess.Popen(
            command,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"prism exited with {self._process.returncode}: {self.log_tail()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"prism not listening after {READY_TIMEOUT:.0f} s: {self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGTERM)  # its own session: node and any child
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait(timeout=5)
        self._log.close()


@pytest.fixture(scope="session")
def x_spec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """X's v2.159 spec as Prism serves it (OAuth 1.0a declared as a plain header key)."""
    source = spec_path()
    if not source.is_file():
        _missing(f"X's OpenAPI spec not found at {source} (set CAREBOT_X_SPEC)")
    if not prism_path().is_file():
        _missing(f"Prism not found at {prism_path()} (run .ci/install-prism.sh or set PRISM)")
    spec = json.loads(source.read_text(encoding="utf-8"))
    spec["components"]["securitySchemes"]["UserToken"] = {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
    }
    served = tmp_path_factory.mktemp("x-spec") / "openapi-v2.159.json"
    served.write_text(json.dumps(spec), encoding="utf-8")
    return served


def _running(process: PrismProcess) -> Iterator[PrismProcess]:
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="session")
def x_prism_mock_process(x_spec: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrismProcess]:
    args = ["mock", "-d", "--seed", "42", "--json-schema-faker-fillProperties=false", str(x_spec)]
    yield from _running(PrismProcess(args, tmp_path_factory.mktemp("prism-mock") / "prism.log"))


@pytest.fixture(scope="session")
def x_prism_mock(x_prism_mock_process: PrismProcess) -> str:
    """Base URL of Prism mocking X from its spec: answers anything valid, 422s the rest."""
    return x_prism_mock_process.base_url


@pytest.fixture(scope="session")
def x_fake_server() -> Iterator[FakeX]:
    fake = FakeX()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture(scope="session")
def x_prism_proxy(
    x_spec: Path, x_fake_server: FakeX, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrismProcess]:
    args = ["proxy", "--errors", str(x_spec), x_fake_server.base_url]
    yield from _running(PrismProcess(args, tmp_path_factory.mktemp("prism-proxy") / "prism.log"))


@pytest.fixture
def x_peer(x_fake_server: FakeX, x_prism_proxy: PrismProcess) -> Iterator[XPeer]:
    """A fresh fake X behind Prism's validating proxy."""
    x_fake_server.reset()
    yield XPeer(fake=x_fake_server, base_url=x_prism_proxy.base_url)
    x_fake_server.reset()
