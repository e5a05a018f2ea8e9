"""Scale-out: 1, 2 and 4 `carebot run` workers on one PostgreSQL database, 10 accounts, one backlog.

mastodon-mock (a subprocess) holds 10 brand accounts, each with its own token, and `--mentions` posts by
customers, spread over the brands, posted before any worker starts (each account's `backfill` answers
them). Every API request then gets the mock's `latency` fault (`--get-ms` for reads, `--post-ms` for
posts: a platform across the internet, not one on loopback), so that the platform's answers, not this
machine's cores, set the pace. For each worker count: a fresh PostgreSQL schema, the mock wiped and seeded
again, W workers started with the real CLI (`python -m bot.cli run`, `auto` mode, 1 s poll interval),
and the clock runs until every mention has its reply recorded as sent. Then the server is checked: each
mention must have exactly one public reply of its brand (a duplicate or a missing one makes the exit
status 1), and the notification reads the workers made are counted (`accounts.requests`; `posts_read` is
mentions read, re-reads included).

    python -m bench.scaleout                      # 5,000 mentions, 1, 2 and 4 workers
    python -m bench.scaleout --mentions 500 --workers 1 2
    python -m bench.scaleout --mentions 2000 --mocks 5   # the brands spread over 5 mastodon-mock processes

One mastodon-mock process is one Python interpreter with a pool of 15 SQLite connections: a few workers'
requests in flight exhaust it (its log says `QueuePool limit ... reached`). `--mocks N` runs N of them, the
brands spread over them (brand n on server n % N, every customer on each), so that the platform is less
of the limit; the machine's cores then are.

CPU: each worker's and the mock's CPU seconds (from /proc) over the wall time say how many of the cores
they used; next to the machine's own busy share (/proc/stat, everything on it), that tells whether the
platform's latency or the CPU was the bottleneck.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import Engine, create_engine, text

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.crash_peers import Daemon  # noqa: E402
from bot.storage import Storage  # noqa: E402
from tests.peers import mastodon as mastodon_peer  # noqa: E402
from tests.peers.database import POSTGRES_URL, scratch_schema  # noqa: E402

CUSTOMERS = 20
TEXTS = (
    "@{brand} how can I contact your support team? is there an email?",
    "@{brand} does the app have a dark mode?",
)
TICKS = os.sysconf("SC_CLK_TCK")


def brands(accounts: int) -> list[str]:
    return [f"brand{n}" for n in range(accounts)]


def customers() -> list[str]:
    return [f"customer{n}" for n in range(CUSTOMERS)]


def seed_config(accounts: int) -> mastodon_peer.SeedConfig:
    seeded = [
        mastodon_peer.SeedAccount(username=name, display_name=name, access_token=f"{name}_token", bot=True)
        for name in brands(accounts)
    ]
    seeded += [
        mastodon_peer.SeedAccount(username=name, display_name=name, access_token=f"{name}_token")
        for name in customers()
    ]
    return mastodon_peer.SeedConfig(accounts=seeded)


def write_config(path: Path, urls: list[str], db_url: str, accounts: int, poll: float) -> Path:
    lines = [
        "brand:",
        "  name: Acme",
        "  support_email: help@acme.example",
        "  support_url: https://acme.example/help",
        "storage:",
        f'  url: "{db_url}"',
        "accounts:",
    ]
    for n, name in enumerate(brands(accounts)):
        lines += [
            f"  - name: {name}",
            "    platform: mastodon",
            f"    base_url: {server_of(urls, n)}",
            f"    access_token: ${{{name.upper()}_TOKEN}}",
            "    mode: auto",
            f"    poll_interval: {poll}s",
            "    backfill: 24h",
            "    timeout: 10s",
        ]
    lines += [
        "daemon:",
        "  max_replies_per_author_hour: 1000000",
        "  retry_backoff: 1s",
        "  log_level: INFO",
        "cases:",
        "  join_window: 1ms",  # every post a case of its own: each is answered by the playbooks
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


# --- the platform ----------------------------------------------------------------------------------
# One mastodon-mock process, or several (`--mocks`): brand n lives on server n % mocks, each server holding
# every customer, so that one process's capacity (its CPU, its 15 database connections) is not the limit.


def server_of(urls: list[str], brand: int) -> str:
    return urls[brand % len(urls)]


def post_backlog(urls: list[str], mentions: int, accounts: int) -> dict[str, str]:
    """Post the mentions (customer i % 20 to brand i % accounts); post -> the brand it mentions. A post is
    named by its server and its id (two servers may give the same id)."""
    names, people = brands(accounts), customers()

    def post(i: int) -> tuple[str, str]:
        brand, who, server = names[i % accounts], people[i % CUSTOMERS], server_of(urls, i % accounts)
        body = TEXTS[i % len(TEXTS)].format(brand=brand)
        answer = http.post(
            f"{server}/api/v1/statuses", data={"status": body}, headers={"Authorization": f"Bearer {who}_token"}
        )
        answer.raise_for_status()
        return post_key(server, answer.json()["id"]), brand

    with httpx.Client(timeout=30, limits=httpx.Limits(max_connections=8)) as http, ThreadPoolExecutor(8) as pool:
        return dict(pool.map(post, range(mentions)))


def post_key(base_url: str, post_id: object) -> str:
    return f"{base_url}#{post_id}"


def add_latency(urls: list[str], get_ms: int, post_ms: int) -> None:
    for base_url in urls:
        for methods, delay in ((["GET"], get_ms), (["POST", "PUT", "DELETE"], post_ms)):
            mastodon_peer.add_fault(
                base_url, effect={"type": "latency", "delay_ms": delay}, path="/api/*", methods=methods, count=None
            )


def clear_faults(urls: list[str]) -> None:
    for base_url in urls:
        httpx.delete(f"{base_url}/api/v1/_mock/faults", timeout=10).raise_for_status()


def public_replies(urls: list[str], accounts: int) -> Counter[str]:
    """How many public replies each post got from the brands (the servers' view)."""
    found: Counter[str] = Counter()
    with httpx.Client(timeout=30) as http:
        for n, brand in enumerate(brands(accounts)):
            base_url = server_of(urls, n)
            headers = {"Authorization": f"Bearer {brand}_token"}
            me = http.get(f"{base_url}/api/v1/accounts/verify_credentials", headers=headers).json()["id"]
            since = "0"
            while True:
                page = http.get(
                    f"{base_url}/api/v1/accounts/{me}/statuses",
                    params={"min_id": since, "limit": 40},
                    headers=headers,
                ).json()
                if not page:
                    break
                for status in page:
                    if status["visibility"] != "direct" and status["in_reply_to_id"]:
                        found[post_key(base_url, status["in_reply_to_id"])] += 1
                since = max((str(s["id"]) for s in page), key=lambda i: (len(i), i))
    return found


# --- CPU -------------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def machine_ticks() -> tuple[int, int]:
    """(busy, total) ticks of the whole machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


# --- one run ---------------------------------------------------------------------------------------


@dataclass
class Run:
    workers: int
    seconds: float = 0.0
    answered: int = 0
    duplicates: int = 0
    missing: int = 0
    reads: int = 0
    posts_read: int = 0
    worker_cpu: float = 0.0  # CPU seconds of all workers
    mock_cpu: float = 0.0
    machine_busy: float = 0.0  # share of all cores busy, everything on the machine
    timed_out: bool = False
    peer_failed: bool = False  # the mock stopped answering: the server could not be checked
    seed_rate: float = 0.0  # posts per second the mock took while the backlog was posted (8 clients, no latency)
    per_worker_cpu: list[float] = field(default_factory=list)

    def rate(self, mentions: int) -> float:
        return mentions / self.seconds if self.seconds else 0.0


def run(options: argparse.Namespace, workers: int, mocks: list[mastodon_peer.RunningMock], workdir: Path) -> Run:
    result = Run(workers)
    urls = [mock.base_url for mock in mocks]
    for url in urls:
        mastodon_peer.reset(url)
    seeding = time.monotonic()
    posted = post_backlog(urls, options.mentions, options.accounts)
    result.seed_rate = options.mentions / (time.monotonic() - seeding)
    add_latency(urls, options.get_ms, options.post_ms)
    env = {f"{name.upper()}_TOKEN": f"{name}_token" for name in brands(options.accounts)}
    with scratch_schema(options.postgres_url, "carebot_scaleout") as db_url, ExitStack() as stack:
        config = write_config(workdir / f"carebot-{workers}.yaml", urls, db_url, options.accounts, 1.0)
        Storage.open(db_url).close()  # the schema first: the clock measures the work, not one migration
        engine = create_engine(db_url)
        stack.callback(engine.dispose)
        daemons = [Daemon(config, env, workdir / f"worker-{workers}-{n}.log") for n in range(workers)]
        mock_cpu0, (busy0, total0) = sum(cpu_seconds(mock.pid) for mock in mocks), machine_ticks()
        started = time.monotonic()
        for daemon in daemons:
            daemon.start()
            stack.callback(daemon.close)
        deadline = started + options.timeout
        while True:
            time.sleep(0.25)
            if _sent(engine) >= options.mentions:
                break
            if time.monotonic() > deadline:
                result.timed_out = True
                break
            for daemon in daemons:
                if not daemon.alive():
                    raise RuntimeError(f"a worker exited on its own:\n{daemon.log_text()[-3000:]}")
        result.seconds = time.monotonic() - started
        result.per_worker_cpu = [cpu_seconds(d.pid) if d.pid else 0.0 for d in daemons]
        result.worker_cpu = sum(result.per_worker_cpu)
        result.mock_cpu = sum(cpu_seconds(mock.pid) for mock in mocks) - mock_cpu0
        busy1, total1 = machine_ticks()
        result.machine_busy = (busy1 - busy0) / max(total1 - total0, 1)
        for daemon in daemons:
            daemon.terminate(10.0)
        result.reads, result.posts_read = usage(engine)
    try:
        clear_faults(urls)
        replies = public_replies(urls, options.accounts)
    except httpx.TransportError:
        # mastodon-mock can wedge under many clients (it then answers nothing, not even /health)
        result.peer_failed = True
        return result
    result.answered = sum(1 for post in posted if replies[post] == 1)
    result.duplicates = sum(1 for post in posted if replies[post] > 1)
    result.missing = sum(1 for post in posted if replies[post] == 0)
    return result


def usage(engine: Engine) -> tuple[int, int]:
    """Notification requests and mentions read (re-reads included), all accounts together."""
    with engine.connect() as db:
        reads, read = db.execute(text("SELECT sum(requests), sum(posts_read) FROM accounts")).one()
    return int(reads or 0), int(read or 0)


def _sent(engine: object) -> int:
    with engine.connect() as db:  # type: ignore[attr-defined]
        return int(
            db.execute(
                text("SELECT count(*) FROM replies WHERE state = 'sent' AND kind = 'public' AND purpose = 'answer'")
            ).scalar_one()
        )


def report(options: argparse.Namespace, runs: list[Run], base: Run | None = None) -> str:
    first = base or (runs[0] if runs else None)
    base_rate = first.rate(options.mentions) if first else 0.0
    lines = [
        f"{options.mentions} mentions over {options.accounts} accounts, one PostgreSQL database; platform latency "
        f"{options.get_ms} ms per read, {options.post_ms} ms per post; {max(1, options.mocks)} mastodon-mock "
        f"process(es); {os.cpu_count()} cores",
        "",
        "workers  seconds  mentions/s  vs 1   reads  mentions read  duplicates  missing  worker CPU  mock CPU"
        "  machine busy",
    ]
    for r in runs:
        cores = r.worker_cpu / r.seconds if r.seconds else 0.0
        rate = r.rate(options.mentions)
        lines.append(
            f"{r.workers:>7}  {r.seconds:>7.1f}  {rate:>10.1f}  {rate / base_rate if base_rate else 0:>4.2f}×"
            f"  {r.reads:>5}  {r.posts_read:>13}  {r.duplicates:>10}  {r.missing:>7}  {cores:>6.2f} cores"
            f"  {r.mock_cpu / r.seconds if r.seconds else 0:>5.2f}  {r.machine_busy:>11.0%}"
            + ("  (timed out)" if r.timed_out else "")
            + ("  (the mock stopped answering: not checked)" if r.peer_failed else "")
        )
    lines.append("")
    for r in runs:
        lines.append(
            f"{r.workers} worker(s): CPU seconds per worker {', '.join(f'{c:.1f}' for c in r.per_worker_cpu)}; "
            + _bottleneck(r)
            + f"; the mock(s) took {r.seed_rate:.0f} posts/s at most (while seeding, no latency)"
        )
    return "\n".join(lines)


def _bottleneck(r: Run) -> str:
    if r.machine_busy >= 0.9:
        return f"the machine was {r.machine_busy:.0%} busy (everything on it): CPU-bound"
    return f"the machine was {r.machine_busy:.0%} busy: the platform's latency set the pace"


@contextmanager
def _workdir(keep: str | None) -> Iterator[Path]:
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        yield Path(keep)
        return
    with tempfile.TemporaryDirectory(prefix="carebot-scaleout-") as scratch:
        yield Path(scratch)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mentions", type=int, default=5000)
    parser.add_argument("--accounts", type=int, default=10)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--get-ms", type=int, default=50, help="latency of each read (default 50 ms)")
    parser.add_argument("--post-ms", type=int, default=100, help="latency of each post (default 100 ms)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds one worker count may take")
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    parser.add_argument("--keep", metavar="DIR", help="keep the configs and the workers' logs in DIR")
    parser.add_argument(
        "--mocks", type=int, default=1, help="mastodon-mock processes, the brands spread over them (default 1)"
    )
    options = parser.parse_args(argv)
    runs: list[Run] = []
    with _workdir(options.keep) as workdir, ExitStack() as servers:
        seed = seed_config(options.accounts)
        mocks = [
            servers.enter_context(mastodon_peer.mastodon_subprocess(workdir / f"mastodon-{n}", seed=seed))
            for n in range(max(1, options.mocks))
        ]
        for workers in options.workers:
            if runs and runs[-1].peer_failed:
                break  # the mock is wedged: nothing more can run against it
            runs.append(run(options, workers, mocks, workdir))
            # each row as soon as it is known: a later worker count may run out of time
            print(report(options, runs[-1:], base=runs[0]), file=sys.stderr, flush=True)
    print(report(options, runs))
    failed = any(r.duplicates or r.missing or r.timed_out or r.peer_failed for r in runs)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
