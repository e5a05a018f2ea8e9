"""A backlog of mentions on mastodon-mock: how long carebot takes to answer it all, against a bare client.

    python bench/backlog.py [--mentions 1000] [--runs 3] [--latency-ms 0] [--postgres URL]

The floor is the simplest client that does the same job: a Mastodon.py script (its own process, like
carebot) that pages the brand's mention notifications forward with `min_id` and posts one reply per
mention, one after the other. carebot is the real CLI, `carebot run --once` (repeated until nothing is
left, up to 30 times: the number of runs it needed is printed), in `auto` mode with `backfill`, on a
fresh SQLite file and on a fresh PostgreSQL schema. The runs are paired and interleaved (floor, SQLite,
PostgreSQL, then the next round in another order), so a drift in the machine's load hits each alike.

Each variant answers its own brand account, made for it, and the same customers (one mention each, so no
case joins two of them). Requests are counted on the mock's side (uvicorn's access log), from the start
of the variant to its end. Afterwards every mention must have exactly one reply from its brand: the bench
exits 1 on a duplicate or a missing one.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.peers import mastodon as mastodon_peer  # noqa: E402
from tests.peers.database import POSTGRES_URL, scratch_schema  # noqa: E402

PAGE = 40  # carebot's default page_size; the floor pages the same
TEXTS = (  # questions the FAQ answers publicly, in auto mode, with one reply
    "how do I reset my password? ({i})",
    "I forgot my password, how do I reset it? ({i})",
    "quick one: how do I reset my password on the app? ({i})",
)
MAX_ONCE_RUNS = 30
SEED_THREADS = 8


# --- the floor: a bare client ---------------------------------------------------------------------------


def floor_worker(base_url: str, token: str) -> None:
    """Page the mention notifications forward with min_id; one reply per mention, sequentially."""
    from mastodon import Mastodon

    api = Mastodon(access_token=token, api_base_url=base_url, ratelimit_method="throw", version_check_mode="none")
    api.account_verify_credentials()
    cursor = "0"
    while True:
        page = api.notifications(types=["mention"], min_id=cursor, limit=PAGE)
        if not page:
            break
        for notification in sorted(page, key=lambda n: (len(str(n["id"])), str(n["id"]))):
            status = notification["status"]
            api.status_post(
                f"@{status['account']['acct']} Thanks for asking: use 'Forgot password' on the sign-in page.",
                in_reply_to_id=status["id"],
                visibility=status["visibility"],
            )
            cursor = str(notification["id"])
        if len(page) < PAGE:
            break


# --- the mock and its seed ------------------------------------------------------------------------------


@dataclass
class Mock:
    base_url: str
    log: Path

    def requests(self) -> int:
        """Requests the mock has answered so far (uvicorn's access log, one line each)."""
        return self.log.read_bytes().count(b'HTTP/1.1" ')


@contextmanager
def mock_server(folder: Path) -> Iterator[Mock]:
    """mastodon-mock as a subprocess with its access log on (mastodon_subprocess keeps it quiet)."""
    config = folder / "mock.toml"
    config.write_text(mastodon_peer.config_toml(), encoding="utf-8")
    port = mastodon_peer.free_port()
    log_path = folder / "mock.log"
    with log_path.open("wb") as log:
        command = [
            sys.executable, "-m", "mastodon_mock", "serve", "--config", str(config),
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "info",
        ]  # fmt: skip
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "TMPDIR": str(folder)}
        )
        base_url = f"http://127.0.0.1:{port}"
        try:
            mastodon_peer._wait_ready(base_url, process, log_path)
            yield Mock(base_url, log_path)
        finally:
            mastodon_peer.stop_process(process)


def dev_user(http: httpx.Client, username: str) -> str:
    response = http.post("/api/v1/_mock/dev_user", json={"username": username})
    response.raise_for_status()
    return str(response.json()["access_token"])


