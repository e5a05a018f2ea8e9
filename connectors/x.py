"""The X (API v2) connector, through tweepy: read mentions, post replies, find lost replies.

Authentication is either an OAuth 2.0 *user* access token (``bearer_token``) or OAuth 1.0a
user context (``consumer_key``, ``consumer_secret``, ``access_token``,
``access_token_secret``); the first wins when both are given.

X's rules for automated accounts shape what this connector does and what it leaves to the
core: it fills `Mention.mentions_brand` from the mentions the author wrote (replying is allowed
only to someone who addressed the brand), refuses every automated DM (allowed only after the
user DMed the brand), and never lets tweepy sleep or retry on a 429. The account must also carry
X's "automated account" label (set in the account's settings on x.com, pointing at the managing
account); carebot cannot set it through the API.

X renamed tweets to posts in its API; the connector asks in the current vocabulary and falls back
to the previous one when a server refuses it (or silently drops what it asked for), and remembers
which one the server speaks. Every request goes through the account's `XBudget`, which keeps it
within the plan (`x_tiers.TIERS`) and counts what X bills.

Cursors are post ids: X ids grow with time, so "after" means "newer than".
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from bot import clock
from connectors.base import (
    AccountInfo,
    AuthFailed,
    BadResponse,
    ConnectorError,
    ConnectorSettings,
    Ledger,
    Mention,
    MentionPage,
    Platform,
    PostedReply,
    RateBudget,
    Rejected,
    Unavailable,
    Unreachable,
    same_words,
)
from connectors.ignored import IgnoredAuthors
from connectors.x_budget import XBudget, usage_report
from connectors.x_errors import rate_budget, status_of, translate
from connectors.x_options import XOptions, reply_warning
from connectors.x_posts import POSTS, VOCABULARIES, Vocabulary, included_posts, mentions_from, post_id_or_none
from connectors.x_posts import replied_to as answered_post
from connectors.x_text import MAX_WEIGHTED_LENGTH, urls
from connectors.x_text import text_length as weighted_length
from connectors.x_tiers import DEFAULT_TIER, PAY_PER_USE_PRICES, TIERS, min_poll_interval, plan_for

log = logging.getLogger(__name__)

OAUTH1_KEYS = ("consumer_key", "consumer_secret", "access_token", "access_token_secret")

# X post ids are snowflakes: milliseconds since X's epoch, shifted left 22 bits. An account with no
# mention yet starts from the id of "a few minutes ago", so clock skew cannot hide the first mentions.
TWITTER_EPOCH_MS = 1288834974657
START_MARGIN_SECONDS = 300.0

PAGE_SIZE = 100  # X's maximum; the mentions endpoint keeps only the latest 800 anyway
MIN_PAGE = 5  # X's minimum max_results for the timelines (10 for search)
MAX_PAGES = 40  # X can return short pages; past this the server is paginating in circles
THOROUGH = 4  # a thorough lookup reads this many times the plan's lookup budget, then the conversation
ME_TTL = timedelta(hours=6)  # who the account is, as users/me said, is trusted this long (25 calls a day on free)
IGNORED_TTL = 120.0  # in memory; the plan's relations_ttl decides when X is asked again
RELATION_PAGES = 5  # 1000 accounts a page
VOCABULARY_REFUSED = (400, 422)  # what a server answers to names it does not know


def snowflake_at(epoch_seconds: float) -> str:
    """The smallest post id X could give a post made at that time."""
    return str((int(epoch_seconds * 1000) - TWITTER_EPOCH_MS) << 22)


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
        if tier not in TIERS:
            raise Rejected(f"X account {self._account!r}: unknown tier {tier!r} ({', '.join(TIERS)})")
        self.plan = plan_for(settings.options)
        self.tier = tier
        self.min_poll_interval = min_poll_interval(self.plan)
        # One request at a time: the plan's ledger and its lookup budget are kept request by request.
        self.max_send_concurrency = 1
        self._budget = XBudget(self.plan, self._account)
        preferred = str(settings.options.get("vocabulary") or "auto")
        self._vocabulary_fixed = preferred != "auto"
        self._vocabulary: Vocabulary = VOCABULARIES.get(preferred, POSTS)
        self.base_url = settings.base_url.rstrip("/")
        self._user_auth = bearer is None
        # The client libraries load with the first connector, not with the platform's description (the config
        # and short commands use that alone: requests and tweepy are a quarter of their start-up).
        import requests
        import tweepy

        from connectors.x_http import BEARER_PLACEHOLDER, RoutedSession, redact_from_logs

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
        self._configured_user_id: str | None = str(configured) if configured else None
        self._user_id: str | None = None
        self._username: str | None = None
        self._budgets: dict[str, RateBudget] = {}  # X limits each endpoint on its own
        self._ignored = IgnoredAuthors(self._read_ignored, IGNORED_TTL)
        self._posted: dict[str, PostedReply] = {}  # idempotency key -> reply, for this process
        # Mentions already read past the last page returned, and the cursor they follow:
        # saves re-reading (and paying for) them when more than `limit` were waiting.
        self._backlog: list[Mention] = []
        self._backlog_after: str | None = None

    def __repr__(self) -> str:
        auth = "oauth1" if self._user_auth else "oauth2"
        return f"XConnector(account={self._account!r}, base_url={self.base_url!r}, auth={auth})"

    def attach_ledger(self, ledger: Ledger) -> None:
        """Keep this account's usage in `ledger` (the core stores it), starting from what it holds."""
        self._budget.attach(ledger)
        remembered = self._budget.recall("vocabulary")
        if not self._vocabulary_fixed and remembered in VOCABULARIES:
            self._vocabulary = VOCABULARIES[remembered]

    # -- the Connector protocol -------------------------------------------------------------

    def verify(self) -> AccountInfo:
        """Who the account is: asked of X (users/me), or remembered from the last answer of the last hours."""
        me = self._budget.recall("me")
        if isinstance(me, dict) and self._fresh(me) and self._configured_user_id in (None, me.get("id")):
            self._user_id, self._username = str(me["id"]), str(me["username"])
            return AccountInfo(id=self._user_id, handle=self._username, max_characters=MAX_WEIGHTED_LENGTH)
        params = {"user.fields": "username,name"}
        body = self._request("verify credentials", "me", "GET", "/2/users/me", params=params)
        data = body.get("data")
        if not isinstance(data, dict) or not data.get("id") or not data.get("username"):
            raise BadResponse(f"X account {self._account!r}: /2/users/me answered without id and username")
        user_id, username = str(data["id"]), str(data["username"])
        self._budget.bill("user_read", [f"user:{user_id}"])
        if self._configured_user_id is not None and self._configured_user_id != user_id:
            raise AuthFailed(
                f"X account {self._account!r}: the credentials belong to @{username} (id {user_id}), "
                f"not to the configured user_id {self._configured_user_id}"
            )
        self._user_id, self._username = user_id, username
        self._budget.remember("me", {"id": user_id, "username": username, "at": clock.now().isoformat()})
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
            body = self._mentions_page(user_id, since_id=None, token=None, size=MIN_PAGE)
            listed = [post.get("id") for post in _list(body, "data") if isinstance(post, dict)]
            ids = [i for i in map(post_id_or_none, [_meta(body).get("newest_id"), *listed]) if i]
            self._backlog, self._backlog_after = [], None
            start = clock.now().timestamp() - START_MARGIN_SECONDS
            cursor = max(ids, key=int) if ids else snowflake_at(start)
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
        payload = {"text": text, "reply": {"in_reply_to_tweet_id": mention.post_id}}
        body = self._request("post a reply", "post", "POST", "/2/tweets", json=payload, posts=True)
        data = body.get("data")
        post_id = post_id_or_none(data.get("id")) if isinstance(data, dict) else None
        self._budget.bill_post(post_id, with_url=bool(urls(text)))
        if post_id is None:
            raise BadResponse(f"X account {self._account!r}: POST /2/tweets answered without a post id")
        posted = PostedReply(post_id=post_id, url=self._post_url(post_id))
        self._posted[idempotency_key] = posted
        return posted

    def send_direct(self, mention: Mention, text: str, idempotency_key: str) -> PostedReply:
        raise Rejected("X allows automated DMs only after the user has DMed the brand")

    def find_reply(
        self,
        mention: Mention,
        idempotency_key: str,
        *,
        direct: bool = False,
        text: str | None = None,
        thorough: bool = False,
    ) -> PostedReply | None:
        """The brand's reply to `mention` among its posts newer than the mention, if any (with `text`, only
        one with those words: a person may have answered the post too).

        A lookup reads at most the plan's `lookup_posts` of the brand's latest posts; a thorough one
        (X refused the reply as a duplicate: it is probably there) reads more, then searches the
        mention's conversation, which X indexes apart from the timeline.
        """
        if direct:
            return None  # carebot never sends DMs on X (send_direct refuses)
        if idempotency_key in self._posted:
            return self._posted[idempotency_key]
        user_id = self._require_user()
        budget = self.plan.tier.lookup_posts * (THOROUGH if thorough else 1)
        found = self._find_in_timeline(user_id, mention, text, budget)
        if found is not None or not thorough:
            return found
        return self._find_in_conversation(mention, text)

    def text_length(self, text: str) -> int:
        return weighted_length(text)

    def budget(self) -> RateBudget:
        """The budget of the mentions endpoint: what the core spends when it reads."""
        return self._budgets.get("mentions", RateBudget())

    def ignored_author_ids(self) -> frozenset[str]:
        """Users the brand blocked or muted, re-read when the plan's relations TTL is over."""
        return self._ignored.get()

    def usage(self) -> dict[str, int]:
        """What this account has asked of X so far (all processes sharing its ledger), by kind."""
        totals = self._budget.state.get("totals") or {}
        return {str(kind): int(count) for kind, count in totals.items()}

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
        params = {"max_results": str(self._page_size(size))}
        if since_id:
            params["since_id"] = since_id
        if token:
            params["pagination_token"] = token
        path = f"/2/users/{user_id}/mentions"
        return self._read_posts("read mentions", "mentions", path, params, owned=True, mentions=True)

    def _find_in_timeline(self, user_id: str, mention: Mention, text: str | None, budget: int) -> PostedReply | None:
        """Our reply among the brand's posts since the mention, reading at most `budget` of them."""
        token: str | None = None
        left = budget
        while left > 0:
            size = self._page_size(min(left, PAGE_SIZE))
            params = {"since_id": mention.post_id, "max_results": str(size)}
            if token:
                params["pagination_token"] = token
            path = f"/2/users/{user_id}/tweets"
            body = self._read_posts("look for an earlier reply", "timeline", path, params, owned=True)
            left -= size
            found = self._ours(_list(body, "data"), mention, text)
            token = _meta(body).get("next_token")
            if found is not None or not token:
                return found
        return None

    def _find_in_conversation(self, mention: Mention, text: str | None) -> PostedReply | None:
        conversation = mention.conversation_id or mention.post_id
        size = max(10, min(PAGE_SIZE, self.plan.tier.lookup_posts))
        params = {
            "query": f"conversation_id:{conversation} from:{self._username}",
            "since_id": mention.post_id,
            "max_results": str(size),
        }
        try:
            body = self._read_posts(
                "search the mention's conversation", "search", "/2/tweets/search/recent", params, owned=False
            )
        except (Rejected, BadResponse) as exc:  # search is not in every plan
            log.warning("X account %r: cannot search the conversation of %s: %s", self._account, mention.post_id, exc)
            return None
        return self._ours(_list(body, "data"), mention, text)

    def _ours(self, posts: list[Any], mention: Mention, text: str | None) -> PostedReply | None:
        for post in posts:
            post_id = post_id_or_none(post.get("id")) if isinstance(post, dict) else None
            words_match = text is None or same_words(str(post.get("text", "")), text)
            if post_id is not None and answered_post(post) == mention.post_id and words_match:
                # X billed it when it made it, even if its answer never reached us: count it if not yet.
                self._budget.bill_post(post_id, with_url=bool(urls(str(post.get("text") or ""))))
                return PostedReply(post_id=post_id, url=self._post_url(post_id))
        return None

    def _page_size(self, wanted: int) -> int:
        """At most `wanted` posts, and no more than the month's post reads left (X's minimum is 5)."""
        return max(MIN_PAGE, min(wanted, self._budget.reads_left()))

    def _read_posts(
        self, what: str, bucket: str, path: str, params: dict[str, str], *, owned: bool, mentions: bool = False
    ) -> dict[str, Any]:
        """GET posts in the server's vocabulary: asked in the current one, then in the other if the
        server refuses those names or drops the fields asked for; the one that works is remembered."""
        first = self._vocabulary
        attempts = [first] if self._vocabulary_fixed else [first, first.other]
        failure: ConnectorError | None = None
        for vocabulary in attempts:
            shape = vocabulary.mention_params() if mentions else vocabulary.own_post_params()
            try:
                body = self._request(what, bucket, "GET", path, params={**params, **shape}, reads=True)
            except Rejected as exc:
                if status_of(exc) not in VOCABULARY_REFUSED:
                    raise
                failure = failure or exc
            else:
                self._bill_posts(body, owned)
                if _understood(body):
                    self._speak(vocabulary)
                    return body
                failure = failure or BadResponse(
                    f"X account {self._account!r}: {what}: the answer lacks the fields asked for ({vocabulary.fields})"
                )
            if len(attempts) > 1:
                # Switch before asking again: if the plan allows no second request now, the next
                # cycle starts with the other vocabulary instead of repeating the refused one.
                self._speak(vocabulary.other)
        if len(attempts) > 1:
            self._speak(first)  # neither worked: the names were not the problem
        assert failure is not None
        raise failure

    def _speak(self, vocabulary: Vocabulary) -> None:
        if self._budget.recall("vocabulary") != vocabulary.name:
            if self._budget.recall("vocabulary") is not None or vocabulary is not POSTS:
                log.info("X account %r: asking in the %r vocabulary", self._account, vocabulary.name)
            self._budget.remember("vocabulary", vocabulary.name)
        self._vocabulary = vocabulary

    def _bill_posts(self, body: Mapping[str, Any], owned: bool) -> None:
        data = [f"post:{p['id']}" for p in _list(body, "data") if isinstance(p, dict) and "id" in p]
        self._budget.bill("owned_read" if owned else "post_read", data)
        included = [f"post:{p['id']}" for p in included_posts(body) if isinstance(p, dict) and "id" in p]
        self._budget.bill("post_read", included)
        includes = body.get("includes")
        users = _list(includes, "users") if isinstance(includes, dict) else []
        self._budget.bill("user_read", [f"user:{u['id']}" for u in users if isinstance(u, dict) and "id" in u])

    def _read_ignored(self) -> set[str]:
        kept = self._budget.relations()
        if kept is not None:
            return kept
        user_id = self._require_user()
        ids = self._user_ids(user_id, "blocking") | self._user_ids(user_id, "muting")
        self._budget.keep_relations(ids)
        return ids

    def _user_ids(self, user_id: str, relation: str) -> set[str]:
        """Ids listed by GET /2/users/:id/blocking or /muting, all pages."""
        ids: set[str] = set()
        token: str | None = None
        for _ in range(RELATION_PAGES):
            params = {"max_results": "1000"}
            if token:
                params["pagination_token"] = token
            body = self._request(f"read the {relation} list", relation, "GET", f"/2/users/{user_id}/{relation}", params)
            users = [u for u in _list(body, "data") if isinstance(u, dict) and u.get("id")]
            self._budget.bill("user_read", [f"user:{u['id']}" for u in users])
            ids |= {str(u["id"]) for u in users}
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

    @staticmethod
    def _fresh(me: Mapping[str, Any]) -> bool:
        try:
            return clock.now() - clock.as_utc(str(me["at"])) < ME_TTL and bool(me.get("id") and me.get("username"))
        except (KeyError, ValueError):
            return False

    # -- one request, within the plan, errors translated ------------------------------------------

    def _request(
        self,
        what: str,
        bucket: str,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        *,
        json: Mapping[str, Any] | None = None,
        reads: bool = False,
        posts: bool = False,
    ) -> dict[str, Any]:
        self._budget.check(bucket, reads=reads, posts=posts)
        self._budget.note_request(bucket)
        where = f"X account {self._account!r}: {what}"
        import requests
        import tweepy

        try:
            response = self._client.request(method, path, params=params, json=json, user_auth=self._user_auth)
        except tweepy.HTTPException as exc:
            self._note_budget(bucket, exc.response.headers)
            raise translate(where, exc, self._budget.capped) from exc
        except requests.ConnectionError as exc:  # no connection, or it broke (a connect timeout is one too)
            raise Unreachable(f"{where} failed: {type(exc).__name__} talking to {self.base_url}") from exc
        except requests.Timeout as exc:  # no answer in time: X may be at work on it
            raise Unavailable(f"{where} failed: {type(exc).__name__} talking to {self.base_url}") from exc
        except requests.RequestException as exc:
            raise Unavailable(f"{where} failed: {type(exc).__name__}") from exc
        except ValueError as exc:  # tweepy parsing a malformed x-rate-limit-reset, for one
            raise BadResponse(f"{where}: unreadable answer ({exc})") from exc
        self._note_budget(bucket, response.headers)
        try:
            body = response.json()
        except ValueError as exc:
            raise BadResponse(f"{where}: answer is not JSON") from exc
        if not isinstance(body, dict):
            raise BadResponse(f"{where}: answer is not a JSON object")
        return body

    def _note_budget(self, bucket: str, headers: Mapping[str, str]) -> None:
        budget = rate_budget(headers)
        if budget is not None:
            self._budgets[bucket] = budget


def _understood(body: Mapping[str, Any]) -> bool:
    """False when the server returned posts without the fields asked for: it did not know their names."""
    posts = [p for p in _list(body, "data") if isinstance(p, dict)]
    return not posts or any("conversation_id" in p for p in posts)


def _meta(body: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = body.get("meta")
    return meta if isinstance(meta, dict) else {}


def _list(body: Mapping[str, Any], key: str) -> list[Any]:
    value = body.get(key)
    return value if isinstance(value, list) else []


PLATFORM = Platform(
    name="x",
    create=XConnector,
    secret_keys=("bearer_token", *OAUTH1_KEYS),
    required_secrets=(("bearer_token",), OAUTH1_KEYS),
    options=XOptions,
    default_base_url="https://api.twitter.com",
    max_characters=MAX_WEIGHTED_LENGTH,
    count_text=weighted_length,
    default_prices=PAY_PER_USE_PRICES,
    automated_direct_messages=False,
    links_in_replies=False,
    usage_report=usage_report,
    reply_warning=reply_warning,
    backfill_cursor=lambda since: snowflake_at(since.timestamp()),
)
