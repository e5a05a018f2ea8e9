"""The X (API v2) connector, through tweepy: read mentions, post replies, find lost replies.

Authentication is either an OAuth 2.0 *user* access token (``bearer_token``) or OAuth 1.0a
user context (``consumer_key``, ``consumer_secret``, ``access_token``,
``access_token_secret``); the first wins when both are given.

X's rules for automated accounts shape what this connector does and what it leaves to the
core: it fills `Mention.mentions_brand` from the post's own mention entities (replying is
allowed only to someone who addressed the brand), refuses every automated DM (allowed only
after the user DMed the brand), and never lets tweepy sleep or retry on a 429. The
account must also carry X's "automated account" label (set in the account's settings on
x.com, pointing at the managing account); carebot cannot set it through the API.

Cursors are post ids: X ids grow with time, so "after" means "newer than".
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests
import tweepy

from bot.setting import setting
from bot.waits import parse_reset
from connectors.base import (
    AccountInfo,
    AuthFailed,
    BadResponse,
    ConnectorError,
    ConnectorSettings,
    DuplicateContent,
    Mention,
    MentionPage,
    Platform,
    PostedReply,
    RateBudget,
    RateLimited,
    Rejected,
    Unavailable,
    same_words,
)
from connectors.ignored import IgnoredAuthors
from connectors.x_http import BEARER_PLACEHOLDER, RoutedSession, redact_from_logs
from connectors.x_posts import mentions_from, post_id_or_none, replied_to
from connectors.x_text import MAX_WEIGHTED_LENGTH
from connectors.x_text import text_length as weighted_length

log = logging.getLogger(__name__)

OAUTH1_KEYS = ("consumer_key", "consumer_secret", "access_token", "access_token_secret")

# Requests to GET /2/users/:id/mentions allowed per user per 15 minutes, by API tier.
# The daemon spaces polls by `XConnector.min_poll_interval`; "pay-per-use" bills per item
# instead and is limited like Pro.
TIER_MENTION_REQUESTS_PER_15_MIN: Mapping[str, int] = {
    "free": 1,
    "basic": 10,
    "pro": 300,
    "pay-per-use": 300,
    "enterprise": 300,
}
DEFAULT_TIER = "basic"

# X post ids are snowflakes: milliseconds since X's epoch, shifted left 22 bits. An account with no
# mention yet starts from the id of "a few minutes ago", so clock skew cannot hide the first mentions.
TWITTER_EPOCH_MS = 1288834974657
START_MARGIN_SECONDS = 300.0


def snowflake_at(epoch_seconds: float) -> str:
    """The smallest post id X could give a post made at that time."""
    return str((int(epoch_seconds * 1000) - TWITTER_EPOCH_MS) << 22)


# Pay-per-use estimates in USD (2026): a post read, and a post created without a URL. A post with a
# URL costs about $0.20, which is why X replies carry the support email instead of a link.
DEFAULT_PRICES: Mapping[str, float] = {"price_per_read": 0.005, "price_per_post": 0.015}

MENTION_FIELDS: Mapping[str, list[str]] = {
    "expansions": ["author_id", "referenced_tweets.id", "in_reply_to_user_id", "entities.mentions.username"],
    "tweet_fields": [
        "created_at",
        "conversation_id",
        "in_reply_to_user_id",
        "referenced_tweets",
        "entities",
        "lang",
        "author_id",
        "note_tweet",
        "display_text_range",
    ],
    "user_fields": ["username", "name", "verified"],
}
OWN_POST_FIELDS = ["referenced_tweets", "in_reply_to_user_id", "conversation_id", "created_at"]

PAGE_SIZE = 100  # X's maximum; the mentions endpoint keeps only the latest 800 anyway
MAX_PAGES = 40  # X can return short pages; past this the server is paginating in circles
FIND_REPLY_PAGES = 5  # the brand's latest 500 posts: far more than it writes while a reply is in doubt
DEFAULT_RETRY_AFTER = 60.0  # a 429 without a reset header
# GET /2/users/:id/blocking and /muting allow 15 requests per 15 minutes each.
IGNORED_TTL = 120.0
RELATION_PAGES = 5  # 1000 accounts a page


class XConnector:
    """One X account. Not thread-safe: the daemon drives each account from one worker."""

    platform = "x"

    def __init__(self, settings: ConnectorSettings) -> None:
        self._account = settings.account
        secrets = settings.secrets
        bearer = secrets.get("bearer_token") or None
        if bearer is None and not all(secrets.get(key) for key in OAUTH1_KEYS):
            raise AuthFailed(
                f"X account {self._account!r}: give bearer_token (OAuth 2.0 user token) "
                f"or all of {', '.join(OAUTH1_KEYS)} (OAuth 1.0a)"
            )
        tier = str(settings.options.get("tier") or DEFAULT_TIER)
        if tier not in TIER_MENTION_REQUESTS_PER_15_MIN:
            known = ", ".join(TIER_MENTION_REQUESTS_PER_15_MIN)
            raise Rejected(f"X account {self._account!r}: unknown tier {tier!r} ({known})")
        self.tier = tier
        self.min_poll_interval = 900.0 / TIER_MENTION_REQUESTS_PER_15_MIN[tier]
        self.base_url = settings.base_url.rstrip("/")
        self._user_auth = bearer is None
        redact_from_logs(value for value in secrets.values() if value)
        self._session = RoutedSession(self.base_url, settings.timeout, bearer)
        self._client = tweepy.Client(
            bearer_token=BEARER_PLACEHOLDER if bearer else None,
            consumer_key=None if bearer else secrets["consumer_key"],
            consumer_secret=None if bearer else secrets["consumer_secret"],
            access_token=None if bearer else secrets["access_token"],
            access_token_secret=None if bearer else secrets["access_token_secret"],
            return_type=requests.Response,  # we parse ourselves and need the headers
            wait_on_rate_limit=False,
        )
        self._client.session.close()
        self._client.session = self._session
        configured = settings.options.get("user_id")
        self._user_id: str | None = str(configured) if configured else None
        self._username: str | None = None
        self._budgets: dict[str, RateBudget] = {}  # X limits each endpoint on its own
        self._usage: Counter[str] = Counter()
        self._ignored = IgnoredAuthors(self._read_ignored, IGNORED_TTL)
        self._posted: dict[str, PostedReply] = {}  # idempotency key -> reply, for this process
        # Mentions already read past the last page returned, and the cursor they follow:
        # saves re-reading (and paying for) them when more than `limit` were waiting.
        self._backlog: list[Mention] = []
        self._backlog_after: str | None = None

    def __repr__(self) -> str:
        auth = "oauth1" if self._user_auth else "oauth2"
        return f"XConnector(account={self._account!r}, base_url={self.base_url!r}, auth={auth})"

    # -- the Connector protocol -------------------------------------------------------------

    def verify(self) -> AccountInfo:
        body = self._call("verify credentials", self._client.get_me, user_fields=["username", "name"])
        data = body.get("data")
        if not isinstance(data, dict) or not data.get("id") or not data.get("username"):
            raise BadResponse(f"X account {self._account!r}: /2/users/me answered without id and username")
        user_id, username = str(data["id"]), str(data["username"])
        if self._user_id is not None and self._user_id != user_id:
            raise AuthFailed(
                f"X account {self._account!r}: the credentials belong to @{username} (id {user_id}), "
                f"not to the configured user_id {self._user_id}"
            )
        self._user_id, self._username = user_id, username
        return AccountInfo(id=user_id, handle=username, max_characters=MAX_WEIGHTED_LENGTH)

    def fetch_mentions(self, after: str | None, limit: int) -> MentionPage:
        """Mentions newer than `after`, oldest first, at most `limit`.

        `after=None` starts from now: no mentions, only the newest id as the cursor, so a
        new account does not answer its backlog. X lists newest first, so to never skip one
        this reads every page after `after` and returns the *oldest* `limit`; the rest wait
        (in memory) for the next call.
        """
        user_id = self._require_user()
        if after is None:
            body = self._mentions_page(user_id, since_id=None, token=None, size=5)
            listed = [post.get("id") for post in _list(body, "data") if isinstance(post, dict)]
            ids = [i for i in map(post_id_or_none, [_meta(body).get("newest_id"), *listed]) if i]
            self._backlog, self._backlog_after = [], None
            cursor = max(ids, key=int) if ids else snowflake_at(time.time() - START_MARGIN_SECONDS)
            return MentionPage([], next_cursor=cursor, has_more=False)
        if post_id_or_none(after) is None:
            raise Rejected(f"X account {self._account!r}: cursor {after!r} is not an X post id")
        if self._backlog and self._backlog_after == after:
            waiting = self._backlog + self._read_all_after(user_id, self._backlog[-1].post_id)
        else:
            waiting = self._read_all_after(user_id, after)
        page, rest = waiting[: max(1, limit)], waiting[max(1, limit) :]
        last = page[-1].post_id if page else None
        self._backlog, self._backlog_after = rest, last
        return MentionPage(page, next_cursor=last, has_more=bool(rest))

    def reply(self, mention: Mention, text: str, idempotency_key: str) -> PostedReply:
        if idempotency_key in self._posted:
            return self._posted[idempotency_key]
        length = weighted_length(text)
        if length > MAX_WEIGHTED_LENGTH:
            raise Rejected(
                f"X account {self._account!r}: reply is {length} weighted characters, X allows {MAX_WEIGHTED_LENGTH}"
            )
        body = self._call("post a reply", self._client.create_tweet, text=text, in_reply_to_tweet_id=mention.post_id)
        data = body.get("data")
        post_id = post_id_or_none(data.get("id")) if isinstance(data, dict) else None
        if post_id is None:
            raise BadResponse(f"X account {self._account!r}: POST /2/tweets answered without a post id")
        self._usage["posts_created"] += 1
        posted = PostedReply(post_id=post_id, url=self._post_url(post_id))
        self._posted[idempotency_key] = posted
        return posted

    def send_direct(self, mention: Mention, text: str, idempotency_key: str) -> PostedReply:
        raise Rejected("X allows automated DMs only after the user has DMed the brand")

    def find_reply(
        self, mention: Mention, idempotency_key: str, *, direct: bool = False, text: str | None = None
    ) -> PostedReply | None:
        """The brand's reply to `mention` among its posts newer than the mention, if any."""
        if direct:
            return None  # carebot never sends DMs on X (send_direct refuses)
        if idempotency_key in self._posted:
            return self._posted[idempotency_key]
        user_id = self._require_user()
        token: str | None = None
        for _ in range(FIND_REPLY_PAGES):
            body = self._call(
                "look for an earlier reply",
                self._client.get_users_tweets,
                id=user_id,
                since_id=mention.post_id,
                max_results=PAGE_SIZE,
                pagination_token=token,
                tweet_fields=OWN_POST_FIELDS,
            )
            posts = _list(body, "data")
            self._usage["posts_read"] += len(posts)
            for post in posts:
                post_id = post_id_or_none(post.get("id")) if isinstance(post, dict) else None
                words_match = text is None or same_words(str(post.get("text", "")), text)
                if post_id is not None and replied_to(post) == mention.post_id and words_match:
                    return PostedReply(post_id=post_id, url=self._post_url(post_id))
            token = _meta(body).get("next_token")
            if not token:
                return None
        return None

    def text_length(self, text: str) -> int:
        return weighted_length(text)

    def budget(self) -> RateBudget:
        """The budget of the mentions endpoint: what the core spends when it reads."""
        return self._budgets.get("get_users_mentions", RateBudget())

    def ignored_author_ids(self) -> frozenset[str]:
        """Users the brand blocked or muted, re-read every two minutes."""
        return self._ignored.get()

    def _read_ignored(self) -> set[str]:
        user_id = self._require_user()
        return self._user_ids(user_id, "blocking") | self._user_ids(user_id, "muting")

    def usage(self) -> dict[str, int]:
        """What this connector has asked X for so far, for the core's spend estimate."""
        return {key: self._usage[key] for key in ("requests", "posts_read", "users_read", "posts_created")}

    def close(self) -> None:
        self._session.close()

    # -- reading ----------------------------------------------------------------------------

    def _read_all_after(self, user_id: str, since_id: str) -> list[Mention]:
        found: dict[str, Mention] = {}
        token: str | None = None
        seen_tokens: set[str] = set()
        for _ in range(MAX_PAGES):
            body = self._mentions_page(user_id, since_id=since_id, token=token, size=PAGE_SIZE)
            for mention in mentions_from(body, brand_id=user_id, brand_username=self._username):
                if int(mention.post_id) > int(since_id):  # X's since_id is exclusive; be sure
                    found[mention.post_id] = mention
            token = _meta(body).get("next_token")
            if not token:
                return sorted(found.values(), key=lambda m: int(m.post_id))
            if token in seen_tokens:
                raise BadResponse(f"X account {self._account!r}: mentions paging repeated a token")
            seen_tokens.add(token)
        raise BadResponse(f"X account {self._account!r}: mentions did not end after {MAX_PAGES} pages")

    def _mentions_page(self, user_id: str, since_id: str | None, token: str | None, size: int) -> dict[str, Any]:
        body = self._call(
            "read mentions",
            self._client.get_users_mentions,
            id=user_id,
            since_id=since_id,
            pagination_token=token,
            max_results=size,
            **MENTION_FIELDS,
        )
        includes: Mapping[str, Any] = body["includes"] if isinstance(body.get("includes"), dict) else {}
        self._usage["posts_read"] += len(_list(body, "data")) + len(_list(includes, "tweets"))
        self._usage["users_read"] += len(_list(includes, "users"))
        return body

    def _user_ids(self, user_id: str, relation: str) -> set[str]:
        """Ids listed by GET /2/users/:id/blocking or /muting, all pages."""

        def listing(user_auth: bool, **params: Any) -> requests.Response:
            response: requests.Response = self._client._make_request(
                "GET",
                f"/2/users/{user_id}/{relation}",
                params=params,
                endpoint_parameters=("max_results", "pagination_token"),
                user_auth=user_auth,
            )
            return response

        listing.__name__ = f"get_{relation}"
        ids: set[str] = set()
        token: str | None = None
        for _ in range(RELATION_PAGES):
            params: dict[str, Any] = {"max_results": 1000}
            if token:
                params["pagination_token"] = token
            body = self._call(f"read the {relation} list", listing, **params)
            users = _list(body, "data")
            self._usage["users_read"] += len(users)
            ids |= {str(u["id"]) for u in users if isinstance(u, dict) and u.get("id")}
            token = _meta(body).get("next_token")
            if not token:
                break
        return ids

    def _require_user(self) -> str:
        if self._user_id is None or self._username is None:
            self.verify()
        assert self._user_id is not None
        return self._user_id

    def _post_url(self, post_id: str) -> str:
        return f"https://x.com/{self._username or 'i/web'}/status/{post_id}"

    # -- one request, errors translated --------------------------------------------------------

    def _call(self, what: str, method: Callable[..., requests.Response], **params: Any) -> dict[str, Any]:
        self._usage["requests"] += 1
        where = f"X account {self._account!r}: {what}"
        try:
            response = method(user_auth=self._user_auth, **params)
        except tweepy.HTTPException as exc:
            self._note_budget(method.__name__, exc.response.headers)
            raise _translate(where, exc) from exc
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise Unavailable(f"{where} failed: {type(exc).__name__} talking to {self.base_url}") from exc
        except requests.RequestException as exc:
            raise Unavailable(f"{where} failed: {type(exc).__name__}") from exc
        except ValueError as exc:  # tweepy parsing a malformed x-rate-limit-reset, for one
            raise BadResponse(f"{where}: unreadable answer ({exc})") from exc
        self._note_budget(method.__name__, response.headers)
        try:
            body = response.json()
        except ValueError as exc:
            raise BadResponse(f"{where}: answer is not JSON") from exc
        if not isinstance(body, dict):
            raise BadResponse(f"{where}: answer is not a JSON object")
        return body

    def _note_budget(self, endpoint: str, headers: Mapping[str, str]) -> None:
        remaining = _int(headers.get("x-rate-limit-remaining"))
        limit = _int(headers.get("x-rate-limit-limit"))
        reset_at = parse_reset(headers.get("x-rate-limit-reset"))
        if remaining is None and limit is None and reset_at is None:
            return
        self._budgets[endpoint] = RateBudget(remaining=remaining, limit=limit, reset_at=reset_at)


