"""A small stateful fake of X API v2, for behaviour tests: mentions, posting, lookups, limits, caps, faults.

It serves the few endpoints carebot uses, shaped as X's OpenAPI spec says, in either vocabulary: the one
of v2.159 (`tweet.fields`, `referenced_tweets`, `includes.tweets`) or the current one of v2.167
(`post.fields`, `referenced_posts`, `includes.posts`), chosen by `vocabulary` (tests put
`prism proxy --errors` with the matching spec in front of it, which rejects anything off-spec either way):

    GET  /2/users/me                  who the token belongs to
    GET  /2/users/:id/mentions        newest first, since_id/until_id/pagination_token, latest 800
    GET  /2/users/:id/tweets          the user's own posts, same paging
    GET  /2/tweets/search/recent      `conversation_id:N` and `from:name` queries only
    GET  /2/users/:id/blocking|muting the accounts the brand blocked or muted (`block()`, `mute()`)
    POST /2/tweets                    a post or reply; 403 on duplicate text, on a reply to a
                                      missing post, and on replying to an author who did not
                                      mention or quote the brand (X's 2026 rule)

Tests drive it in-process through Python methods, never over HTTP: `post()` a mention as some user, read
`brand_posts()`, inject `fail_next()`, `rate_limit_next()` or `delay_next()` for the next N matching
requests, make new brand posts invisible to the next lookups (`lag_lookups()`, X's timeline lag), cap
usage per period (`set_usage_cap()`: 429 UsageCapExceeded), and `reset()` between tests. Every answer
carries x-rate-limit-* headers from a per-endpoint 15-minute window (`set_limit()` to make it small).

`bill` counts what X would bill for the answers it gave (X's pay-per-use rules, April 2026): posts of the
brand's own mentions and posts timelines are owned reads, other posts (includes, search) post reads, every
user object a user read, each post created a post (or a post with a URL, by twitter-text's rules). Failed
requests bill nothing; a resource read again the same UTC day is not billed again (X's deduplication).
Time is `clock()` (epoch seconds), which a test may replace.
"""

from __future__ import annotations

import fnmatch
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from twitter_text import extract_urls

from tests.peers.x_fake_http import Answer, Server, json_or_none, problem
from tests.peers.x_fake_shape import VOCABULARIES, Vocabulary, expands, shaped, unknown_names

EPOCH_MS = 1288834974657  # X's snowflake epoch
WINDOW = 900  # seconds in a rate-limit window
MENTIONS_KEPT = 800
DUPLICATE_DETAIL = "You are not allowed to create a Tweet with duplicate content."
_MENTION = re.compile(r"(?<![A-Za-z0-9_@])@([A-Za-z0-9_]{1,15})")
_USER_PATH = re.compile(r"^/2/users/([0-9]{1,19})/(mentions|tweets)$")
_RELATION_PATH = re.compile(r"^/2/users/([0-9]{1,19})/(blocking|muting)$")
_QUERY_TERM = re.compile(r"^(conversation_id|from):(\S+)$")


@dataclass(frozen=True)
class FakeUser:
    id: str
    username: str
    name: str
    bearer_token: str | None = None
    access_token: str | None = None  # OAuth 1.0a; X's start with "<user id>-"


@dataclass(frozen=True)
class SeenRequest:
    method: str
    path: str
    query: dict[str, str]
    body: Any = None


@dataclass
class _Fault:
    method: str | None
    path: str | None
    count: int
    status: int | None = None
    detail: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    body: dict[str, Any] | None = None

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (
            self.path is None or fnmatch.fnmatch(path, self.path)
        )


BRAND = FakeUser(
    id="1000000001",
    username="AcmeCare",
    name="Acme Support",
    bearer_token="brand-oauth2-user-token",
    access_token="1000000001-brandaccesstoken",
)


