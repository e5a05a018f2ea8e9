"""What a running carebot tells Prometheus (`/metrics`), and whether it is healthy (`/health`).

Counters and the classifier's latency are counted as the work happens, in a registry of this process;
the queue, pauses and last good cycles are read from storage at each scrape, so every worker reports the
same shared truth. `carebot run` serves both on `metrics.port` (bot/web/ops.py), without the desk.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bot.clock import format_duration, now
from bot.config import Config
from bot.storage import Storage

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass
class Metrics:
    """One process's counters; `watch` adds the figures read from storage at each scrape."""

    registry: CollectorRegistry = field(default_factory=lambda: CollectorRegistry(auto_describe=True))

    def __post_init__(self) -> None:
        r = self.registry
        self.mentions = Counter("carebot_mentions", "New mentions stored", ["account"], registry=r)
        self.replies = Counter(
            "carebot_replies",
            "Replies the outbox handled, by outcome (sent, retried, parked)",
            ["account", "outcome"],
            registry=r,
        )
        self.cycles = Counter(
            "carebot_cycles", "Cycles run, by result (ok, paused, error)", ["account", "result"], registry=r
        )
        self.streamed = Counter(
            "carebot_streamed_batches", "Batches of streamed mentions answered between cycles", ["account"], registry=r
        )
        self.budget = Gauge(
            "carebot_request_budget_remaining",
            "Requests left before the platform's reset, as its last answer said (absent: not reported)",
            ["account"],
            registry=r,
        )
        self.classifier_seconds = Histogram(
            "carebot_classifier_seconds", "Time to classify one mention", buckets=LATENCY_BUCKETS, registry=r
        )

    def cycle(self, account: str, *, new: int, sent: int, retried: int, parked: int, result: str) -> None:
        self._handled(account, new, sent, retried, parked)
        self.cycles.labels(account, result).inc()

    def stream_batch(self, account: str, *, new: int, sent: int, retried: int, parked: int) -> None:
        """Streamed mentions answered between cycles (bot/run/stream.py): counted, but not as a cycle."""
        self._handled(account, new, sent, retried, parked)
        self.streamed.labels(account).inc()

    def _handled(self, account: str, new: int, sent: int, retried: int, parked: int) -> None:
        self.mentions.labels(account).inc(new)
        for outcome, count in (("sent", sent), ("retried", retried), ("parked", parked)):
            self.replies.labels(account, outcome).inc(count)

    def watch(self, storage: Storage, config: Config) -> None:
        self.registry.register(StorageFigures(storage, config))


class StorageFigures(Collector):
    """Gauges read from the database at each scrape: the queue, pauses, last good cycles, alerts."""

    def __init__(self, storage: Storage, config: Config) -> None:
        self.storage = storage
        self.config = config

    def describe(self) -> Iterator[Metric]:
        return iter(())  # read at scrape time only

    def collect(self) -> Iterator[Metric]:
        at = now()
        waiting = self.storage.figures.waiting_by_account()
        states = {state.name: state for state in self.storage.accounts.all()}
        depth = GaugeMetricFamily("carebot_queue_depth", "Posts with a reply waiting for a person", labels=["account"])
        oldest = GaugeMetricFamily(
            "carebot_queue_oldest_wait_seconds", "How long the longest-waiting post has waited", labels=["account"]
        )
        paused = GaugeMetricFamily("carebot_account_paused", "1 while the account is paused", labels=["account"])
        last = GaugeMetricFamily(
            "carebot_last_good_cycle_timestamp_seconds", "When the account's last good cycle ended", labels=["account"]
        )
        for account in self.config.accounts:
            name = account.name
            count, since = waiting.get(name, (0, None))
            depth.add_metric([name], count)
            oldest.add_metric([name], max((at - since).total_seconds(), 0.0) if since else 0.0)
            state = states.get(name)
            is_paused = state is not None and state.paused_until is not None and state.paused_until > at
            paused.add_metric([name], 1.0 if is_paused else 0.0)
            if state is not None and state.last_cycle_at is not None:
                last.add_metric([name], state.last_cycle_at.timestamp())
        alerts = GaugeMetricFamily("carebot_alerts_undelivered", "Alerts the team has not been told yet")
        alerts.add_metric([], len(self.storage.alerts.undelivered()))
        yield from (depth, oldest, paused, last, alerts)


@dataclass(frozen=True)
class Health:
    ok: bool
    lines: list[str]


def health(
    storage: Storage,
    config: Config,
    started_at: datetime,
    intervals: dict[str, float] | None = None,
    at: datetime | None = None,
) -> Health:
    """Healthy when the database answers and each account had a good cycle lately.

    "Lately": within `metrics.stale_after`, or three poll intervals if that is longer. A process that has
    just started gets that long for its first cycle.
    """
    at = at or now()
    try:
        storage.ping()
    except Exception as exc:
        return Health(False, [f"database: does not answer ({type(exc).__name__})"])
    lines = ["database: ok"]
    ok = True
    states = {state.name: state for state in storage.accounts.all()}
    for account in config.accounts:
        interval = (intervals or {}).get(account.name, account.poll_interval)
        limit = timedelta(seconds=max(config.metrics.stale_after, 3 * interval))
        state = states.get(account.name)
        last = state.last_cycle_at if state is not None else None
        since = max(last, started_at) if last is not None else started_at
        if at - since <= limit:
            when = f"last good cycle {format_duration(at - last)} ago" if last else "starting: no cycle yet"
            lines.append(f"{account.name}: ok ({when})")
            continue
        ok = False
        reason = f" ({state.pause_reason})" if state is not None and state.pause_reason else ""
        ago = f"{format_duration(at - last)} ago" if last else "never"
        lines.append(f"{account.name}: stale: last good cycle {ago}, more than {format_duration(limit)}{reason}")
    return Health(ok, lines)
