"""What every platform connector is: a small protocol, the posts it returns, its errors.

A connector only translates between a platform's API and these types. It never
decides when to run (the daemon does), never touches the database, and raises
nothing but the errors below.

Error tree (catch the base, or a precise leaf)::

    ConnectorError               anything the platform made go wrong
    ├── AuthFailed               credentials refused (401/403 on auth): fix the config
    ├── RateLimited(retry_after) told to slow down: pause the account until then
    │   └── UsageCapped          the plan's cap for this day or month is spent: pause until
    │                            the period ends, and tell the team
    ├── Unavailable              5xx, timeout, connection refused: try again later
    ├── BadResponse              an answer we cannot parse: try again, then park
    └── Rejected                 the platform refused this one request for good
        └── DuplicateContent     the same text was posted recently: reword once
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable


class ConnectorError(Exception):
    """Base of every error a connector raises."""


class AuthFailed(ConnectorError):
    """The platform refused the account's credentials."""


class RateLimited(ConnectorError):
    """The platform asked us to wait `retry_after` seconds (at least)."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UsageCapped(RateLimited):
    """The account's plan allows no more of this until its period (a day, a month) ends."""

    def __init__(self, message: str, retry_after: float, period: str) -> None:
        super().__init__(message, retry_after)
        self.period = period  # "Daily" | "Monthly", as X names them


class Unavailable(ConnectorError):
    """A transient failure: server error, timeout, connection problem."""


class Unreachable(Unavailable):
    """The platform could not be reached: no connection, or the connection broke. It says nothing about what
    was asked: a reply that meets it has not failed, the platform has (an outage is waited out, not counted
    against each reply's attempts). A server that answers, even with 502 or 503, is not this: an error it
    keeps giving one reply is told from an outage by the attempts."""


class BadResponse(ConnectorError):
    """The platform answered with something we could not understand."""


class Rejected(ConnectorError):
    """The platform refused this request permanently (validation, policy)."""


class DuplicateContent(Rejected):
    """The platform refused the post because an identical one was posted recently."""


@dataclass(frozen=True)
class Author:
    id: str
    handle: str  # without the leading "@"; "user@domain" for remote Mastodon accounts
    display_name: str = ""
    is_bot: bool = False


@dataclass(frozen=True)
class Mention:
    """One post that mentions the brand, as plain text."""

    platform: str
    post_id: str
    cursor: str  # position in the platform's mention stream; fetch again after this
    author: Author
    text: str
    created_at: datetime
    url: str | None = None
    in_reply_to_id: str | None = None
    in_reply_to_author_id: str | None = None
    conversation_id: str | None = None
    visibility: str = "public"  # public | unlisted | private | direct
    language: str | None = None  # what the platform reports, if anything
    mentions_brand: bool = True  # False when the brand is only in the thread, not addressed
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Unreadable:
    """A post in the mention stream that could not be read (a broken field, a wrong shape): the core sets it
    aside (quarantine) and the cursor moves past it, so one bad post never stops an account."""

    post_id: str  # the post's id, or "notification:<id>" when the post has none we can read
    cursor: str
    reason: str  # what was wrong with it, never its text
    excerpt: str = ""  # some of its text as received, if any: the core masks and shortens it
    author_handle: str = ""  # as received, if any


@dataclass(frozen=True)
class MentionPage:
    """Mentions strictly after a cursor, oldest first, and the cursor after the last one."""

    mentions: list[Mention]
    next_cursor: str | None  # None when nothing new was seen
    has_more: bool = False  # more are waiting beyond this page
    unreadable: list[Unreadable] = field(default_factory=list)  # posts of this page that could not be read


@dataclass(frozen=True)
class AccountInfo:
    id: str
    handle: str
    max_characters: int


@dataclass(frozen=True)
class PostedReply:
    post_id: str
    url: str | None = None


