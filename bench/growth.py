"""Growth: does an idle cycle, `carebot status` and every desk page stay as fast with a million stored mentions?

    python bench/growth.py [--sizes 1000,1000000] [--backends sqlite,postgresql] [--repeat 7]

For each backend and size, a fresh database is migrated and seeded directly with SQL (server-side, so a million
rows take a minute): N mentions, one a minute (a million is two years of 1,440 a day), one sent reply each, a
case per two mentions (closed), urgent alerts delivered, topics of complaints. The newest 200 mentions are the
live part, the same at every size: open cases, half of their replies waiting for a person. So only history
grows, and a page that slows down with N is reading history it does not show. Then, with carebot's own code
against mastodon-mock (in-process, no new posts):

- `idle cycle`: `run_cycle` of the account plus the alert jobs (a webhook configured, so alerts are looked for)
- `status`: what `carebot status` computes (account figures and case figures)
- the desk pages a person opens: the queue, history, sent, cases, one case, incidents

Each figure is the median of `--repeat` runs after one warm-up; the ratio is the time at the largest size over
the time at the smallest (target: <= 2x). PostgreSQL is analysed after seeding (autovacuum would be in
production); SQLite is not (carebot does not run ANALYZE: SQLite's statistics are averages, and with them it
takes "state = 'pending'" for a quarter of the table and stops using the state index). PostgreSQL is
127.0.0.1:5432, database `test` ($CAREBOT_BENCH_POSTGRES to change), in a scratch schema dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from mastodon_mock.config import SeedAccount, SeedConfig  # noqa: E402
from mastodon_mock.testing import MockServer  # noqa: E402
from sqlalchemy import text  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from bot.config import load_config  # noqa: E402
from bot.run.alerts import raise_mention_alerts  # noqa: E402
from bot.run.app import App  # noqa: E402
from bot.run.cycle import run_cycle  # noqa: E402
from bot.run.daemon import run_once  # noqa: E402
from bot.run.notify import deliver_alerts  # noqa: E402
from bot.run.status import account_status, case_status  # noqa: E402
from bot.web.asgi import create_app  # noqa: E402
from tests.peers.database import scratch_schema  # noqa: E402

TOKEN = "bench-brand-token"  # a token of the throwaway local mock server
ADMIN = "bench-admin-token"
LIVE = 200  # the newest mentions: open cases, replies waiting; the same at every size
POSTGRES = os.environ.get("CAREBOT_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PAGES = ("/", "/history", "/history?show=sent", "/cases", "/cases/{case}", "/incidents")


def config_text(base_url: str, db_url: str, webhook: str) -> str:
    return f"""brand:
  name: Acme
  support_email: help@acme.example
storage:
  url: {db_url}
accounts:
  - name: acme
    platform: mastodon
    base_url: {base_url}
    access_token: {TOKEN}
web:
  admin_token: {ADMIN}
notify:
  webhook_url: {webhook}
"""


class Sink(BaseHTTPRequestHandler):
    """The team's chat: takes every alert (the live replies waiting are announced on the first cycle)."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def webhook() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def seed(app: App, size: int) -> int:
    """Seed `size` mentions with their replies, cases, alerts and topics; returns a live case's id."""
    engine = app.storage.db._engine
    postgres = engine.dialect.name == "postgresql"
    numbers = (
        "generate_series(1, :n) AS g(i)"
        if postgres
        else "(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < :n) SELECT i FROM s) AS g"
    )

    def ago(seconds: str) -> str:  # a timestamp `seconds` before now, as each backend stores it
        if postgres:
            return f"(now() - ({seconds}) * interval '1 second')"
        return f"(strftime('%Y-%m-%d %H:%M:%S', 'now', '-' || ({seconds}) || ' seconds') || '.000000')"

    # A mention a minute (1,440 a day: a million is two years), the newest live ones 7 seconds apart
    age = f"CASE WHEN i > :n - {LIVE} THEN (:n - i) * 7 ELSE (:n - i) * 60 END"
    live = f"i > :n - {LIVE}"
    case = "((i + 1) / 2)"
    situation = "CASE i % 5 WHEN 0 THEN 'complaint' WHEN 1 THEN 'simple_question' WHEN 2 THEN 'contact_request' "
    situation += "WHEN 3 THEN 'price_question' ELSE 'other' END"
    false_, true_ = ("false", "true") if postgres else ("0", "1")
    statements = [
        f"""INSERT INTO cases (id, account, platform, author_id, author_handle, lang, situation, state, urgent,
            priority, escalated, customer_replied, resolve_proposed, thread_deleted, opened_at, updated_at,
            last_customer_at, first_auto_response_at, resolutions, closed_at)
          SELECT {case}, 'acme', 'mastodon', 'a' || ({case} % 40000), 'a' || ({case} % 40000), 'en', {situation},
            CASE WHEN {live} THEN 'waiting_on_us' ELSE 'closed' END, {false_}, 0, {false_}, {false_}, {false_},
            {false_}, {ago(age)}, {ago(age)}, {ago(age)}, {ago(age)}, 0,
            CASE WHEN {live} THEN NULL ELSE {ago(age)} END
          FROM {numbers} WHERE i % 2 = 1""",
        f"""INSERT INTO mentions (id, account, platform, post_id, cursor, author_id, author_handle, author_name,
            author_is_bot, text, created_at, received_at, conversation_id, visibility, mentions_brand, lang,
            situation, confidence, scores, personal_data, angry, opt_out, action, reason, urgent, priority, case_id)
          SELECT i, 'acme', 'mastodon', 'p' || i, '' || i, 'a' || ({case} % 40000), 'a' || ({case} % 40000), '',
            {false_}, '@acme my order ' || i || ' never arrived', {ago(age)}, {ago(age)}, 'c' || {case}, 'public',
            {true_}, 'en', {situation}, 0.9, '{{}}', '[]', {false_}, {false_}, 'reply', 'seed',
            CASE WHEN i % 5 = 0 THEN {true_} ELSE {false_} END, 0, {case}
          FROM {numbers}""",
        f"""INSERT INTO replies (id, mention_id, account, kind, purpose, case_id, text, state, idempotency_key,
            platform_post_id, attempts, reworded, decided_by, sent_at, created_at, updated_at)
          SELECT i, i, 'acme', 'public', 'answer', {case}, '@a sorry about that, we are on it',
            CASE WHEN {live} AND i % 2 = 0 THEN 'pending' ELSE 'sent' END, 'seed-' || i,
            CASE WHEN {live} AND i % 2 = 0 THEN NULL ELSE 'r' || i END, 1, {false_}, 'auto',
            CASE WHEN {live} AND i % 2 = 0 THEN NULL ELSE {ago(age)} END, {ago(age)}, {ago(age)}
          FROM {numbers}""",
        f"""INSERT INTO case_events (case_id, at, kind, actor, text, mention_id)
          SELECT {case}, {ago(age)}, 'joined', 'bot', 'seed', i FROM {numbers}""",
        f"""INSERT INTO alerts (key, kind, account, mention_id, text, state, attempts, created_at, delivered_at)
          SELECT 'urgent:' || i, 'urgent', 'acme', i, 'urgent complaint', 'delivered', 1, {ago(age)}, {ago(age)}
          FROM {numbers} WHERE i % 5 = 0""",
        f"""INSERT INTO mention_topics (mention_id, topic, account, author_id, lang, at)
          SELECT i, 'delivery', 'acme', 'a' || ({case} % 40000), 'en', {ago(age)} FROM {numbers} WHERE i % 5 = 0""",
    ]
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement), {"n": size})
        if postgres:  # the explicit ids above leave the sequences behind
            for table in ("cases", "mentions", "replies"):
                connection.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), :n)"), {"n": size})
    if postgres:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("ANALYZE"))
    return (size + 1) // 2  # the newest case: live


