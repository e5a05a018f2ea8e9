"""A small stateful fake of X API v2, for behaviour tests: mentions, posting, rate limits, faults.

It serves the few endpoints carebot uses, shaped as X's v2.159 OpenAPI spec says (tests put
`prism proxy --errors` in front of it, which rejects anything off-spec either way):

    GET  /2/users/me                  who the token belongs to
    GET  /2/users/:id/mentions        newest first, since_id/until_id/pagination_token, latest 800
    GET  /2/users/:id/tweets          the user's own posts, same paging
    POST /2/tweets                    a post or reply; 403 on duplicate text, on a reply to a
                                      missing post, and on replying to an author who did not
                                      mention or quote the brand (X's 2026 rule)

Tests drive it in-process through Python methods, never over HTTP: `post()` a mention as some
user, read `brand_posts()`, inject `fail_next()`, `rate_limit_next()` or `delay_next()` for the
next N matching requests, and `reset()` between tests. Every answer carries x-rate-limit-*
headers from a per-endpoint 15-minute window (`set_limit()` to make it small).
"""

from __future__ import annotations

import fnmatch
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.peers.x_fake_http import Answer, Server, json_or_none, problem

EPOCH_MS = 1288834974657  # X's snowflake epoch
WINDOW = 900  # seconds in a rate-limit window
MENTIONS_KEPT = 800
DUPLICATE_DETAIL = "You are not allowed to create a Tweet with duplicate content."
_MENTION = re.compile(r"(?<![A-Za-z0-9_@])@([A-Za-z0-9_]{1,15})")
_USER_PATH = re.compile(r"^/2/users/([0-9]{1,19})/(mentions|tweets)$")


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

    def __init__(self, brand: FakeUser = BRAND) -> None:
        self.brand = brand
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
        """Forget every post, user, fault, request and rate-limit count; keep the brand."""
        with self._lock:
            wake = getattr(self, "_wake", None)
            if wake is not None:
                wake.set()  # cut short any delayed answer still sleeping from the last test
            self._wake = threading.Event()
            self._users: dict[str, FakeUser] = {self.brand.id: self.brand}
            self._posts: dict[str, dict[str, Any]] = {}
            self._faults: list[_Fault] = []
            self._limits: dict[str, int] = {}
            self._used: dict[str, tuple[int, int]] = {}  # endpoint -> (window start, count)
            self._last_ms = 0
            self._next_user = int(self.brand.id) + 1
            self.requests: list[SeenRequest] = []

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
    ) -> str:
        """A post by `username` (created if new); @handles in `text` become mention entities."""
        with self._lock:
            return self._create(self.add_user(username), text, in_reply_to, quote, lang)["id"]

    def brand_posts(self) -> list[dict[str, Any]]:
        """What the brand has posted, oldest first."""
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
    ) -> None:
        """Answer the next `count` matching requests with `status` (path is a glob)."""
        with self._lock:
            self._faults.append(_Fault(method, path, count, status, detail, dict(headers or {})))

    def rate_limit_next(
        self, count: int = 1, *, reset_in: float = 2.0, method: str | None = None, path: str | None = None
    ) -> int:
        """Answer the next `count` matching requests with 429; returns the reset epoch sent."""
        reset = int(time.time() + reset_in)
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
                return fault.status, fault.headers, problem(fault.status, fault.detail), 0.0
            user = self._authenticated(auth)
            if user is None:
                return 401, {}, problem(401, "Unauthorized"), 0.0
            endpoint = _endpoint(method, path)
            headers = self._count(endpoint, user) if endpoint else {}
            if int(headers.get("x-rate-limit-remaining", 0)) < 0:
                headers["x-rate-limit-remaining"] = "0"
                return 429, headers, problem(429, "Too Many Requests"), 0.0
            status, answer = self._route(method, path, query, payload, user)
            return status, headers, answer, fault.delay if fault is not None else 0.0

    def sleep(self, seconds: float) -> None:
        self._wake.wait(seconds)

    def _route(
        self, method: str, path: str, query: dict[str, str], payload: Any, user: FakeUser
    ) -> tuple[int, dict[str, Any]]:
        if method == "GET" and path == "/2/users/me":
            return 200, {"data": self._user_json(user, query.get("user.fields", ""))}
        match = _USER_PATH.match(path)
        if method == "GET" and match:
            owner, what = match.groups()
            if what == "mentions":
                posts = [p for p in self._sorted() if _addresses(p, owner)][:MENTIONS_KEPT]
            else:
                posts = [p for p in self._sorted() if p["author_id"] == owner]
            return 200, self._timeline(posts, query)
        if method == "POST" and path == "/2/tweets":
            return self._create_from_api(user, payload)
        return 404, problem(404, f"no route for {method} {path}")

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
        post = self._create(user, text, str(target_id) if target_id else None, None, "en")
        return 201, {"data": {"id": post["id"], "text": post["text"]}}

    def _create(
        self, author: FakeUser, text: str, in_reply_to: str | None, quote: str | None, lang: str
    ) -> dict[str, Any]:
        now_ms = max(int(time.time() * 1000), self._last_ms + 1)
        self._last_ms = now_ms
        post_id = str((now_ms - EPOCH_MS) << 22)
        references = []
        post: dict[str, Any] = {
            "id": post_id,
            "text": text,
            "author_id": author.id,
            "created_at": datetime.fromtimestamp(now_ms / 1000, UTC).isoformat(timespec="milliseconds")[:-6] + "Z",
            "conversation_id": post_id,
            "lang": lang,
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

    def _timeline(self, posts: list[dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
        since, until = int(query.get("since_id", 0)), query.get("until_id")
        posts = [p for p in posts if int(p["id"]) > since and (until is None or int(p["id"]) < int(until))]
        if "pagination_token" in query:
            before = int(query["pagination_token"], 36)
            posts = [p for p in posts if int(p["id"]) < before]
        size = int(query.get("max_results", 10))
        page, more = posts[:size], len(posts) > size
        if not page:
            return {"meta": {"result_count": 0}}
        fields = set(filter(None, query.get("tweet.fields", "").split(",")))
        expansions = set(filter(None, query.get("expansions", "").split(",")))
        answer: dict[str, Any] = {
            "data": [_fields(p, fields) for p in page],
            "meta": {"result_count": len(page), "newest_id": page[0]["id"], "oldest_id": page[-1]["id"]},
        }
        if more:
            answer["meta"]["next_token"] = _base36(int(page[-1]["id"]))
        includes = self._includes(page, expansions, fields, query.get("user.fields", ""))
        if includes:
            answer["includes"] = includes
        return answer

    def _includes(
        self, page: list[dict[str, Any]], expansions: set[str], fields: set[str], user_fields: str
    ) -> dict[str, Any]:
        user_ids: list[str] = []
        tweets: list[dict[str, Any]] = []
        for post in page:
            if "author_id" in expansions:
                user_ids.append(post["author_id"])
            if "in_reply_to_user_id" in expansions and "in_reply_to_user_id" in post:
                user_ids.append(post["in_reply_to_user_id"])
            if "entities.mentions.username" in expansions:
                user_ids += [m["id"] for m in post.get("entities", {}).get("mentions", []) if "id" in m]
            if "referenced_tweets.id" in expansions:
                for ref in post.get("referenced_tweets", []):
                    if ref["id"] in self._posts and all(t["id"] != ref["id"] for t in tweets):
                        tweets.append(_fields(self._posts[ref["id"]], fields))
        users = [self._user_json(self._users[i], user_fields) for i in dict.fromkeys(user_ids)]
        return {key: value for key, value in (("users", users), ("tweets", tweets)) if value}

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
        now = int(time.time())
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
    match = _USER_PATH.match(path)
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


def _fields(post: dict[str, Any], fields: set[str]) -> dict[str, Any]:
    always = {"id", "text", "edit_history_tweet_ids"}
    return {key: value for key, value in post.items() if key in always or key in fields}


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while number:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
    return out or "0"