@dataclass(frozen=True)
class RateBudget:
    """What the platform said about the account's request budget in its last answer."""

    remaining: int | None = None
    limit: int | None = None
    reset_at: datetime | None = None


class Connector(Protocol):
    """One platform account. Implementations live in `connectors/<platform>.py`."""

    platform: str
    min_poll_interval: float  # seconds between mention reads that keep within the platform's budget
    # How many replies may be posted at once from several threads (1: the connector is not thread-safe,
    # or its budget is kept request by request). The outbox sends min(this, daemon.send_concurrency).
    max_send_concurrency: int

    def verify(self) -> AccountInfo:
        """Check the credentials and return who we are and the post length limit."""
        ...

    def fetch_mentions(self, after: str | None, limit: int) -> MentionPage:
        """Mentions strictly after `after` (None: the most recent ones), oldest first, at most `limit`."""
        ...

    def reply(self, mention: Mention, text: str, idempotency_key: str) -> PostedReply:
        """Post `text` publicly as a reply to `mention`."""
        ...

    def send_direct(self, mention: Mention, text: str, idempotency_key: str) -> PostedReply:
        """Send `text` privately to the author of `mention`."""
        ...

    def find_reply(
        self,
        mention: Mention,
        idempotency_key: str,
        *,
        direct: bool = False,
        text: str | None = None,
        thorough: bool = False,
    ) -> PostedReply | None:
        """The brand's existing reply to `mention` (its private follow-up when `direct`), if an
        earlier attempt did post one. With `text`, only a reply with these words counts (several replies
        of ours may answer one post: the bot's, then a person's); compare with `same_words`.
        `thorough`: look as hard as the platform allows (wider, in the mention's conversation): the
        platform refused the reply as already posted."""
        ...

    def text_length(self, text: str) -> int:
        """Length of `text` as the platform counts it against `max_characters`."""
        ...

    def ignored_author_ids(self) -> frozenset[str]:
        """Ids of the accounts the brand blocked or muted: the bot never answers them."""
        ...

    def budget(self) -> RateBudget:
        """The request budget reported by the platform's last answer."""
        ...

    def close(self) -> None: ...


class Ledger(Protocol):
    """Where a metered connector keeps what it has asked of its platform, across processes.

    The core stores it (one per account); the connector alone knows what is in it.
    """

    def load(self) -> Mapping[str, Any]: ...

    def save(self, state: Mapping[str, Any]) -> None: ...


class MentionStream(Protocol):
    """A platform's live stream of the brand's mentions: a fast path next to the polled reads, never
    instead of them (a stream does not replay what was posted while it was down)."""

    def events(self) -> Iterator[Mention | None]:
        """None once connected (the cue to read the mentions the stream cannot replay), then each mention
        as it arrives; ends by raising a ConnectorError (a clean end is `Unavailable` too)."""
        ...

    def close(self) -> None:
        """End the connection; may be called from any thread, and wakes a read blocked in `events()`."""
        ...


@runtime_checkable
class Metered(Protocol):
    """A connector that counts every request and every billed object, and keeps within the account's
    plan (per 15 minutes, day and month) by remembering its calls in a `Ledger`."""

    def attach_ledger(self, ledger: Ledger) -> None: ...


@dataclass(frozen=True)
class CapUse:
    """How much of one of the plan's caps is used."""

    what: str  # "post reads this month"
    used: int
    limit: int | None  # None: no cap
    resets_at: datetime | None = None


@dataclass(frozen=True)
class UsageReport:
    """What a metered account has asked of its platform and what that probably cost, for `carebot status`."""

    plan: str  # "free", "pay-per-use"
    requests: int  # since the first start
    billed: Mapping[str, int]  # since the first start, by kind ("owned_read", "post_created", ...)
    month: Mapping[str, int]  # the same in the current billing month ("requests" included)
    month_started: datetime
    spend_month: float  # USD at the plan's prices (a flat fee counts in full)
    spend_total: float  # USD at the plan's prices, fees of past months not included
    caps: tuple[CapUse, ...] = ()
    capped: str | None = None  # why the account is paused by its plan, if it is