def median_ms(call: Callable[[], object], repeat: int) -> float:
    call()  # warm-up: caches, prepared statements, the first page's templates
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def measure(app: App, live_case: int, repeat: int) -> dict[str, float]:
    account = app.config.accounts[0]
    figures: dict[str, float] = {}

    def idle_cycle() -> None:
        report = run_cycle(app, account)
        assert report.error is None and report.new == 0, report
        raise_mention_alerts(app.storage, app.config)
        deliver_alerts(app.storage, app.config)

    def status() -> None:
        account_status(app.storage, account)
        case_status(app.config, app.storage, account.name)

    figures["idle cycle"] = median_ms(idle_cycle, repeat)
    figures["status"] = median_ms(status, repeat)
    desk = create_app(app.config, app.storage, app.classifier, app.playbooks)
    with TestClient(desk, base_url="http://127.0.0.1", follow_redirects=False) as client:
        login = client.get("/login").text
        csrf = login.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        assert client.post("/login", data={"csrf": csrf, "token": ADMIN}).status_code == 303
        for page in PAGES:
            path = page.format(case=live_case)

            def get(path: str = path) -> None:
                response = client.get(path)
                assert response.status_code == 200, (path, response.status_code)

            figures[f"desk {page.replace('{case}', 'N')}"] = median_ms(get, repeat)
    return figures


@contextmanager
def database(backend: str, workdir: Path, size: int) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{workdir / f'growth-{size}.db'}"
    else:
        with scratch_schema(POSTGRES, "carebot_growth") as url:
            yield url


def run(backend: str, size: int, repeat: int, workdir: Path) -> dict[str, float]:
    brand = SeedAccount(username="brand", display_name="Acme", bot=True, access_token=TOKEN)
    seed_config = SeedConfig(accounts=[brand])
    with MockServer(seed=seed_config) as server, database(backend, workdir, size) as url, webhook() as hook:
        path = workdir / "carebot.yaml"
        path.write_text(config_text(server.base_url, url, hook), encoding="utf-8")
        app = App.build(load_config(path))
        try:
            run_once(app)  # verifies the account and sets its cursor to now
            started = time.perf_counter()
            live_case = seed(app, size)
            print(f"  {backend}: seeded {size:,} mentions in {time.perf_counter() - started:.1f} s", flush=True)
            return measure(app, live_case, repeat)
        finally:
            app.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,1000000", help="stored mentions, comma-separated")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    results: dict[tuple[str, int], dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="carebot-growth-") as tmp:
        for backend in args.backends.split(","):
            for size in sizes:
                results[(backend, size)] = run(backend, size, args.repeat, Path(tmp))
    worst = 0.0
    small, large = min(sizes), max(sizes)
    print(f"\n{'backend':<11} {'what':<22} " + " ".join(f"{f'{size:,}':>11}" for size in sizes) + "      ratio")
    for backend in args.backends.split(","):
        for what in results[(backend, small)]:
            row = [results[(backend, size)][what] for size in sizes]
            ratio = results[(backend, large)][what] / results[(backend, small)][what]
            worst = max(worst, ratio)
            flag = "" if ratio <= 2 else "  over 2x"
            print(f"{backend:<11} {what:<22} " + " ".join(f"{ms:>8.1f} ms" for ms in row) + f"  {ratio:>6.2f}x{flag}")
    print(f"\nworst ratio {worst:.2f}x (target <= 2x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
