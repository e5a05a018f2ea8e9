"""Every setting of carebot's config file, written once: its key, type, default, doc and check.

The dataclasses mirror the YAML (`daemon.max_attempts` is `Config.daemon.max_attempts`). A field made
with `setting()` is a key; one without a default is required. `bot.config.read` walks these classes, and
`config.example.yaml` documents every key (a test checks that it names them all).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.config import checks
from bot.hours import BusinessHours
from bot.models import Mode
from bot.setting import internal, setting


@dataclass(frozen=True)
class Brand:
    name: str = setting(doc="used in replies")
    support_email: str = setting(doc="the channel every hand-off points to", check=checks.email)
    support_url: str | None = setting(None, doc="optional help page; never used in X replies", check=checks.url)
    default_language: str = setting(
        "en", doc="en | ru | id | ar: replies to posts in other languages", check=checks.language
    )
    handles: tuple[str, ...] = setting(
        (), doc="the brand's own handles (its account is added automatically)", check=checks.handles
    )


@dataclass(frozen=True)
class StorageConfig:
    url: str = setting(doc="sqlite:///FILE (relative to the config file) or postgresql+psycopg://user@host/db")
    retention: float | None = setting(
        None,
        doc="after this, stored post texts are masked and private messages erased (e.g. 90d); none: kept",
        check=checks.duration,
    )
    give_up_after: float = setting(
        600.0,
        doc="`carebot run` exits (status 1) when it could not write to the database for this long",
        check=checks.duration,
    )


@dataclass(frozen=True)
class ClassifierConfig:
    min_confidence: float = setting(
        0.55, doc="below this, a reply waits for a person instead of going out", check=checks.fraction
    )
    model: Path | None = setting(
        None,
        doc="a model file from `carebot train --output FILE` (default: the shipped model)",
        read=lambda r, v, p: r.file(v, p),
    )


@dataclass(frozen=True)
class DaemonConfig:
    max_attempts: int = setting(5, doc="tries before a reply is parked as failed", check=checks.positive)
    retry_backoff: float = setting(
        5.0, doc="seconds before the first retry; doubles each time, with jitter", check=checks.duration
    )
    page_size: int = setting(40, doc="mentions per request", check=checks.positive)
    max_pages_per_cycle: int = setting(
        500, doc="a cycle reads every page there is, up to this many (a safety valve)", check=checks.positive
    )
    send_concurrency: int = setting(
        4,
        doc="replies of one account posted at once, 1-16 (each case's in order; 1: one at a time)",
        check=checks.concurrency,
    )
    max_replies_per_author_hour: int = setting(
        3, doc="more automated replies than this to one author needs a person (bot loops)", check=checks.positive
    )
    log_level: str = setting("INFO", doc="DEBUG | INFO | WARNING | ERROR", check=checks.log_level)


@dataclass(frozen=True)
class WebConfig:
    host: str = setting("127.0.0.1", doc="the address the approval desk listens on")
    port: int = setting(8080, doc="the port the approval desk listens on", check=checks.port)
    # name -> "scrypt$..." line from `carebot web hash-password`; hashes, yet kept out of reprs too.
    users: Mapping[str, str] = setting(
        factory=dict,
        doc="name: hash line from `carebot web hash-password`",
        read=lambda r, v, p: r.users(v, p),
        shown=False,
    )
    admin_token: str | None = setting(None, doc='logs in as "admin"', secret=True)
    secret_key: str | None = setting(None, doc="signs session cookies; random per process if not given", secret=True)
    access: Mapping[str, tuple[str, ...]] = setting(
        factory=dict,
        doc="user: [accounts] that user may act on (a user not listed, and admin, act on all)",
        read=lambda r, v, p: r.access(v, p),
    )
    session_max_age: float = setting(12 * 3600.0, doc="a login lasts this long", check=checks.duration)
    secure_cookies: bool = setting(False, doc="true when people reach the desk over HTTPS (via a proxy)")
    trusted_proxies: tuple[str, ...] = setting(
        (), doc="addresses of your reverse proxies: only their X-Forwarded-For is believed", check=checks.addresses
    )


@dataclass(frozen=True)
class MetricsConfig:
    host: str = setting("127.0.0.1", doc="the address /metrics and /health listen on")
    port: int | None = setting(
        None, doc="serve /metrics and /health from `carebot run` on this port", check=checks.port
    )
    stale_after: float = setting(
        600.0,
        doc="/health fails when an account's last good cycle is older than this (or 3 poll intervals)",
        check=checks.duration,
    )


@dataclass(frozen=True)
class NotifyConfig:
    webhook_url: str | None = setting(
        None, doc="Slack-compatible webhook; the URL holds a token", secret=True, check=checks.url
    )
    wait_threshold: float = setting(
        15 * 60.0, doc="a reply waiting for a person longer than this is announced", check=checks.duration
    )
    urgent: bool = setting(True, doc="announce each urgent complaint as it arrives")
    account_down_after: float = setting(
        15 * 60.0,
        doc="an account with no good cycle this long is announced, once (refused credentials at once)",
        check=checks.duration,
    )
    desk_url: str | None = setting(
        None, doc="the approval desk's public address, linked in each message", check=checks.url
    )
    timeout: float = setting(10.0, doc="one webhook request", check=checks.duration)
    max_attempts: int = setting(4, doc="5xx, 429 and timeouts are retried with backoff", check=checks.positive)


@dataclass(frozen=True)
class Target:
    """How soon a person must act on a case of one situation, in business hours (seconds); None: no target."""

    first_response: float | None = setting(None, doc="a person's first answer", check=checks.duration)
    resolution: float | None = setting(None, doc="the case resolved", check=checks.duration)


DEFAULT_TARGETS: Mapping[str, Target] = {
    "complaint": Target(first_response=3600.0, resolution=86400.0),
    "contact_request": Target(first_response=4 * 3600.0),
    "simple_question": Target(first_response=4 * 3600.0),
    "price_question": Target(first_response=4 * 3600.0),
}


@dataclass(frozen=True)
class CasesConfig:
    join_window: float = setting(
        24 * 3600.0, doc="a new post from the same author joins their open case within this time", check=checks.duration
    )
    holding_every: float = setting(
        24 * 3600.0, doc="at most one automatic holding reply per case in this time", check=checks.duration
    )
    check_back_after: float = setting(
        24 * 3600.0,
        doc="after a person resolves a case, the check-back goes out this much later",
        check=checks.duration,
    )
    check_back: bool = setting(True, doc="send a check-back after a person resolves a case")
    close_after: float = setting(
        3 * 86400.0, doc="a resolved case with no new post closes after this", check=checks.duration
    )
    idle_close_after: float = setting(
        7 * 86400.0,
        doc="a case waiting on the customer closes after this without news (not a complaint no person answered)",
        check=checks.duration,
    )
    on_thanks: str = setting(
        "propose",
        doc='"thanks, it works now": propose (a person confirms) | resolve (at once)',
        check=checks.one_of(("propose", "resolve")),
    )
    business_hours: BusinessHours = setting(
        factory=BusinessHours,
        doc="when the team works: targets count only these hours",
        read=lambda r, v, p: r.hours(v, p),
    )
    targets: Mapping[str, Target] = setting(
        factory=lambda: dict(DEFAULT_TARGETS),
        doc="per situation: first_response and resolution, in business hours",
        read=lambda r, v, p: r.targets(v, p),
    )


@dataclass(frozen=True)
class IncidentsConfig:
    window: float = setting(
        30 * 60.0, doc="complaints about one topic within this time count towards an incident", check=checks.duration
    )
    min_reports: int = setting(
        5,
        doc="people (distinct authors) reporting one topic within the window that make an incident",
        check=checks.positive,
    )
    notify_per_hour: int = setting(
        90,
        doc="fixed-notifications sent per hour after a resolve (Mastodon allows 300 posts per 3 h; leave room)",
        check=checks.positive,
    )


@dataclass(frozen=True)
class AccountConfig:
    """One account. Its platform adds its own secret keys and options (see `connectors/<platform>.py`)."""

    name: str = setting(doc="your name for the account: used in logs and the queue", check=checks.one_line)
    platform: str = setting(doc="mastodon | x")
    base_url: str = setting(doc="the server the account lives on (some platforms have a default)", check=checks.url)
    mode: Mode = setting(
        Mode.AUTO, doc="auto | approve (everything waits) | dry-run (never posts)", check=checks.member_of(Mode)
    )
    poll_interval: float = setting(30.0, doc="seconds between reads of the mentions", check=checks.duration)
    backfill: float | None = setting(
        None,
        doc="on the first run, also answer mentions this recent (e.g. 24h); default: from now on",
        check=checks.duration,
    )
    timeout: float = setting(10.0, doc="one HTTP request", check=checks.duration)
    overlap: float | None = setting(
        None,
        doc="each read starts this far back, for posts that become visible late (default: the platform's, 2m)",
        check=checks.duration,
    )
    secrets: Mapping[str, str] = internal(factory=dict, repr=False)  # the platform's secret keys, resolved
    options: Mapping[str, Any] = internal(factory=dict)  # the platform's own options, checked


@dataclass(frozen=True)
class Config:
    brand: Brand = setting(doc="who the bot speaks for")
    storage: StorageConfig = setting(doc="the database", read=lambda r, v, p: r.storage(v, p))
    accounts: tuple[AccountConfig, ...] = setting(doc="the accounts to watch", read=lambda r, v, p: r.accounts(v, p))
    classifier: ClassifierConfig = setting(factory=ClassifierConfig, doc="how sure the classifier must be")
    playbooks: Path | None = setting(
        None,
        doc="a directory with your own playbooks (default: the shipped ones)",
        read=lambda r, v, p: r.directory(v, p),
    )
    daemon: DaemonConfig = setting(factory=DaemonConfig, doc="the running loop")
    web: WebConfig = setting(factory=WebConfig, doc="the approval desk")
    notify: NotifyConfig = setting(factory=NotifyConfig, doc="webhook alerts to the team")
    cases: CasesConfig = setting(factory=CasesConfig, doc="following a person's problem from first post to check-back")
    incidents: IncidentsConfig = setting(factory=IncidentsConfig, doc="many people reporting the same problem")
    metrics: MetricsConfig = setting(factory=MetricsConfig, doc="Prometheus /metrics and /health of `carebot run`")
    path: Path | None = internal(None)  # the file this was read from
    warnings: tuple[str, ...] = internal(())  # what is allowed but unwise (a secret written in the file)

    def account(self, name: str) -> AccountConfig:
        for account in self.accounts:
            if account.name == name:
                return account
        raise KeyError(name)
