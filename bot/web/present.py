"""What the pages show: queue items and figures turned into plain values the templates print (escaped)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from bot.classifier import mask_personal_data
from bot.clock import format_duration, now
from bot.models import PURPOSE_LABELS, ReplyState
from bot.run.context import post_limit, text_length
from bot.storage import Storage
from bot.storage.records import DeskFigures, HistoryRow, QueueItem, ThreadPost
from connectors import get_platform

LANGUAGE_NAMES = {"en": "English", "ru": "Русский", "id": "Bahasa Indonesia", "ar": "العربية"}
RTL_LANGUAGES = {"ar"}


@dataclass(frozen=True)
class FollowUpView:
    """The private follow-up that goes out after a public reply: shown under it, edited and approved with it."""

    id: int
    state: str
    draft: str
    length: int
    pending: bool


@dataclass(frozen=True)
class ItemView:
    id: int
    state: str
    kind: str
    account: str
    platform: str
    author_handle: str
    author_name: str
    post: str  # personal data masked
    post_url: str | None  # only http(s) links; anything else is not a link
    personal_data: tuple[str, ...]
    lang: str
    lang_name: str
    direction: str  # "rtl" | "ltr"
    situation: str
    confidence: float
    urgent: bool
    reason: str
    draft: str
    length: int
    limit: int
    counting: str  # "x" (weighted) | "plain" (code points): how the page's script counts
    asked_at: datetime
    waiting: str
    attempts: int
    last_error: str | None
    visibility: str
    in_reply_to_id: str | None
    thread: tuple[ThreadPost, ...]
    follow_up: FollowUpView | None
    approved_by: str | None
    purpose: str = "answer"  # only the bot's answer is re-drafted from a situation
    purpose_label: str | None = None


def item_views(storage: Storage, items: Sequence[QueueItem], at: datetime | None = None) -> list[ItemView]:
    """The queue's items as shown, their threads and accounts read once for the whole page."""
    threads = storage.mentions.threads([item.mention for item in items])
    limits: dict[str, int] = {}
    for stored in (item.mention for item in items):
        if stored.account not in limits:
            platform = get_platform(stored.mention.platform)
            limits[stored.account] = post_limit(storage.accounts.get(stored.account), platform)
    at = at or now()
    return [item_view(item, limits[item.mention.account], threads[item.mention.id], at) for item in items]


def item_view(item: QueueItem, limit: int, thread: Sequence[ThreadPost], at: datetime) -> ItemView:
    stored, reply = item.mention, item.reply
    mention = stored.mention
    count = text_length(get_platform(mention.platform))
    asked_at = item.waiting_since
    return ItemView(
        id=reply.id,
        state=reply.state.value,
        kind=reply.kind.value,
        account=stored.account,
        platform=mention.platform,
        author_handle=mention.author.handle,
        author_name=mention.author.display_name,
        post=mask_personal_data(mention.text),
        post_url=safe_url(mention.url),
        personal_data=tuple(sorted({p["kind"] for p in stored.personal_data})),
        lang=stored.lang,
        lang_name=LANGUAGE_NAMES.get(stored.lang, stored.lang),
        direction="rtl" if stored.lang in RTL_LANGUAGES else "ltr",
        situation=stored.situation,
        confidence=stored.confidence,
        urgent=item.urgent,
        reason=stored.reason,
        draft=reply.text,
        length=count(reply.text),
        limit=limit,
        counting="x" if mention.platform == "x" else "plain",
        asked_at=asked_at,
        waiting=format_duration(at - asked_at),
        attempts=reply.attempts,
        last_error=reply.last_error,
        visibility=mention.visibility,
        in_reply_to_id=mention.in_reply_to_id,
        thread=tuple(_masked(post) for post in thread),
        follow_up=_follow_up(item, count),
        approved_by=reply.approved_by,
        purpose=reply.purpose,
        purpose_label=PURPOSE_LABELS.get(reply.purpose),
    )


def _follow_up(item: QueueItem, count: Callable[[str], int]) -> FollowUpView | None:
    direct = item.follow_up
    if direct is None or direct.state in (ReplyState.REJECTED, ReplyState.DRAFTED):
        return None
    pending = direct.state is ReplyState.PENDING
    return FollowUpView(direct.id, direct.state.value, direct.text, count(direct.text), pending)


def safe_url(url: str | None) -> str | None:
    if not url:
        return None
    return url if urlsplit(url).scheme in ("http", "https") else None


def figure_texts(figures: DeskFigures) -> dict[str, str]:
    return {
        "waiting_now": str(figures.waiting_now),
        "oldest_wait": format_duration(figures.oldest_wait),
        "answered_today": str(figures.answered_today),
        "median_first_response": format_duration(figures.median_first_response),
        "set_aside": str(figures.set_aside),
    }


def history_view(rows: list[HistoryRow]) -> list[HistoryRow]:
    """History rows with the customers' posts masked."""
    return [dataclasses.replace(row, post=mask_personal_data(row.post)) for row in rows]


def _masked(post: ThreadPost) -> ThreadPost:
    return post if post.ours else dataclasses.replace(post, text=mask_personal_data(post.text))
