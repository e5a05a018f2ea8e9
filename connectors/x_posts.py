"""Turning an X API v2 answer (posts plus their expansions) into `Mention`s. Pure functions."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from connectors.base import Author, BadResponse, Mention

_POST_ID = re.compile(r"^[0-9]{1,19}$")
_TWITTER_EPOCH_MS = 1288834974657
# X's language codes that name no language: undetermined, no text, media/hashtags/cashtags only.
_NO_LANGUAGE = frozenset({"und", "zxx", "qam", "qct", "qht", "qme", "qst"})
# X still reports some languages by their withdrawn ISO 639 codes ("in" for Indonesian).
_CURRENT_CODE = {"in": "id", "iw": "he", "ji": "yi"}


def post_id_or_none(value: object) -> str | None:
    """`value` as an X post id, or None if it is not one."""
    text = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""
    return text if _POST_ID.match(text) else None


def replied_to(post: Mapping[str, Any]) -> str | None:
    """The id of the post `post` replies to, if it is a reply."""
    references = post.get("referenced_tweets")
    for ref in references if isinstance(references, list) else []:
        if isinstance(ref, dict) and ref.get("type") == "replied_to":
            return post_id_or_none(ref.get("id"))
    return None


def mentions_from(body: Mapping[str, Any], brand_id: str, brand_username: str | None) -> list[Mention]:
    """The posts of one mentions page, in the order given. BadResponse if a post is unusable."""
    data = body.get("data", [])
    includes = body.get("includes", {})
    if not isinstance(data, list) or not isinstance(includes, dict):
        raise BadResponse("X answered mentions with a malformed data or includes")
    users = _by_id(includes.get("users"))
    posts = _by_id(includes.get("tweets"))
    return [_mention(post, users, posts, brand_id, brand_username) for post in data]


def _mention(
    post: object,
    users: Mapping[str, Mapping[str, Any]],
    posts: Mapping[str, Mapping[str, Any]],
    brand_id: str,
    brand_username: str | None,
) -> Mention:
    if not isinstance(post, dict):
        raise BadResponse("X answered mentions with a post that is not an object")
    post_id = post_id_or_none(post.get("id"))
    if post_id is None:
        raise BadResponse(f"X answered mentions with a post without a valid id: {post.get('id')!r}")
    author_id = str(post.get("author_id") or "")
    user = users.get(author_id, {})
    author = Author(
        id=author_id,
        handle=str(user.get("username") or author_id),
        display_name=str(user.get("name") or ""),
    )
    references = _references(post, posts)
    replied_to = next((ref["id"] for ref in references if ref["type"] == "replied_to"), None)
    mentioned = _mentioned(post)
    brand = (brand_username or "").lower()
    return Mention(
        platform="x",
        post_id=post_id,
        cursor=post_id,
        author=author,
        text=_text(post),
        created_at=_created_at(post, post_id),
        url=f"https://x.com/{author.handle}/status/{post_id}" if user.get("username") else None,
        in_reply_to_id=replied_to,
        in_reply_to_author_id=_str_or_none(post.get("in_reply_to_user_id")),
        conversation_id=_str_or_none(post.get("conversation_id")),
        visibility="public",
        language=_language(post.get("lang")),
        # X lets an automated account reply only to someone who addressed it: the brand
        # must be among the post's own mention entities, not merely up the thread.
        mentions_brand=any(m["username"].lower() == brand or m["id"] == brand_id for m in mentioned),
        extra={
            "author_verified": bool(user.get("verified", False)),
            "mentioned": mentioned,
            "referenced": references,
            "quotes_brand": any(r["type"] == "quoted" and r["author_id"] == brand_id for r in references),
        },
    )


def _language(code: object) -> str | None:
    if not isinstance(code, str) or not code or code in _NO_LANGUAGE:
        return None
    return _CURRENT_CODE.get(code, code)


def _text(post: Mapping[str, Any]) -> str:
    note = post.get("note_tweet")
    text = note.get("text") if isinstance(note, dict) and note.get("text") else post.get("text")
    if not isinstance(text, str):
        raise BadResponse(f"X answered mentions with post {post.get('id')} without text")
    return html.unescape(text)  # X sends &amp; &lt; &gt; escaped


def _created_at(post: Mapping[str, Any], post_id: str) -> datetime:
    raw = post.get("created_at")
    if isinstance(raw, str):
        try:
            created = datetime.fromisoformat(raw)
        except ValueError:
            created = None
        if created is not None:
            return created if created.tzinfo else created.replace(tzinfo=UTC)
    # Post ids are snowflakes: the top bits are milliseconds since X's epoch.
    return datetime.fromtimestamp(((int(post_id) >> 22) + _TWITTER_EPOCH_MS) / 1000, UTC)


def _mentioned(post: Mapping[str, Any]) -> list[dict[str, str]]:
    entities = post.get("entities")
    found = entities.get("mentions") if isinstance(entities, dict) else None
    return [
        {"username": str(m.get("username") or ""), "id": str(m.get("id") or "")}
        for m in (found if isinstance(found, list) else [])
        if isinstance(m, dict)
    ]


def _references(post: Mapping[str, Any], posts: Mapping[str, Mapping[str, Any]]) -> list[dict[str, str]]:
    found = post.get("referenced_tweets")
    references = []
    for ref in found if isinstance(found, list) else []:
        if not isinstance(ref, dict) or post_id_or_none(ref.get("id")) is None:
            continue
        target = posts.get(str(ref["id"]), {})
        text = target.get("text")
        references.append(
            {
                "type": str(ref.get("type") or ""),
                "id": str(ref["id"]),
                "author_id": str(target.get("author_id") or ""),
                "text": html.unescape(text) if isinstance(text, str) else "",
            }
        )
    return references


def _by_id(items: object) -> dict[str, Mapping[str, Any]]:
    if not isinstance(items, list):
        return {}
    return {str(item["id"]): item for item in items if isinstance(item, dict) and "id" in item}


def _str_or_none(value: object) -> str | None:
    return str(value) if value not in (None, "") else None