class FakeX:
    """The fake X server. `start()` binds 127.0.0.1 on a free port; `stop()` ends it."""

    def __init__(self, brand: FakeUser = BRAND, vocabulary: str = "tweets") -> None:
        self.brand = brand
        self.vocabulary: Vocabulary = VOCABULARIES[vocabulary]
        self.clock: Callable[[], float] = time.time
        self._lock = threading.RLock()
        self._server: Server | None = None
        self.reset()

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        self._server = Server(self)

    def stop(self) -> None:
        self._wake.set()
        if self._server is not None:
            self._server.stop()
        self._server = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() first"
        return self._server.base_url

    def reset(self) -> None:
        """Forget every post, user, fault, request, bill, cap and rate-limit count; keep the brand."""
        with self._lock:
            wake = getattr(self, "_wake", None)
            if wake is not None:
                wake.set()  # cut short any delayed answer still sleeping from the last test
            self._wake = threading.Event()
            self.clock = time.time
            self.drops_unknown = False  # True: ignore parameters it does not know instead of a 400
            self._users: dict[str, FakeUser] = {self.brand.id: self.brand}
            self._posts: dict[str, dict[str, Any]] = {}
            self._faults: list[_Fault] = []
            self._limits: dict[str, int] = {}
            self._used: dict[str, tuple[int, int]] = {}  # endpoint -> (window start, count)
            self._caps: dict[str, tuple[int, str]] = {}  # "reads" | "posts" -> (limit, "Monthly" | "Daily")
            self._capped_use: Counter[str] = Counter()  # "<what> <period id>" -> used
            self._relations: dict[str, list[str]] = {"blocking": [], "muting": []}  # user ids
            self._lag = 0
            self._hidden: dict[str, int] = {}  # brand post id -> lookups it stays invisible to
            self._last_ms = 0
            self._next_user = int(self.brand.id) + 1
            self.requests: list[SeenRequest] = []
            self.bill: Counter[str] = Counter()
            self._billed: dict[str, set[str]] = {}  # UTC day -> resources billed that day

    # -- driving it from a test ---------------------------------------------------------------

    def add_user(self, username: str, name: str | None = None) -> FakeUser:
        with self._lock:
            for user in self._users.values():
                if user.username.lower() == username.lower():
                    return user
            user = FakeUser(id=str(self._next_user), username=username, name=name or username.title())
            self._next_user += 1
            self._users[user.id] = user
            return user

    def post(
        self,
        username: str,
        text: str,
        *,
        in_reply_to: str | None = None,
        quote: str | None = None,
        lang: str = "en",
        reply_handles: bool = True,
    ) -> str:
        """A post by `username` (created if new); @handles in `text` become mention entities.

        A reply is written as X writes one: the handle of the post it answers comes first, added by X
        outside `display_text_range` (so `text` is what the person typed after it), unless the author
        took it out (`reply_handles=False`).
        """
        with self._lock:
            author = self.add_user(username)
            return self._create(author, text, in_reply_to, quote, lang, prefix=reply_handles)["id"]

    def brand_posts(self) -> list[dict[str, Any]]:
        """What the brand has posted, oldest first (in v2.159's names, whatever the vocabulary served)."""
        with self._lock:
            return [dict(p) for p in self._sorted() if p["author_id"] == self.brand.id][::-1]

    def fail_next(
        self,
        status: int,
        count: int = 1,
        *,
        method: str | None = None,
        path: str | None = None,
        detail: str = "",
        headers: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        """Answer the next `count` matching requests with `status` (path is a glob)."""
        with self._lock:
            self._faults.append(_Fault(method, path, count, status, detail, dict(headers or {}), body=body))

    def rate_limit_next(
        self, count: int = 1, *, reset_in: float = 2.0, method: str | None = None, path: str | None = None
    ) -> int:
        """Answer the next `count` matching requests with 429; returns the reset epoch sent."""
        reset = int(self.clock() + reset_in)
        headers = {
            "x-rate-limit-limit": "10",
            "x-rate-limit-remaining": "0",
            "x-rate-limit-reset": str(reset),
        }
        self.fail_next(429, count, method=method, path=path, headers=headers)
        return reset

    def delay_next(self, seconds: float, count: int = 1, *, method: str | None = None, path: str | None = None) -> None:
        """Do the next `count` matching requests' work, then answer only after `seconds`."""
        with self._lock:
            self._faults.append(_Fault(method, path, count, delay=seconds))

    def set_limit(self, endpoint: str, limit: int) -> None:
        """Requests allowed per 15 minutes on `endpoint` ("GET mentions", "GET tweets", "POST tweets")."""
        with self._lock:
            self._limits[endpoint] = limit

    def block(self, username: str) -> None:
        with self._lock:
            self._relations["blocking"].append(self.add_user(username).id)

    def mute(self, username: str) -> None:
        with self._lock:
            self._relations["muting"].append(self.add_user(username).id)

    def lag_lookups(self, reads: int) -> None:
        """Brand posts created from now on stay out of the next `reads` timeline or search answers."""
        with self._lock:
            self._lag = reads

    def set_usage_cap(self, what: str, limit: int, period: str = "Monthly") -> None:
        """Cap "reads" (posts read) or "posts" (posts created) per calendar month or UTC day, as X caps a
        plan: past it, every request of that kind gets 429 UsageCapExceeded until the period ends."""
        with self._lock:
            self._caps[what] = (limit, period)

    # -- the API ------------------------------------------------------------------------------

    def handle(self, method: str, target: str, auth: str, body: bytes) -> Answer:
        """(status, headers, JSON body, delay) for one request."""
        parts = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        path = parts.path
        payload = json_or_none(body)
        with self._lock:
            self.requests.append(SeenRequest(method, path, query, payload))
            fault = self._take_fault(method, path)
            if fault is not None and fault.status is not None:
                answer = fault.body if fault.body is not None else problem(fault.status, fault.detail)
                return fault.status, fault.headers, answer, 0.0
            user = self._authenticated(auth)
            if user is None:
                return 401, {}, problem(401, "Unauthorized"), 0.0
            endpoint = _endpoint(method, path)
            headers = self._count(endpoint, user) if endpoint else {}
            if int(headers.get("x-rate-limit-remaining", 0)) < 0:
                headers["x-rate-limit-remaining"] = "0"
                return 429, headers, problem(429, "Too Many Requests"), 0.0
            capped = self._capped(method, path)
            if capped is not None:
                return 429, headers, capped, 0.0
            status, answer = self._route(method, path, query, payload, user)
            if 200 <= status < 300:
                self._charge(method, path, answer, user)
            return status, headers, answer, fault.delay if fault is not None else 0.0

    def sleep(self, seconds: float) -> None:
        self._wake.wait(seconds)

    def _route(
        self, method: str, path: str, query: dict[str, str], payload: Any, user: FakeUser
    ) -> tuple[int, dict[str, Any]]:
        if method == "GET":
            unknown = unknown_names(self.vocabulary, query)
            if unknown and not self.drops_unknown:
                detail = f"The query parameters [{', '.join(unknown)}] are not known to this server."
                return 400, problem(400, detail)
        if method == "GET" and path == "/2/users/me":
            return 200, {"data": self._user_json(user, query.get("user.fields", ""))}
        match = _USER_PATH.match(path)
        if method == "GET" and match:
            owner, what = match.groups()
            if what == "mentions":
                posts = [p for p in self._sorted() if _addresses(p, owner)][:MENTIONS_KEPT]
            else:
                posts = self._visible([p for p in self._sorted() if p["author_id"] == owner])
            return 200, self._timeline(posts, query)
        if method == "GET" and path == "/2/tweets/search/recent":
            return self._search(query)
        relation = _RELATION_PATH.match(path)
        if method == "GET" and relation and relation.group(1) == user.id:
            listed = [self._user_json(self._users[i], "") for i in self._relations[relation.group(2)]]
            return 200, {"data": listed, "meta": {"result_count": len(listed)}} if listed else {
                "meta": {"result_count": 0}
            }
        if method == "POST" and path == "/2/tweets":
            return self._create_from_api(user, payload)
        return 404, problem(404, f"no route for {method} {path}")

    def _search(self, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        terms = {}
        for term in query.get("query", "").split():
            match = _QUERY_TERM.match(term)
            if match is None:
                return 400, problem(400, f"the fake searches conversation_id: and from: only, not {term!r}")
            terms[match.group(1)] = match.group(2)
        posts = self._sorted()
        if "conversation_id" in terms:
            posts = [p for p in posts if p["conversation_id"] == terms["conversation_id"]]
        if "from" in terms:
            author = self._find_user(terms["from"])
            posts = [p for p in posts if author is not None and p["author_id"] == author.id]
        return 200, self._timeline(self._visible(posts), query)

    def _create_from_api(self, user: FakeUser, payload: Any) -> tuple[int, dict[str, Any]]:
        if not isinstance(payload, dict) or not isinstance(payload.get("text"), str):
            return 400, problem(400, "text is required")
        text = payload["text"]
        reply = payload.get("reply") or {}
        target_id = reply.get("in_reply_to_tweet_id")
        if any(p["text"] == text for p in self._posts.values() if p["author_id"] == user.id):
            return 403, problem(403, DUPLICATE_DETAIL)
        if target_id is not None:
            target = self._posts.get(str(target_id))
            if target is None:
                return 403, problem(403, "You attempted to reply to a Tweet that is deleted or not visible to you.")
            if target["author_id"] != user.id and not _engages(target, user, self._posts):
                return 403, problem(
                    403,
                    "Reply to this conversation is not allowed because you have not been mentioned or "
                    "otherwise engaged by the author of the post you are replying to.",
                )
        # carebot's replies start with the customer's handle already: X adds none in front of them.
        post = self._create(user, text, str(target_id) if target_id else None, None, "en", prefix=False)
        if self._lag:
            self._hidden[post["id"]] = self._lag
        created = {"id": post["id"], "text": post["text"]}
        return 201, {"data": created}

    def _create(
        self, author: FakeUser, text: str, in_reply_to: str | None, quote: str | None, lang: str, *, prefix: bool
    ) -> dict[str, Any]:
        now_ms = max(int(self.clock() * 1000), self._last_ms + 1)
        self._last_ms = now_ms
        post_id = str((now_ms - EPOCH_MS) << 22)
        references = []
        shown_from = 0
        if in_reply_to is not None and prefix:
            parent_author = self._users[self._posts[in_reply_to]["author_id"]]
            handle = f"@{parent_author.username} "
            text, shown_from = handle + text, len(handle)
        post: dict[str, Any] = {
            "id": post_id,
            "text": text,
            "author_id": author.id,
            "created_at": datetime.fromtimestamp(now_ms / 1000, UTC).isoformat(timespec="milliseconds")[:-6] + "Z",
            "conversation_id": post_id,
            "lang": lang,
            "display_text_range": [shown_from, len(text)],
            "edit_history_tweet_ids": [post_id],
        }
        if in_reply_to is not None:
            parent = self._posts[in_reply_to]
            post["conversation_id"] = parent["conversation_id"]
            post["in_reply_to_user_id"] = parent["author_id"]
            references.append({"type": "replied_to", "id": in_reply_to})
        if quote is not None:
            references.append({"type": "quoted", "id": quote})
        if references:
            post["referenced_tweets"] = references
        mentions = []
        for match in _MENTION.finditer(text):
            entity: dict[str, Any] = {"start": match.start(), "end": match.end(), "username": match.group(1)}
            known = self._find_user(match.group(1))
            if known is not None:
                entity["id"] = known.id
            mentions.append(entity)
        if mentions:
            post["entities"] = {"mentions": mentions}
        self._posts[post_id] = post
        return post

    def _visible(self, posts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """What a lookup sees: brand posts still lagging are left out (and one lookup nearer showing)."""
        shown = [p for p in posts if self._hidden.get(p["id"], 0) <= 0]
        for post_id in list(self._hidden):
            self._hidden[post_id] -= 1
        return shown

    def _timeline(self, posts: list[dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
        since, until = int(query.get("since_id", 0)), query.get("until_id")
        posts = [p for p in posts if int(p["id"]) > since and (until is None or int(p["id"]) < int(until))]
        token = query.get("pagination_token") or query.get("next_token")
        if token:
            before = int(token, 36)
            posts = [p for p in posts if int(p["id"]) < before]
        size = int(query.get("max_results", 10))
        page, more = posts[:size], len(posts) > size
        if not page:
            return {"meta": {"result_count": 0}}
        answer: dict[str, Any] = {
            "data": [shaped(p, self.vocabulary, query) for p in page],
            "meta": {"result_count": len(page), "newest_id": page[0]["id"], "oldest_id": page[-1]["id"]},
        }
        if more:
            answer["meta"]["next_token"] = _base36(int(page[-1]["id"]))
        includes = self._includes(page, query)
        if includes:
            answer["includes"] = includes
        return answer

    def _includes(self, page: list[dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
        vocabulary = self.vocabulary
        user_ids: list[str] = []
        posts: list[dict[str, Any]] = []
        for post in page:
            if expands(vocabulary, query, "author_id"):
                user_ids.append(post["author_id"])
            if expands(vocabulary, query, "in_reply_to_user_id") and "in_reply_to_user_id" in post:
                user_ids.append(post["in_reply_to_user_id"])
            if expands(vocabulary, query, "mentions"):
                user_ids += [m["id"] for m in post.get("entities", {}).get("mentions", []) if "id" in m]
            if expands(vocabulary, query, "references"):
                for ref in post.get("referenced_tweets", []):
                    if ref["id"] in self._posts and all(t["id"] != ref["id"] for t in posts):
                        posts.append(shaped(self._posts[ref["id"]], vocabulary, query))
        users = [self._user_json(self._users[i], query.get("user.fields", "")) for i in dict.fromkeys(user_ids)]
        return {key: value for key, value in (("users", users), (vocabulary.includes, posts)) if value}

    # -- billing and caps ---------------------------------------------------------------------

    def _charge(self, method: str, path: str, answer: dict[str, Any], user: FakeUser) -> None:
        """Bill what the answer returned, as X does: per resource, each one once per UTC day."""
        if method == "POST":
            data = answer.get("data") or {}
            self.bill["post_with_url" if extract_urls(str(data.get("text", ""))) else "post_created"] += 1
            self._capped_use[f"posts {self._period_id('posts')}"] += 1
            return
        data = answer.get("data")
        items = data if isinstance(data, list) else [data] if isinstance(data, dict) else []
        includes = answer.get("includes") or {}
        included = includes.get(self.vocabulary.includes, [])
        match = _USER_PATH.match(path)
        if path == "/2/users/me" or path.endswith(("/blocking", "/muting")):
            self._bill("user_read", "user", items)
            posts_read = self._bill("post_read", "post", included)
        else:
            owned = match is not None and match.group(1) == user.id
            posts_read = self._bill("owned_read" if owned else "post_read", "post", items)
            posts_read += self._bill("post_read", "post", included)
        self._bill("user_read", "user", includes.get("users", []))
        self._capped_use[f"reads {self._period_id('reads')}"] += posts_read

    def _bill(self, kind: str, resource: str, items: list[Any]) -> int:
        day = datetime.fromtimestamp(self.clock(), UTC).strftime("%Y-%m-%d")
        billed = self._billed.setdefault(day, set())
        fresh = [f"{resource}:{item['id']}" for item in items if f"{resource}:{item['id']}" not in billed]
        billed.update(fresh)
        self.bill[kind] += len(set(fresh))
        return len(set(fresh))

    def _capped(self, method: str, path: str) -> dict[str, Any] | None:
        """X's answer when the request's kind is past its cap this period, else None."""
        reads_posts = bool(_USER_PATH.match(path)) or path == "/2/tweets/search/recent"  # X's tracked endpoints
        what = "posts" if method == "POST" else "reads" if reads_posts else None
        if what is None or what not in self._caps:
            return None
        limit, period = self._caps[what]
        if self._capped_use[f"{what} {self._period_id(what)}"] < limit:
            return None
        return {
            "title": "UsageCapExceeded",
            "detail": f"Usage cap exceeded: {period} product cap",
            "type": "https://api.twitter.com/2/problems/usage-capped",
            "period": period,
            "scope": "Product",
            "status": 429,
            "code": 429,
            "message": f"Usage cap exceeded: {period} product cap",
        }

    def _period_id(self, what: str) -> str:
        moment = datetime.fromtimestamp(self.clock(), UTC)
        period = self._caps.get(what, (0, "Monthly"))[1]
        return moment.strftime("%Y-%m") if period == "Monthly" else moment.strftime("%Y-%m-%d")

    # -- plumbing -----------------------------------------------------------------------------

    def _sorted(self) -> list[dict[str, Any]]:
        return sorted(self._posts.values(), key=lambda p: int(p["id"]), reverse=True)

    def _find_user(self, username: str) -> FakeUser | None:
        return next((u for u in self._users.values() if u.username.lower() == username.lower()), None)

    def _user_json(self, user: FakeUser, fields: str) -> dict[str, Any]:
        answer: dict[str, Any] = {"id": user.id, "name": user.name, "username": user.username}
        if "verified" in fields.split(","):
            answer["verified"] = False
        return answer

    def _authenticated(self, auth: str) -> FakeUser | None:
        for user in self._users.values():
            if user.bearer_token and auth == f"Bearer {user.bearer_token}":
                return user
            if user.access_token and auth.startswith("OAuth ") and f'oauth_token="{user.access_token}"' in auth:
                return user
        return None

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        for fault in self._faults:
            if fault.count > 0 and fault.matches(method, path):
                fault.count -= 1
                return fault
        return None

    def _count(self, endpoint: str, user: FakeUser) -> dict[str, str]:
        now = int(self.clock())
        limit = self._limits.get(endpoint, 100 if endpoint.startswith("POST") else 900)
        start, used = self._used.get(f"{user.id} {endpoint}", (now, 0))
        if now >= start + WINDOW:
            start, used = now, 0
        used += 1
        self._used[f"{user.id} {endpoint}"] = (start, used)
        return {
            "x-rate-limit-limit": str(limit),
            "x-rate-limit-remaining": str(limit - used),
            "x-rate-limit-reset": str(start + WINDOW),
        }


def _endpoint(method: str, path: str) -> str | None:
    """The rate-limit bucket of a request, named as `set_limit()` takes it."""
    if path == "/2/users/me":
        return f"{method} me"
    if path == "/2/tweets/search/recent":
        return f"{method} search"
    match = _USER_PATH.match(path) or _RELATION_PATH.match(path)
    if match:
        return f"{method} {match.group(2)}"
    return "POST tweets" if (method, path) == ("POST", "/2/tweets") else None


def _addresses(post: dict[str, Any], user_id: str) -> bool:
    """What X's mentions timeline lists: posts naming the user, and replies to the user's posts."""
    named = any(m.get("id") == user_id for m in post.get("entities", {}).get("mentions", []))
    return post["author_id"] != user_id and (named or post.get("in_reply_to_user_id") == user_id)


def _engages(target: dict[str, Any], user: FakeUser, posts: dict[str, dict[str, Any]]) -> bool:
    mentioned = any(m.get("id") == user.id for m in target.get("entities", {}).get("mentions", []))
    quoted = any(
        ref["type"] == "quoted" and posts.get(ref["id"], {}).get("author_id") == user.id
        for ref in target.get("referenced_tweets", [])
    )
    return mentioned or quoted


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while number:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
    return out or "0"
