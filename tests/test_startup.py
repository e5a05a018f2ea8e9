"""Short commands load only what they use: start-up is most of their time (bench/startup.py measures it).

Each command runs in a fresh interpreter, which then names the libraries it loaded: a command that needs no
database must not load SQLAlchemy, one that needs no platform must not load the client libraries, and none
loads Alembic when the database is already at the newest revision.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests import configs

HEAVY = ("sqlalchemy", "alembic", "numpy", "requests", "mastodon", "tweepy", "httpx", "starlette", "uvicorn")
PROBE = """
import contextlib, io, json, os, sys
from bot.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        status = main(sys.argv[1:])
    except SystemExit as exc:  # --help, --version
        status = exc.code
heavy = sorted({name.split(".")[0] for name in sys.modules} & set(os.environ["HEAVY"].split()))
print(json.dumps({"status": status, "loaded": heavy, "run": sorted(m for m in sys.modules if m.startswith("bot.run")),
                  "decide": sorted(m for m in sys.modules if m.startswith("bot.decide"))}))
"""
ENV = {"BRAND_TOKEN": "t0ken-1234", "X_TOKEN": "x-t0ken-1234", "HEAVY": " ".join(HEAVY)}


def loaded_by(*argv: str) -> dict[str, object]:
    """Run `carebot ARGV` in a fresh interpreter: its exit status, the heavy libraries and daemon parts it loaded."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **ENV},
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def config_file(tmp_path: Path) -> Path:
    """Both platforms: reading their options must not load either client library."""
    accounts = [configs.mastodon_account("https://mastodon.example"), configs.x_account("https://api.x.example")]
    return configs.write_config(tmp_path, db_url=f"sqlite:///{tmp_path / 'carebot.db'}", accounts=accounts)


def test_help_and_an_offline_config_check_load_no_database_and_no_platform_library(tmp_path: Path) -> None:
    path = config_file(tmp_path)
    for argv in (("--help",), ("check-config", "--offline", "--config", str(path))):
        found = loaded_by(*argv)
        assert found["loaded"] == [], argv


def test_the_queue_and_status_load_the_database_but_not_alembic_once_it_is_migrated(tmp_path: Path) -> None:
    path = config_file(tmp_path)
    first = loaded_by("queue", "list", "--config", str(path))  # a new database: migrated by Alembic
    assert first["status"] == 0 and "alembic" in first["loaded"]  # type: ignore[operator]
    for argv in (("queue", "list"), ("status",), ("history",), ("cases", "list")):
        found = loaded_by(*argv, "--config", str(path))
        assert found["status"] == 0, argv
        assert found["loaded"] == ["sqlalchemy"], argv
    assert loaded_by("status", "--config", str(path))["decide"] == []  # figures, not decisions


def test_classify_loads_the_model_but_no_database(tmp_path: Path) -> None:
    found = loaded_by("classify", "my order never arrived")
    assert found["status"] == 0
    assert "sqlalchemy" not in found["loaded"] and "requests" not in found["loaded"]  # type: ignore[operator]
    assert found["run"] == []