@dataclass(frozen=True)
class ConnectorSettings:
    """Everything a connector needs to talk to one account, already validated and resolved."""

    account: str  # the account's name in the config, for messages
    base_url: str
    secrets: Mapping[str, str] = field(repr=False)  # e.g. {"access_token": "..."}; never logged
    options: Mapping[str, Any] = field(default_factory=dict)  # platform-specific, see each Platform
    timeout: float = 10.0  # seconds for one HTTP request


_PLAIN_HANDLE = re.compile(r"[A-Za-z0-9_]{1,30}")


def plain_handle(handle: str) -> bool:
    """Letters, digits and "_", 1 to 30 of them: a handle that is safe to write on any platform."""
    return _PLAIN_HANDLE.fullmatch(handle) is not None


@dataclass(frozen=True)
class Platform:
    """How the config and the daemon see one platform: its keys and how to build a connector."""

    name: str
    create: Callable[[ConnectorSettings], Connector]
    secret_keys: tuple[str, ...]  # each may be given inline, as ${VAR}, or as <key>_file
    required_secrets: tuple[tuple[str, ...], ...]  # alternatives: one whole tuple must be present
    # A dataclass of the platform's own account keys, declared with `bot.setting.setting` (type, default,
    # doc, check); the config reader checks them and hands them over as `ConnectorSettings.options`.
    options: type[Any] | None = None
    default_base_url: str | None = None
    max_characters: int = 500  # used before verify() has read the real limit
    count_text: Callable[[str], int] | None = None  # length as the platform counts it; None = len()
    default_prices: Mapping[str, float] = field(default_factory=dict)  # USD per read/post, for estimates
    automated_direct_messages: bool = True  # X forbids unsolicited automated DMs
    links_in_replies: bool = True  # X charges ~13x for a post with a URL: use the email there
    # For metered connectors: (account options, the stored ledger, now) -> what `carebot status` shows.
    usage_report: Callable[[Mapping[str, Any], Mapping[str, Any], datetime], UsageReport] | None = None
    # (text, account options) -> why that reply text needs a person on this platform (e.g. it carries a
    # link, and what that costs), or None.
    reply_warning: Callable[[str, Mapping[str, Any]], str | None] | None = None
    # The cursor to read from so that mentions since a moment are read too (`backfill:`), or None if the
    # platform cannot. Mentions older than the moment may come with it: the cycle skips those.
    backfill_cursor: Callable[[datetime], str] | None = None
    # Whether a handle (without "@") is one this platform can have: only such a handle is ever written
    # into a reply. The default is letters, digits and "_" (X's syntax, within 30 characters).
    valid_handle: Callable[[str], bool] = plain_handle
    # Each read of the mention stream starts where the cursor stood this many seconds ago (stored posts
    # are skipped): a post that became visible after a later one was served is still read. Costs the
    # re-read posts (billed per read on X's pay-per-use).
    reread_overlap: float = 120.0
    # (settings, the brand's own account id) -> a live stream of its mentions, for accounts that ask for it
    # (`stream: true`); None: the platform is only polled.
    open_stream: Callable[[ConnectorSettings, str], MentionStream] | None = None


_HANDLE_OR_URL = re.compile(r"@[\w.@-]+|https?://\S+", re.UNICODE)


def same_words(posted: str, ours: str) -> bool:
    """Whether a post on the platform carries the words of our reply: letters and digits compared,
    handles, links, case and punctuation aside (platforms add the handle, shorten links, render markup)."""

    def words(text: str) -> str:
        return "".join(ch for ch in _HANDLE_OR_URL.sub(" ", text).casefold() if ch.isalnum())

    mine = words(ours)
    return bool(mine) and words(posted) == mine
