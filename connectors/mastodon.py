"""The Mastodon connector: one brand account on one instance, through Mastodon.py.

Mention stream: the account's `mention` notifications, read forward with
`min_id` so a burst between two polls is never skipped. The cursor is a
notification id. Errors from Mastodon.py are translated here and nowhere else.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from connectors.base import (
    AccountInfo,
    AuthFailed,
    Author,
    BadResponse,
    ConnectorError,
    ConnectorSettings,
    Mention,
    MentionPage,
    MentionStream,
    Platform,
    PostedReply,
    RateBudget,
    RateLimited,
    Rejected,
    Unavailable,
    Unreachable,
    Unreadable,
    same_words,
)
from connectors.ignored import IgnoredAuthors
from connectors.mastodon_html import html_to_text
from connectors.mastodon_limits import RateHeaders, retry_after, text_length
from connectors.mastodon_options import MastodonOptions

if TYPE_CHECKING:
    import requests
    from mastodon import Mastodon
    from mastodon.errors import MastodonAPIError

log = logging.getLogger(__name__)

# Real Mastodon serves 40 notifications by default and at most 80 per request.
MAX_PAGE = 80
# Blocks and mutes change rarely; re-reading them once a minute costs 2 of 300 requests per 5 minutes.
IGNORED_TTL = 60.0
MAX_RELATION_PAGES = 10
DEFAULT_MAX_CHARACTERS = 500

# Least to most private; a reply may move right along this line, never left.
_VISIBILITIES = ("public", "unlisted", "private", "direct")
# The parts of a response that shape cannot be trusted to have: a missing key or
# an odd type while converting is the server's fault, not ours.
_SHAPE_ERRORS = (KeyError, TypeError, AttributeError, ValueError, IndexError)


class MastodonConnector:
    """One Mastodon account. See `connectors.base.Connector` for the contract."""

    platform = "mastodon"
    min_poll_interval = 1.0  # 300 requests per 5 minutes leaves plenty for paging and replies
    # Safe from several threads: each request leases a client (and its requests Session) of its own, and
    # the budget is one, reserved request by request (`RateHeaders.reserve`).
    max_send_concurrency = 8

    def __init__(self, settings: ConnectorSettings) -> None:
        self._account = settings.account
        self._token = settings.secrets["access_token"]
        self._base_url = settings.base_url
        self._timeout = settings.timeout
        self._rate = RateHeaders()
        # Neither a requests Session nor Mastodon.py's client (it keeps the last answer's rate-limit
        # figures on itself) is made to be shared between threads: a request takes an idle client, or a
        # new one, and gives it back. There are never more clients than requests in flight at once.
        self._idle: list[Mastodon] = []
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()
        self._me: AccountInfo | None = None
        self._ignored = IgnoredAuthors(self._read_ignored, IGNORED_TTL)
        self._idle.append(self._new_client())  # fails here, not at the first request, if the libraries do

    def __repr__(self) -> str:
        return f"MastodonConnector(account={self._account!r}, base_url={self._base_url!r})"

    def _new_client(self) -> Mastodon:
        # Mastodon.py (and requests) load with the first connector, not with the platform's description: the
        # config and short commands use that alone, and the libraries are a quarter of their start-up.
        import requests
        from mastodon import Mastodon

        session = requests.Session()
        session.hooks["response"].append(self._rate.observe)
        client = Mastodon(
            api_base_url=self._base_url,
            request_timeout=self._timeout,
            ratelimit_method="throw",  # the daemon owns waiting, never the library
            version_check_mode="none",
            session=session,
        )
        # Set after construction: Mastodon.py reads a token that names an existing
        # file as that file's contents, which a real token must never trigger.
        client.access_token = self._token
        with self._lock:
            self._sessions.append(session)
        return client

    @contextmanager
    def _leased(self) -> Iterator[Mastodon]:
        with self._lock:
            client = self._idle.pop() if self._idle else None
        if client is None:
            client = self._new_client()
        try:
            yield client
        finally:
            with self._lock:
                self._idle.append(client)

    # --- the Connector protocol ---------------------------------------------

    def verify(self) -> AccountInfo:
        with self._edge("verify credentials") as client:
            me = client.account_verify_credentials()
            own_id, handle = _id(me["id"], "account id"), me["acct"]
            if not isinstance(handle, str) or not valid_handle(handle):
                raise ValueError("the account's acct is not a handle")
        self._me = AccountInfo(id=own_id, handle=handle, max_characters=self._max_characters())
        return self._me

    def fetch_mentions(self, after: str | None, limit: int) -> MentionPage:
        """Mention notifications strictly after the notification id `after`, oldest first.

        `after=None` means "start from now": nothing is returned, and the cursor
        is the newest mention notification, so the first poll of a new account
        never answers its history (a brand switching the bot on does not want
        week-old posts answered). When the account has no mention at all yet,
        the cursor is "0", meaning "everything from the first one on".

        Mastodon may return fewer than `limit` (the server caps pages); `has_more`
        says a full page came back, so the caller should fetch again at once.
        Notifications without a status (deleted since) or of another type are
        skipped, but the cursor still moves past them.
        """
        if after is None:
            return self._start_from_now()
        own_id = self._own().id
        size = max(1, min(limit, MAX_PAGE))
        with self._edge("fetch mentions") as client:
            raw = client.notifications(types=["mention"], min_id=after, limit=size)
            if not isinstance(raw, list) or not all(isinstance(n, Mapping) for n in raw):
                raise ValueError("notifications: not a list of objects")
            page = sorted(raw, key=_id_order)
            # Mastodon sends a "next" link exactly when the page was full, whatever
            # cap the server applied to our `limit`.
            more = len(page) >= size or getattr(raw, "_pagination_next", None) is not None
            page = page[:size]
            cursor = _id(page[-1]["id"], "notification id") if page else None
        # Each notification on its own: one that cannot be read is set aside, the rest of the page is not.
        mentions: list[Mention] = []
        unreadable: list[Unreadable] = []
        for notification in page:
            try:
                mention = _to_mention(notification, own_id)
            except _SHAPE_ERRORS as exc:
                unreadable.append(_unreadable(notification, exc))
                continue
            if mention is not None:
                mentions.append(mention)
        return MentionPage(mentions=mentions, next_cursor=cursor, has_more=more and bool(page), unreadable=unreadable)

    def reply(self, mention: Mention, text: str, idempotency_key: str) -> PostedReply:
        """Reply in the mention's thread, never more publicly than the mention itself.

        The author's `@handle` is put in front unless the text already names them:
        Mastodon only notifies (and, for private and direct posts, only shows the
        post to) the accounts a status mentions.
        """
        with self._edge("reply", write=True) as client:
            status = client.status_post(
                _addressed(mention.author.handle, text),
                in_reply_to_id=mention.post_id,
                visibility=_reply_visibility(mention.visibility),
                idempotency_key=idempotency_key,
            )
            return _posted(status)

    def send_direct(self, mention: Mention, text: str, idempotency_key: str) -> PostedReply:
        """A direct (mentioned-people-only) status to the mention's author.

        It answers the mention, so the author sees it as a private reply in context and
        `find_reply(direct=True)` can find it again after the idempotency key has expired.
        """
        handle = mention.author.handle
        if not valid_handle(handle):  # a direct status reaches only the accounts it names
            raise Rejected(self._message("send direct message", "the author's handle is not a Mastodon handle"))
        body = text if text.startswith(f"@{handle} ") else f"@{handle} {text}"
        with self._edge("send direct message", write=True) as client:
            status = client.status_post(
                body, in_reply_to_id=mention.post_id, visibility="direct", idempotency_key=idempotency_key
            )
            return _posted(status)

    def find_reply(
        self,
        mention: Mention,
        idempotency_key: str,
        *,
        direct: bool = False,
        text: str | None = None,
        thorough: bool = False,
    ) -> PostedReply | None:
        """Our reply to `mention` in its thread (our private follow-up when `direct`), if there is one.

        Mastodon cannot look a status up by idempotency key; posting again with the
        same key within an hour returns the first status instead. This finds a
        reply older than that. A deleted mention has no thread: None. The whole thread
        is read every time, so `thorough` changes nothing.
        """
        from mastodon import errors

        own_id = self._own().id
        with self._edge("find reply") as client:
            try:
                context = client.status_context(mention.post_id)
            except errors.MastodonNotFoundError:
                return None
            # Every field read inside the edge: an answer of the wrong shape is a BadResponse, never a
            # TypeError that would leave the reply claimed and stop the cycle's other sends.
            descendants = context["descendants"]
            if not isinstance(descendants, list) or not all(isinstance(s, Mapping) for s in descendants):
                raise ValueError("status context: descendants is not a list of statuses")
            ours = [
                status
                for status in sorted(descendants, key=_id_order)
                if _id(status["account"]["id"], "account id") == own_id
                and _optional_id(status.get("in_reply_to_id")) == mention.post_id
            ]
            if text is not None:
                found = [
                    status
                    for status in ours
                    if (status.get("visibility") == "direct") == direct
                    and same_words(html_to_text(_text(status.get("content"), "content")), text)
                ]
            elif _reply_visibility(mention.visibility) == "direct":
                # The public reply to a direct mention is direct too; it always goes out before the
                # follow-up (the outbox holds follow-ups until it is sent), so order tells them apart.
                found = ours[1:] if direct else ours[:1]
            else:
                found = [status for status in ours if (status.get("visibility") == "direct") == direct]
            return _posted(found[0]) if found else None

    def text_length(self, text: str) -> int:
        return text_length(text)

    def ignored_author_ids(self) -> frozenset[str]:
        """Accounts the brand blocked or muted (Mastodon still notifies of some), re-read once a minute."""
        return self._ignored.get()

    def _read_ignored(self) -> set[str]:
        return self._account_ids("blocks") | self._account_ids("mutes")

    def budget(self) -> RateBudget:
        return self._rate.budget()

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions, self._idle = self._sessions, [], []
        for session in sessions:
            session.close()

    # --- helpers --------------------------------------------------------------

    def _own(self) -> AccountInfo:
        return self._me if self._me is not None else self.verify()

    def _max_characters(self) -> int:
        from mastodon import errors

        with self._edge("read instance limits") as client:
            try:
                instance = client.instance_v2()
            except errors.MastodonNotFoundError:  # servers older than 4.0 only have v1
                instance = client.instance_v1()
            try:
                value = instance["configuration"]["statuses"]["max_characters"]
            except _SHAPE_ERRORS:
                return DEFAULT_MAX_CHARACTERS
            return int(value) if isinstance(value, int) and value > 0 else DEFAULT_MAX_CHARACTERS

    def _account_ids(self, listing: str) -> set[str]:
        """The ids in the brand's `listing` ("blocks", "mutes"): one request per edge, so that each page is
        counted against the budget, and read inside it, so that a page of the wrong shape is a BadResponse."""
        ids: set[str] = set()
        page: Any = None
        for _ in range(MAX_RELATION_PAGES):
            with self._edge(f"read {listing}") as client:
                page = getattr(client, listing)(limit=MAX_PAGE) if page is None else client.fetch_next(page)
                ids |= {str(account["id"]) for account in page or ()}
            if not page or getattr(page, "_pagination_next", None) is None:
                break
        return ids

    def _start_from_now(self) -> MentionPage:
        with self._edge("fetch mentions") as client:
            newest = sorted(client.notifications(types=["mention"], limit=1), key=_id_order)
            cursor = str(newest[-1]["id"]) if newest else "0"
        return MentionPage(mentions=[], next_cursor=cursor, has_more=False)

    @contextmanager
    def _edge(self, action: str, write: bool = False) -> Iterator[Mastodon]:
        """A client for one request, and anything Mastodon.py or a malformed answer raises turned into our
        error tree.

        A request the server already said it would refuse (no budget left before the reset, counting the
        requests in flight from other threads) is not sent: spending a 429 on it only tells us what we knew.
        """
        from mastodon.errors import (
            MastodonAPIError,
            MastodonError,
            MastodonIllegalArgumentError,
            MastodonNetworkError,
            MastodonNotFoundError,
            MastodonRatelimitError,
            MastodonServerError,
            MastodonUnauthorizedError,
        )

        wait = self._rate.reserve(write)
        if wait is not None:
            raise RateLimited(self._message(action, f"request budget spent, next in {wait:.0f} s"), wait)
        try:
            with self._leased() as client:
                yield client
        except ConnectorError:
            raise
        except MastodonRatelimitError as exc:
            wait = retry_after(self._rate.last)
            raise RateLimited(self._message(action, f"rate limited, retry in {wait:.0f} s"), wait) from exc
        except MastodonUnauthorizedError as exc:
            raise AuthFailed(self._message(action, "access token refused", exc)) from exc
        except MastodonNotFoundError as exc:
            raise Rejected(self._message(action, "not found", exc)) from exc
        except (MastodonServerError, MastodonNetworkError) as exc:
            kind = Unreachable if _down(exc) else Unavailable
            raise kind(self._message(action, "server unavailable", exc)) from exc
        except MastodonAPIError as exc:
            raise _api_error(exc, self._message(action, "", exc), retry_after(self._rate.last)) from exc
        except MastodonIllegalArgumentError as exc:
            raise Rejected(self._message(action, "refused by the client library", exc)) from exc
        except MastodonError as exc:
            raise BadResponse(self._message(action, "unexpected answer", exc)) from exc
        except _SHAPE_ERRORS as exc:
            what = f"unexpected answer ({type(exc).__name__})"
            raise BadResponse(self._message(action, what, exc)) from exc
        finally:
            self._rate.settle(write)

    def _message(self, action: str, what: str, exc: BaseException | None = None) -> str:
        detail = " ".join(str(a).strip() for a in exc.args if a not in (None, "")) if exc is not None else ""
        # Mastodon.py quotes an unparseable body, which may hold posts and their personal data.
        detail = detail.split(", bad json content was", 1)[0]
        detail = detail.replace(self._token, "***")[:300] if self._token else detail[:300]
        return f"mastodon account {self._account!r}: {action}: " + "; ".join(p for p in (what, detail) if p)


def _api_error(exc: MastodonAPIError, message: str, wait: float) -> ConnectorError:
    """Map an HTTP error (or an unparseable body) Mastodon.py raised as its generic API error."""
    status = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else None
    if status is None:
        return BadResponse(message)  # 2xx whose body was not JSON
    if status in (401, 403):  # 403: token lacks the scope, or the account is disabled
        return AuthFailed(message)
    if status == 429:  # only when Mastodon.py did not raise its own rate-limit error
        return RateLimited(message, wait)
    if status in (408, 425) or status >= 500:
        return Unavailable(message)
    return Rejected(message)


def _down(exc: BaseException) -> bool:
    """Whether Mastodon.py's error is that the server could not be reached (no connection, or it broke),
    rather than an answer: it wraps the requests error it met without `from`, so that is the context. A read
    timeout is not: the server may be at work on the request."""
    import requests
    from mastodon.errors import MastodonNetworkError

    return isinstance(exc, MastodonNetworkError) and isinstance(exc.__context__, requests.ConnectionError)


def _reply_visibility(mention_visibility: str) -> str:
    """The mention's own visibility; anything we don't know is treated as direct."""
    return mention_visibility if mention_visibility in _VISIBILITIES else "direct"


def _addressed(handle: str, text: str) -> str:
    """The text, with the author's @handle in front unless it names them already. A handle that is not
    Mastodon syntax is never written: the text goes as a person wrote it."""
    if not valid_handle(handle):
        return text
    named = {m.group(1).lower() for m in _MENTION.finditer(text)}
    return text if handle.lower() in named else f"@{handle} {text}"


# Mastodon's username syntax (Account::USERNAME_RE) and, for a remote account, "@" and its domain.
_HANDLE = re.compile(
    r"[A-Za-z0-9_]+(?:[A-Za-z0-9_.-]+[A-Za-z0-9_]+)?"
    r"(?:@(?=[^@]{1,253}$)(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+[^\W\d_](?:[\w-]{0,61}[^\W_])?)?"
)


def valid_handle(handle: str) -> bool:
    """Whether `handle` (without the leading "@") is a Mastodon handle: "user" or "user@domain.example"."""
    return len(handle) <= 300 and _HANDLE.fullmatch(handle) is not None


# Real Mastodon's Account::MENTION_RE, with the domain kept: "@alice@example.social".
_MENTION = re.compile(r"(?<![=/\w])@(\w+(?:[\w.-]+\w+)?(?:@[\w.-]+\w+)?)", re.IGNORECASE)


def _to_mention(notification: Mapping[str, Any], own_id: str) -> Mention | None:
    """One mention notification as a Mention; None for anything we must skip.

    A field of the wrong shape raises one of `_SHAPE_ERRORS` naming the field (never the post's text):
    the caller sets that notification aside and reads the rest of the page.
    """
    status = notification.get("status")
    if notification.get("type") != "mention" or status is None:
        return None
    if not isinstance(status, Mapping):
        raise ValueError("status is not an object")
    author = status.get("account")
    if not isinstance(author, Mapping):
        raise ValueError("status.account is missing")
    body = html_to_text(_text(status.get("content"), "content"))
    warning = _text(status.get("spoiler_text"), "spoiler_text").strip()
    mentioned = status.get("mentions") or ()
    if not isinstance(mentioned, list | tuple) or not all(isinstance(m, Mapping) for m in mentioned):
        raise ValueError("status.mentions is not a list of accounts")
    url = status.get("url") or status.get("uri")
    return Mention(
        platform="mastodon",
        post_id=_id(status.get("id"), "status id"),
        cursor=_id(notification.get("id"), "notification id"),
        author=_author(author),
        # A content warning often says what the post is about; the classifier needs it.
        text=f"{warning}\n\n{body}" if warning else body,
        created_at=_timestamp(status.get("created_at")),
        url=url if isinstance(url, str) else None,
        in_reply_to_id=_optional_id(status.get("in_reply_to_id")),
        in_reply_to_author_id=_optional_id(status.get("in_reply_to_account_id")),
        conversation_id=_optional_id(status.get("conversation_id")),
        visibility=str(status.get("visibility") or "public"),
        language=status.get("language") if isinstance(status.get("language"), str) else None,
        mentions_brand=any(str(m.get("id")) == own_id for m in mentioned),
        extra={"spoiler_text": warning} if warning else {},
    )


def _author(account: Mapping[str, Any]) -> Author:
    """The post's author. A missing or non-text `acct` gives the handle "" (never "None"): a handle that is
    not valid Mastodon syntax is never written into a reply, a person answers instead."""
    acct = account.get("acct")
    name = account.get("display_name")
    return Author(
        id=_id(account.get("id"), "account id"),
        handle=acct if isinstance(acct, str) else "",
        display_name=name if isinstance(name, str) else "",
        is_bot=account.get("bot") is True,
    )


def _unreadable(notification: Mapping[str, Any], exc: BaseException) -> Unreadable:
    """What can be said of a notification that could not be read: its ids, why, and some text if any."""
    status = notification.get("status")
    status = status if isinstance(status, Mapping) else {}
    account = status.get("account")
    account = account if isinstance(account, Mapping) else {}
    cursor = _id(notification["id"], "notification id")
    post_id = status.get("id")
    content = status.get("content")
    acct = account.get("acct")
    what = str(exc.args[0]) if isinstance(exc, ValueError) and exc.args else type(exc).__name__
    return Unreadable(
        post_id=str(post_id) if isinstance(post_id, str | int) else f"notification:{cursor}",
        cursor=cursor,
        reason=f"unreadable notification: {what}"[:300],
        excerpt=html_to_text(content)[:500] if isinstance(content, str) else "",
        author_handle=acct[:300] if isinstance(acct, str) else "",
    )


def _posted(status: Mapping[str, Any]) -> PostedReply:
    url = status.get("url") or status.get("uri")
    return PostedReply(post_id=_id(status.get("id"), "status id"), url=url if isinstance(url, str) else None)


def _timestamp(value: Any) -> datetime:
    """Mastodon.py gives datetimes in local time; recorded payloads give ISO strings."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("created_at is not a date") from None
    else:
        raise ValueError("created_at is missing")
    if moment.tzinfo is None:
        raise ValueError("created_at has no time zone")
    return moment.astimezone(UTC)


def _id(value: Any, what: str) -> str:
    """An id as Mastodon sends it (a string of digits; some servers send numbers or ULIDs)."""
    if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip():
        raise ValueError(f"{what} is missing")
    text = str(value)
    if len(text) > 100 or not text.isprintable():
        raise ValueError(f"{what} is not an id")
    return text


def _text(value: Any, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{what} is not text")
    return value


def _optional_id(value: Any) -> str | None:
    return None if value is None else _id(value, "id")


def _id_order(item: Mapping[str, Any]) -> tuple[int, str]:
    # Mastodon ids are decimal strings that do not fit a float; other servers use
    # fixed-width ULIDs. Comparing by length, then text, orders both correctly.
    ident = _id(item["id"], "id")
    return len(ident), ident


def _open_stream(settings: ConnectorSettings, own_id: str) -> MentionStream:
    from connectors.mastodon_stream import NotificationStream

    return NotificationStream(settings, own_id)


PLATFORM = Platform(
    name="mastodon",
    create=MastodonConnector,
    secret_keys=("access_token",),
    required_secrets=(("access_token",),),
    default_base_url=None,
    max_characters=DEFAULT_MAX_CHARACTERS,
    count_text=text_length,
    backfill_cursor=lambda _since: "0",  # notification ids are not times: read from the first, skip the old
    valid_handle=valid_handle,
    options=MastodonOptions,
    open_stream=_open_stream,
)
