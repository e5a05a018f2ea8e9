"""Mention → reply latency of a real `carebot run` at a sustained rate, streaming and polling (issue 17).

    python bench/latency.py [--rate 5] [--minutes 5] [--mode stream|poll|both] [--poll 5]
                            [--stream-poll 30] [--db sqlite|postgresql]

mastodon-mock runs as a subprocess on 127.0.0.1; `carebot run` (the real CLI, a child process, `auto`
mode, so replies go out without approval) answers the brand's mentions while customers post at `--rate`
mentions a second for `--minutes`. Latency is measured on the server's own clock: a reply's `created_at`
minus its mention's. Printed per run: p50, p95 and max, p95 per minute (a queue that grows shows as a
rising p95), how many mentions were still unanswered when posting stopped (the backlog), and the ratio
of p95 to the target: 1 s with streaming, `--poll` + 1 s when polling. Then every mention must have
exactly one reply: the exit status is 1 if any has none or more than one, or if a target is missed.

The streaming run keeps polling every `--stream-poll` seconds (the safety net), as a deployment would.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
from sqlalchemy import create_engine

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.crash_peers import Daemon  # noqa: E402
from bench.scaleout import cpu_seconds, usage  # noqa: E402
from tests.peers import mastodon as peer  # noqa: E402
from tests.peers.database import POSTGRES_URL, scratch_schema  # noqa: E402

TEXT = "@brand how can I reach support? question {n}"  # a question the playbooks answer at once
START_TIMEOUT = 60.0
DRAIN_TIMEOUT = 60.0  # after posting stops, how long the daemon may take to answer what is left
STOP_GRACE = 15.0


@dataclass
class Run:
    mode: str  # "stream" | "poll"
    poll: float
    target: float
    posted: dict[str, datetime] = field(default_factory=dict)  # mention id -> created_at (server clock)
    post_errors: int = 0
    behind: int = 0  # posts that left later than their slot by more than a second (the poster fell behind)
    backlog: int = 0  # unanswered when posting stopped
    latencies: dict[str, float] = field(default_factory=dict)  # mention id -> seconds
    minutes: list[list[float]] = field(default_factory=list)  # latencies by the minute the mention was posted
    missing: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    reads: int = 0  # notification requests (accounts.requests)
    mentions_read: int = 0  # mentions read, the overlap's re-reads included (accounts.posts_read)
    cpu: float = 0.0  # carebot's CPU seconds, start to stop


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=5.0, help="mentions per second")
    parser.add_argument("--minutes", type=float, default=5.0, help="how long customers post")
    parser.add_argument("--mode", choices=("stream", "poll", "both"), default="both")
    parser.add_argument("--poll", type=float, default=5.0, help="poll interval of the polling run (seconds)")
    parser.add_argument("--stream-poll", type=float, default=30.0, help="poll interval of the streaming run")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--log", type=Path, help="keep carebot's log of each run as LOG.<mode>")
    options = parser.parse_args()
    modes = ("stream", "poll") if options.mode == "both" else (options.mode,)
    runs = []
    for mode in modes:
        poll = options.stream_poll if mode == "stream" else options.poll
        target = 1.0 if mode == "stream" else options.poll + 1.0
        run = Run(mode, poll, target)
        with tempfile.TemporaryDirectory(prefix="carebot-latency-") as scratch:
            one_run(run, Path(scratch), options.rate, options.minutes, options.db)
            if options.log is not None:
                kept = options.log.with_name(f"{options.log.name}.{mode}")
                kept.write_bytes((Path(scratch) / "carebot.log").read_bytes())
        print(report(run, options.rate, options.minutes, options.db), flush=True)
        runs.append(run)
    failed = [r for r in runs if r.missing or r.duplicates or percentile(list(r.latencies.values()), 95) > r.target]
    return 1 if failed else 0


def one_run(run: Run, workdir: Path, rate: float, minutes: float, db: str) -> None:
    with peer.mastodon_subprocess(workdir / "mastodon") as mock, database(db, workdir) as db_url:
        config = write_config(workdir, mock.base_url, db_url, run)
        daemon = Daemon(config, {"BRAND_TOKEN": peer.token_of(peer.BRAND)}, workdir / "carebot.log")
        daemon.start()
        try:
            wait(lambda: daemon.running() or not daemon.alive(), START_TIMEOUT, "carebot to start")
            if not daemon.alive():
                raise SystemExit(f"carebot run exited:\n{daemon.log_text()[-3000:]}")
            ready = "listening to the notification stream" if run.mode == "stream" else "carebot running"
            wait(lambda: ready in daemon.log_text(), START_TIMEOUT, "the stream")
            time.sleep(2.0)  # the first cycle has set the cursor: mentions from now on are answered
            post_at_rate(run, mock.base_url, rate, minutes)
            replies = brand_replies(mock.base_url)
            run.backlog = sum(1 for m in run.posted if m not in replies)
            wait(lambda: set(run.posted) <= set(brand_replies(mock.base_url)), DRAIN_TIMEOUT + run.poll, "")
        finally:
            run.cpu = cpu_seconds(daemon.pid) if daemon.pid else 0.0
            status = daemon.terminate(STOP_GRACE) if daemon.alive() else daemon.exit_status
            if status not in (0, None):
                print(f"carebot run exited with {status}; the log ends:\n{daemon.log_text()[-3000:]}")
            daemon.close()
        measure(run, brand_replies(mock.base_url))
        engine = create_engine(db_url)
        try:
            run.reads, run.mentions_read = usage(engine)
        finally:
            engine.dispose()


def write_config(workdir: Path, base_url: str, db_url: str, run: Run) -> Path:
    stream = "    stream: true\n" if run.mode == "stream" else ""
    text = f"""brand:
  name: Acme
  support_email: help@acme.example
  support_url: https://acme.example/help