def seed(base_url: str, brand: str, customers: list[str]) -> list[str]:
    """Each customer mentions `brand` once; the mentions' status ids."""

    def post(i: int) -> str:
        text = "@" + brand + " " + TEXTS[i % len(TEXTS)].format(i=i)
        headers = {"Authorization": f"Bearer {customers[i]}"}
        response = httpx.post(f"{base_url}/api/v1/statuses", data={"status": text}, headers=headers, timeout=30)
        response.raise_for_status()
        return str(response.json()["id"])

    with ThreadPoolExecutor(SEED_THREADS) as pool:
        return list(pool.map(post, range(len(customers))))


def replies_of(base_url: str, token: str) -> Counter[str]:
    """How many of the brand's statuses answer each status id."""
    counts: Counter[str] = Counter()
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        me = http.get("/api/v1/accounts/verify_credentials").json()["id"]
        max_id: str | None = None
        while True:
            params = {"limit": "40", **({"max_id": max_id} if max_id else {})}
            page = http.get(f"/api/v1/accounts/{me}/statuses", params=params).json()
            if not page:
                return counts
            counts.update(str(s["in_reply_to_id"]) for s in page if s.get("in_reply_to_id"))
            max_id = str(page[-1]["id"])


# --- the variants ---------------------------------------------------------------------------------------


@dataclass
class Result:
    variant: str
    seconds: float
    requests: int
    answered: int
    duplicates: int
    missing: int
    once_runs: int = 1
    cpu: float = 0.0  # CPU seconds of the client's process (user + system)
    run: int = 0


def carebot_config(folder: Path, base_url: str, storage_url: str) -> Path:
    config = folder / "carebot.yaml"
    config.write_text(
        f"""brand:
  name: Acme
  support_email: help@acme.example
storage:
  url: {storage_url}
daemon:
  max_replies_per_author_hour: 1000
accounts:
  - name: acme
    platform: mastodon
    base_url: {base_url}
    access_token: ${{BRAND_TOKEN}}
    mode: auto
    backfill: 24h
    timeout: 30s
""",
        encoding="utf-8",
    )
    return config


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_carebot(config: Path, token: str, mentions: list[str], mock: Mock) -> tuple[float, int, int]:
    """`carebot run --once` until every mention is answered (or a run answers nothing new): the seconds
    and requests of the runs (the bench's own checks between them not counted), and how many runs."""
    env = {**os.environ, "BRAND_TOKEN": token, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "bot.cli", "run", "--once", "--config", str(config)]
    seconds, requests, answered = 0.0, 0, 0
    for runs in range(1, MAX_ONCE_RUNS + 1):
        before, started = mock.requests(), time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        seconds += time.perf_counter() - started
        requests += mock.requests() - before
        if done.returncode not in (0, 1):
            raise SystemExit(
                f"carebot run --once exited {done.returncode}:\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
            )
        counts = replies_of(mock.base_url, token)
        now_answered = sum(1 for m in mentions if counts[m] > 0)
        if now_answered >= len(mentions) or now_answered == answered:
            return seconds, requests, runs
        answered = now_answered
    return seconds, requests, MAX_ONCE_RUNS


def run_variant(
    variant: str, mock: Mock, http: httpx.Client, customers: list[str], tag: str, pg: str, latency_ms: float
) -> Result:
    brand = f"brand_{tag}"
    token = dev_user(http, brand)
    mentions = seed(mock.base_url, brand, customers)
    once_runs = 1
    latency(mock, latency_ms)
    cpu = children_cpu()
    with tempfile.TemporaryDirectory(prefix="carebot-backlog-") as scratch:
        folder = Path(scratch)
        if variant == "floor":
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            command = [sys.executable, str(Path(__file__)), "--floor-worker", mock.base_url, token]
            before, started = mock.requests(), time.perf_counter()
            subprocess.run(command, cwd=ROOT, env=env, check=True)
            seconds, requests = time.perf_counter() - started, mock.requests() - before
        elif variant == "sqlite":
            config = carebot_config(folder, mock.base_url, f"sqlite:///{folder / 'carebot.db'}")
            seconds, requests, once_runs = run_carebot(config, token, mentions, mock)
        else:
            with scratch_schema(pg, "carebot_backlog") as url:
                config = carebot_config(folder, mock.base_url, url)
                seconds, requests, once_runs = run_carebot(config, token, mentions, mock)
    latency(mock, 0)
    cpu = children_cpu() - cpu
    counts = replies_of(mock.base_url, token)
    per_mention = [counts[m] for m in mentions]
    return Result(
        variant=variant,
        seconds=seconds,
        requests=requests,
        answered=sum(1 for c in per_mention if c >= 1),
        duplicates=sum(c - 1 for c in per_mention if c > 1),
        missing=sum(1 for c in per_mention if c == 0),
        once_runs=once_runs,
        cpu=cpu,
    )


