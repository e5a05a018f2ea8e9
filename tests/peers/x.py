"""pytest fixtures for X's real test peers: Stoplight Prism and the stateful fake.

- `x_prism_mock`: ``prism mock`` serving X's own OpenAPI spec: stateless, random schema-valid
  answers, and a 422 for any request the spec does not allow (contract tests).
- `x_peer`: the stateful fake (`tests.peers.x_fake.FakeX`, reset for each test) behind
  ``prism proxy --errors``, which checks requests *and* the fake's answers against the spec
  (behaviour tests). Drive it through `x_peer.fake`; point carebot at `x_peer.base_url`.

Every test that uses them runs twice, once per spec version vendored in `tests/peers/x-api/`
(see `SOURCE.md` there): v2.159, which names posts "tweets", and v2.167, which names them
"posts"; the fake speaks the vocabulary of the spec in front of it. The Prism processes of one
version start once per session (~6 s each) and stop before the other version's start. Prism is
found at `$PRISM` or `.ci/node/node_modules/.bin/prism` (`.ci/install-prism.sh`). Without it
the tests skip, except under CI=true, where they fail.

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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from connectors.base import ConnectorSettings
from tests.peers.x_fake import BRAND, FakeX

REPO = Path(__file__).resolve().parents[2]
SPECS = Path(__file__).resolve().parent / "x-api"
# spec version -> the vocabulary its servers speak (tests.peers.x_fake_shape)
VERSIONS = {"v2.159": "tweets", "v2.167": "posts"}
READY_TIMEOUT = 90.0  # Prism needs ~6 s on an idle machine; CI machines are shared


@dataclass(frozen=True)
class XPeer:
    """The fake X (to drive and inspect) and the URL carebot should talk to (Prism in front)."""

    fake: FakeX
    base_url: str
    version: str  # the spec Prism checks against: "v2.159" | "v2.167"

    def settings(self, auth: str = "oauth2", timeout: float = 5.0, **options: object) -> ConnectorSettings:
        return x_settings(self.base_url, auth=auth, timeout=timeout, **options)


class MemoryLedger:
    """A connector ledger kept in memory (the core keeps it in the accounts table): share one between two
    connectors to play two processes of the same account."""

    def __init__(self, state: Mapping[str, Any] | None = None) -> None:
        self.state: dict[str, Any] = dict(state or {})

    def load(self) -> Mapping[str, Any]:
        return self.state

    def save(self, state: Mapping[str, Any]) -> None:
        self.state = json.loads(json.dumps(state))  # as the database would keep it


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


def spec_path(version: str = "v2.159") -> Path:
    """X's OpenAPI spec of that version, as vendored with the tests."""
    return SPECS / f"openapi-{version}.json"


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


def served_spec(version: str, directory: Path) -> Path:
    """The spec of `version` written to `directory` as Prism serves it (OAuth 1.0a as a header key)."""
    spec = json.loads(spec_path(version).read_text(encoding="utf-8"))
    spec["components"]["securitySchemes"]["UserToken"] = {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
    }
    served = directory / f"openapi-{version}.json"
    served.write_text(json.dumps(spec), encoding="utf-8")
    return served


@pytest.fixture(scope="session", params=list(VERSIONS))
def x_api_version(request: pytest.FixtureRequest) -> str:
    """The spec version the X peers of this test speak."""
    version: str = request.param
    return version


@pytest.fixture(scope="session")
def x_spec(x_api_version: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """X's spec of this version as Prism serves it."""
    if not prism_path().is_file():
        _missing(f"Prism not found at {prism_path()} (run .ci/install-prism.sh or set PRISM)")
    return served_spec(x_api_version, tmp_path_factory.mktemp("x-spec"))


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
def x_fake_server(x_api_version: str) -> Iterator[FakeX]:
    fake = FakeX(vocabulary=VERSIONS[x_api_version])
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
def x_peer(x_fake_server: FakeX, x_prism_proxy: PrismProcess, x_api_version: str) -> Iterator[XPeer]:
    """A fresh fake X behind Prism's validating proxy."""
    x_fake_server.reset()
    yield XPeer(fake=x_fake_server, base_url=x_prism_proxy.base_url, version=x_api_version)
    x_fake_server.reset()