storage:
  url: {db_url}
daemon:
  max_replies_per_author_hour: 1000000
cases:
  join_window: 1ms
accounts:
  - name: latency
    platform: mastodon
    base_url: {base_url}
    access_token: ${{BRAND_TOKEN}}
    mode: auto
    poll_interval: {run.poll:g}s
{stream}"""
    path = workdir / "carebot.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@contextmanager
def database(kind: str, workdir: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'carebot.db'}"
        return
    with scratch_schema(POSTGRES_URL, "carebot_latency") as url:
        yield url


def post_at_rate(run: Run, base_url: str, rate: float, minutes: float) -> None:
    """Each customer posts in turn, one mention every 1/rate seconds on a fixed schedule (a slow answer
    does not shift the later posts); two posting threads, so one slow post does not hold the next."""
    total = int(rate * minutes * 60)
    clients = {name: httpx.Client(base_url=base_url, timeout=30) for name in peer.CUSTOMERS}
    lock = threading.Lock()
    start = time.monotonic() + 0.5

    def poster(offset: int, step: int) -> None:
        for n in range(offset, total, step):
            slot = start + n / rate
            delay = slot - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            late = -delay > 1.0
            who = peer.CUSTOMERS[n % len(peer.CUSTOMERS)]
            try:
                answer = clients[who].post(
                    "/api/v1/statuses",
                    data={"status": TEXT.format(n=n)},
                    headers={"Authorization": f"Bearer {peer.token_of(who)}"},
                )
                answer.raise_for_status()
                status = answer.json()
            except (httpx.HTTPError, json.JSONDecodeError):
                with lock:
                    run.post_errors += 1
                continue
            with lock:
                run.posted[str(status["id"])] = parse_time(status["created_at"])
                run.behind += late

    threads = [threading.Thread(target=poster, args=(i, 2)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for api in clients.values():
        api.close()


def brand_replies(base_url: str) -> dict[str, list[datetime]]:
    """The brand's public replies on the server, by the mention they answer: their creation times."""
    found: dict[str, list[datetime]] = {}
    headers = {"Authorization": f"Bearer {peer.token_of(peer.BRAND)}"}
    with httpx.Client(base_url=base_url, timeout=30, headers=headers) as api:
        me = api.get("/api/v1/accounts/verify_credentials").json()
        max_id: str | None = None
        while True:
            params = {"limit": "40", **({"max_id": max_id} if max_id else {})}
            page = api.get(f"/api/v1/accounts/{me['id']}/statuses", params=params).json()
            if not page:
                return found
            for status in page:
                if status["in_reply_to_id"] and status["visibility"] != "direct":
                    found.setdefault(str(status["in_reply_to_id"]), []).append(parse_time(status["created_at"]))
            max_id = str(page[-1]["id"])


def measure(run: Run, replies: dict[str, list[datetime]]) -> None:
    if not run.posted:
        return
    first = min(run.posted.values())
    for mention, posted_at in run.posted.items():
        answers = replies.get(mention, [])
        if not answers:
            run.missing.append(mention)
            continue
        if len(answers) > 1:
            run.duplicates.append(mention)
        seconds = (min(answers) - posted_at).total_seconds()
        run.latencies[mention] = seconds
        minute = int((posted_at - first).total_seconds() // 60)
        while len(run.minutes) <= minute:
            run.minutes.append([])
        run.minutes[minute].append(seconds)


def report(run: Run, rate: float, minutes: float, db: str) -> str:
    values = list(run.latencies.values())
    p50, p95 = percentile(values, 50), percentile(values, 95)
    worst = max(values, default=float("nan"))
    per_minute = " ".join(f"{percentile(m, 95):.2f}" for m in run.minutes)
    verdict = "ok" if p95 <= run.target and not run.missing and not run.duplicates else "MISSED"
    lines = [
        f"== {run.mode} (poll every {run.poll:g} s), {rate:g} mentions/s for {minutes:g} min, {db} ==",
        f"mentions posted {len(run.posted)} (post errors {run.post_errors}, posted late {run.behind})",
        f"latency s: p50 {p50:.2f}  p95 {p95:.2f}  max {worst:.2f}",
        f"p95 per minute s: {per_minute}",
        f"backlog when posting stopped: {run.backlog}",
        f"target p95 <= {run.target:g} s: p95/target {p95 / run.target:.2f} -> {verdict}",
        f"one reply each: missing {len(run.missing)}, answered twice {len(run.duplicates)}",
        f"notification reads {run.reads}, mentions read {run.mentions_read} "
        f"({run.mentions_read / max(len(run.posted), 1):.2f} per mention posted); carebot CPU {run.cpu:.1f} s",
    ]
    return "\n".join(lines)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def wait(condition: object, timeout: float, what: str) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            if what:
                raise SystemExit(f"gave up waiting for {what}")
            return
        time.sleep(0.5)


if __name__ == "__main__":
    sys.exit(main())
