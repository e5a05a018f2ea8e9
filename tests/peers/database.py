"""Database fixtures: every storage test runs on SQLite and on PostgreSQL.

PostgreSQL is the one on this machine (127.0.0.1:5432, database `test`, trust auth), or the URL in
CAREBOT_TEST_POSTGRES. Each test gets its own schema, dropped afterwards, so tests never see each other's
rows. Where PostgreSQL is unreachable the PostgreSQL variants skip with the reason, except under CI=true,
where they fail: CI must prove both backends.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from bot.storage import Storage

POSTGRES_URL = os.environ.get("CAREBOT_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _postgres_unreachable() -> str | None:
    try:
        engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(text("select 1"))
        engine.dispose()
    except (OperationalError, ImportError) as exc:
        return f"PostgreSQL at {POSTGRES_URL} is not reachable: {str(exc).splitlines()[0]}"
    return None


_postgres_problem: list[str | None] = []


def postgres_schema_url() -> Iterator[str]:
    """A URL whose connections use a fresh schema; the schema is dropped when the generator closes."""
    if not _postgres_problem:
        _postgres_problem.append(_postgres_unreachable())
    problem = _postgres_problem[0]
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{problem} (CI=true: storage tests must run on PostgreSQL)")
        pytest.skip(problem)
    with scratch_schema(POSTGRES_URL, "carebot_test") as url:
        yield url


@contextmanager
def scratch_schema(base_url: str, prefix: str) -> Iterator[str]:
    """A URL of `base_url` whose connections use a new schema, dropped when the block ends."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base_url)
    with admin.begin() as connection:
        connection.execute(text(f'create schema "{schema}"'))
    separator = "&" if "?" in base_url else "?"
    try:
        yield f"{base_url}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'drop schema "{schema}" cascade'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL on each backend in turn."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'carebot.db'}"
    else:
        yield from postgres_schema_url()


@pytest.fixture
def storage(db_url: str) -> Iterator[Storage]:
    store = Storage.open(db_url)
    yield store
    store.close()