def _translate(where: str, exc: tweepy.HTTPException) -> ConnectorError:
    status = exc.response.status_code
    detail = " ".join(str(exc).split())  # tweepy puts X's messages on extra lines
    message = f"{where} failed: {detail}"
    if isinstance(exc, tweepy.Unauthorized):
        return AuthFailed(message)
    if isinstance(exc, tweepy.TooManyRequests):
        return RateLimited(message, retry_after=retry_after(exc.response.headers))
    if isinstance(exc, tweepy.Forbidden) and "duplicate" in detail.lower():
        return DuplicateContent(message)
    if isinstance(exc, tweepy.TwitterServerError):
        return Unavailable(message)
    if isinstance(exc, tweepy.Forbidden | tweepy.BadRequest | tweepy.NotFound) or 400 <= status < 500:
        return Rejected(message)
    return BadResponse(message)  # a 1xx/3xx: nothing we asked for


def retry_after(headers: Mapping[str, str], now: float | None = None) -> float:
    """Seconds until X's `x-rate-limit-reset` (epoch seconds), at least 1."""
    reset = parse_reset(headers.get("x-rate-limit-reset"))
    if reset is None:
        return DEFAULT_RETRY_AFTER
    return max(1.0, reset.timestamp() - (time.time() if now is None else now))