def latency(mock: Mock, ms: float) -> None:
    """Every API request answered `ms` later (0: none); the fault lives only while a variant runs."""
    httpx.delete(f"{mock.base_url}/api/v1/_mock/faults", timeout=10).raise_for_status()
    if ms > 0:
        effect = {"type": "latency", "delay_ms": int(ms)}
        mastodon_peer.add_fault(mock.base_url, effect=effect, path="/api/v1/*", count=None)


# --- main -----------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mentions", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added by the mock to every API request")
    parser.add_argument("--postgres", default=POSTGRES_URL, help="database for the PostgreSQL variant")
    parser.add_argument("--variants", default="floor,sqlite,postgresql")
    parser.add_argument("--floor-worker", nargs=2, metavar=("BASE_URL", "TOKEN"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor_worker:
        floor_worker(*args.floor_worker)
        return 0
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    results: list[Result] = []
    with (
        tempfile.TemporaryDirectory(prefix="carebot-backlog-mock-") as scratch,
        mock_server(Path(scratch)) as mock,
        httpx.Client(base_url=mock.base_url, timeout=30) as http,
    ):
        with ThreadPoolExecutor(SEED_THREADS) as pool:
            customers = list(pool.map(lambda i: dev_user(http, f"cust{i:05d}"), range(args.mentions)))
        for run in range(args.runs):
            order = variants[run % len(variants) :] + variants[: run % len(variants)]
            for variant in order:
                result = run_variant(variant, mock, http, customers, f"{run}_{variant}", args.postgres, args.latency_ms)
                result.run = run
                results.append(result)
                print(
                    f"run {run + 1} {variant:<10} {result.seconds:7.2f} s  {result.requests} requests "
                    f"({result.requests / max(result.answered, 1):.3f}/answered)  answered {result.answered}  "
                    f"duplicates {result.duplicates}  missing {result.missing}  run --once x{result.once_runs}  "
                    f"CPU {result.cpu:.1f} s",
                    flush=True,
                )
    return report(results, variants, args)


def report(results: list[Result], variants: list[str], args: argparse.Namespace) -> int:
    print(f"\n{args.mentions} mentions, {args.runs} paired runs, latency {args.latency_ms:g} ms; medians:")
    floor = [r.seconds for r in results if r.variant == "floor"]
    floor_median = statistics.median(floor) if floor else None
    for variant in variants:
        mine = [r for r in results if r.variant == variant]
        seconds = statistics.median(r.seconds for r in mine)
        per = statistics.median(r.requests / max(r.answered, 1) for r in mine)
        ratio = ""
        if floor_median and variant != "floor":
            # Also the median of each run's own ratio: the floor of the same round shared its load.
            floors = {r.run: r.seconds for r in results if r.variant == "floor"}
            paired = statistics.median(r.seconds / floors[r.run] for r in mine if r.run in floors)
            ratio = f"  {seconds / floor_median:.2f}x the floor (paired {paired:.2f}x)"
        runs = f"  run --once x{max(r.once_runs for r in mine)}" if variant != "floor" else ""
        cpu = statistics.median(r.cpu for r in mine)
        print(f"  {variant:<10} {seconds:7.2f} s{ratio}  {per:.3f} requests/answered mention  CPU {cpu:.1f} s{runs}")
    bad = [r for r in results if r.duplicates or r.missing]
    for r in bad:
        print(f"FAILED: {r.variant}: {r.duplicates} duplicate(s), {r.missing} missing", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
