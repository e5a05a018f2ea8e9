"""The image's contents, checked without a Docker engine: the wheel built from exactly what the Dockerfile
copies, installed into a fresh virtual environment, runs; and the Dockerfile, compose.yaml, the container
config and the README's Docker section agree with each other."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
import yaml
from mastodon_mock.testing import MockServer

from bot.config import load_config
from tests.peers.mastodon import post_as

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
CONTAINER_CONFIG = ROOT / "docker" / "carebot.yaml"
README = (ROOT / "README.md").read_text(encoding="utf-8")
CONTAINER_ENV = {
    "MASTODON_BASE_URL": "https://mastodon.example",
    "MASTODON_TOKEN": "t0ken-1234",
    "CAREBOT_ADMIN_TOKEN": "admin-token-1234",
    "CAREBOT_WEB_SECRET": "cookie-key-1234",
}


def instructions(name: str) -> list[str]:
    return [line.split(None, 1)[1] for line in DOCKERFILE.splitlines() if line.startswith(f"{name} ")]


def test_the_dockerfile_keeps_the_database_in_a_volume_and_exposes_the_ports() -> None:
    config = load_config(CONTAINER_CONFIG, CONTAINER_ENV)
    assert config.storage.url == "sqlite:////data/carebot.db"
    assert instructions("VOLUME") == ['["/data"]']
    exposed = {int(p) for p in instructions("EXPOSE")[0].split()}
    assert exposed == {config.web.port, config.metrics.port}
    assert config.web.host == "0.0.0.0" and config.metrics.host == "0.0.0.0"
    (env,) = instructions("ENV")
    assert env == "CAREBOT_CONFIG=/config/carebot.yaml"
    assert instructions("USER") == ["carebot"]


def test_compose_runs_workers_on_postgresql_and_the_desk_with_the_container_config() -> None:
    services = COMPOSE["services"]
    assert set(services) == {"postgres", "carebot", "desk"}
    assert services["carebot"]["command"] == ["run"] and services["carebot"]["deploy"]["replicas"] >= 2
    assert services["desk"]["command"] == ["web"]
    for name in ("carebot", "desk"):
        (mount,) = services[name]["volumes"]
        source, target, _mode = mount.split(":")
        assert (ROOT / source).resolve() == CONTAINER_CONFIG
        assert f"CAREBOT_CONFIG={target}" in DOCKERFILE
        assert services[name]["environment"]["CAREBOT_DATABASE_URL"].startswith("postgresql+psycopg://")
    # Every variable the container config reads is given by compose (or has a default there).
    used = set(re.findall(r"\$\{([A-Z_]+)\}", CONTAINER_CONFIG.read_text(encoding="utf-8")))
    assert used <= set(services["carebot"]["environment"])
    postgres_url = services["carebot"]["environment"]["CAREBOT_DATABASE_URL"]
    with_password = postgres_url.replace("${POSTGRES_PASSWORD}", "pw")
    config = load_config(CONTAINER_CONFIG, {**CONTAINER_ENV, "CAREBOT_DATABASE_URL": with_password})
    assert config.storage.url == "postgresql+psycopg://carebot:pw@postgres/carebot"


def test_the_readme_docker_section_matches_the_files() -> None:
    section = README.split("## Docker", 1)[1].split("\n## ", 1)[0]
    for needed in ("-v carebot-data:/data", "/config/carebot.yaml", "docker/carebot.yaml", "compose.yaml", "9464"):
        assert needed in section, needed
    variables = set(re.findall(r"\$\{([A-Z_]+)(?::-[^}]*)?\}", CONTAINER_CONFIG.read_text(encoding="utf-8")))
    for variable in variables:
        assert f"`{variable}`" in section, f"the README's Docker section does not document {variable}"
    for port in instructions("EXPOSE")[0].split():
        assert port in section


def _fresh_carebot(tmp_path: Path) -> Path:
    """The wheel built from what the Dockerfile copies, installed as the image installs it: its `carebot`."""
    context = tmp_path / "context"
    context.mkdir()
    for copy in instructions("COPY"):
        *sources, _target = copy.split()
        for source in sources:
            origin = ROOT / source
            if origin.is_dir():  # symbolic links stay links, as Docker's COPY keeps them
                ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
                shutil.copytree(origin, context / source, symlinks=True, ignore=ignore)
            else:
                shutil.copy(origin, context / source)
    dist = tmp_path / "dist"
    quiet = {"capture_output": True, "text": True, "timeout": 900}
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(dist), str(context)], **quiet)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = dist.glob("carebot-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    pip = env_dir / "bin" / "pip"
    installed = subprocess.run([str(pip), "install", "--quiet", f"{wheel}[postgres]"], **quiet)
    assert installed.returncode == 0, installed.stderr[-3000:]
    return env_dir / "bin" / "carebot"


@pytest.mark.slow
def test_the_image_s_wheel_runs_from_a_fresh_venv(tmp_path: Path, mastodon_server: MockServer) -> None:
    carebot = _fresh_carebot(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **CONTAINER_ENV}

    def run(*argv: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(carebot), *argv], cwd=work, env={**env, **extra}, capture_output=True, text=True)

    version = run("--version")
    assert version.returncode == 0 and version.stdout.startswith("carebot ")
    # The container config, with the data volume made a folder here.
    config = work / "carebot.yaml"
    config.write_text(CONTAINER_CONFIG.read_text().replace("/data/", f"{work}/"), encoding="utf-8")
    checked = run("check-config", "--offline", "--config", str(config))
    assert checked.returncode == 0, checked.stderr
    assert "configuration is valid (1 account(s))" in checked.stdout
    classified = run("classify", "@acme my card was charged twice and nobody answers")
    assert classified.returncode == 0 and classified.stdout.startswith("complaint"), classified.stderr  # the model
    assert run("init", str(work / "example.yaml")).returncode == 0  # the documented example is in the wheel
    # One real cycle against mastodon-mock: the migrations, the playbooks and the classifier are all in it.
    base = mastodon_server.base_url
    served = {"MASTODON_BASE_URL": base, "MASTODON_TOKEN": "brand_token", "CAREBOT_MODE": "auto"}
    first = run("run", "--once", "--config", str(config), **served)
    assert first.returncode == 0, first.stderr
    post_as(base, "alice", "@brand how do I reach support by email?")
    second = run("run", "--once", "--config", str(config), **served)
    assert second.returncode == 0, second.stderr
    assert "1 new, 1 sent" in second.stdout
    listed = run("history", "--config", str(config))
    assert "sent by the bot on its own" in listed.stdout
    assert os.path.exists(work / "carebot.db")