def _meta(body: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = body.get("meta")
    return meta if isinstance(meta, dict) else {}


def _list(body: Mapping[str, Any], key: str) -> list[Any]:
    value = body.get(key)
    return value if isinstance(value, list) else []


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _non_negative(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"expected a price in USD (0 or more), got {value!r}")
    return float(value)


def _tier(value: object) -> str:
    if value not in TIER_MENTION_REQUESTS_PER_15_MIN:
        raise ValueError(f"expected one of {', '.join(TIER_MENTION_REQUESTS_PER_15_MIN)}, got {value!r}")
    return str(value)


@dataclass(frozen=True)
class XOptions:
    """An X account's own keys in the config."""

    tier: str = setting(
        DEFAULT_TIER, doc="free | basic | pro | pay-per-use | enterprise: spaces the polls", check=_tier
    )
    user_id: str | None = setting(None, doc="optional: checked against the credentials")
    price_per_read: float | None = setting(
        None, doc="USD per post read, for `carebot status` (default: X's price)", check=_non_negative
    )
    price_per_post: float | None = setting(
        None, doc="USD per post created, for `carebot status` (default: X's price)", check=_non_negative
    )


PLATFORM = Platform(
    name="x",
    create=XConnector,
    secret_keys=("bearer_token", *OAUTH1_KEYS),
    required_secrets=(("bearer_token",), OAUTH1_KEYS),
    options=XOptions,
    default_base_url="https://api.twitter.com",
    max_characters=MAX_WEIGHTED_LENGTH,
    count_text=weighted_length,
    default_prices=DEFAULT_PRICES,
    automated_direct_messages=False,
    links_in_replies=False,
    backfill_cursor=lambda since: snowflake_at(since.timestamp()),
)
