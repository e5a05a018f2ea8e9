"""X API v2 posts: the two vocabularies X has used for them, and turning an answer into `Mention`s.

X renamed "tweet" to "post" in its API (spec v2.167): `post.fields` for `tweet.fields`, the expansion
`referenced_posts` for `referenced_tweets.id`, `note_post` for `note_tweet`, `includes.posts` for
`includes.tweets`. A server speaks one or the other; the connector asks in one `Vocabulary` and falls back
to the other (`x.py`). Reading is tolerant: an answer is parsed whichever names it uses.

Parsing is pure. A post addresses the brand only if the brand is among the mentions the author wrote: X
puts the handles of the post it answers in front of a reply's text, outside `display_text_range`, so a
reply in the brand's thread that does not name the brand is not addressed to it.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from connectors.base import Author, BadResponse, Mention

_POST_ID = re.compile(r"^[0-9]{1,19}$")
_TWITTER_EPOCH_MS = 1288834974657
# X's language codes that name no language: undetermined, no text, media/hashtags/cashtags only.
_NO_LANGUAGE = frozenset({"und", "zxx", "qam", "qct", "qht", "qme", "qst"})
# X still reports some languages by their withdrawn ISO 639 codes ("in" for Indonesian).
_CURRENT_CODE = {"in": "id", "iw": "he", "ji": "yi"}


@dataclass(frozen=True)
class Vocabulary:
    """How one generation of X's API names what carebot asks for."""

    name: str  # "posts" (current) | "tweets" (v2.159 and before)
    fields: str  # the query parameter of post fields
    references_expansion: str
    # Post fields carebot asks for; the current vocabulary has no author_id, in_reply_to_user_id or
    # references among its fields: they come with the expansions of the same names.
    mention_fields: tuple[str, ...]
    own_post_fields: tuple[str, ...]
    own_post_expansions: tuple[str, ...]

    @property
    def other(self) -> Vocabulary:
        return TWEETS if self is POSTS else POSTS

    def mention_params(self) -> dict[str, str]:
        expansions = ("author_id", self.references_expansion, "in_reply_to_user_id", "entities.mentions.username")
        return {
            self.fields: ",".join(self.mention_fields),
            "expansions": ",".join(expansions),
            "user.fields": "username,name,verified",
        }

    def own_post_params(self) -> dict[str, str]:
        params = {self.fields: ",".join(self.own_post_fields)}
        if self.own_post_expansions:
            params["expansions"] = ",".join(self.own_post_expansions)
        return params


_COMMON_FIELDS = ("created_at", "conversation_id", "entities", "lang", "display_text_range")
POSTS = Vocabulary(
    name="posts",
    fields="post.fields",
    references_expansion="referenced_posts",
    mention_fields=(*_COMMON_FIELDS, "note_post"),
    own_post_fields=("conversation_id", "created_at"),
    own_post_expansions=("referenced_posts",),
)
TWEETS = Vocabulary(
    name="tweets",
    fields="tweet.fields",
    references_expansion="referenced_tweets.id",
    mention_fields=(*_COMMON_FIELDS, "note_tweet", "author_id", "in_reply_to_user_id", "referenced_tweets"),
    own_post_fields=("referenced_tweets", "in_reply_to_user_id", "conversation_id", "created_at"),
    own_post_expansions=(),
)
VOCABULARIES = {v.name: v for v in (POSTS, TWEETS)}


def post_id_or_none(value: object) -> str | None:
    """`value` as an X post id, or None if it is not one."""
    text = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""
    return text if _POST_ID.match(text) else None


def references(post: Mapping[str, Any]) -> list[Any]:
    """The post's references to other posts, under either name."""
    for key in ("referenced_posts", "referenced_tweets"):
        found = post.get(key)
        if isinstance(found, list):
            return found
    return []


def included_posts(body: Mapping[str, Any]) -> list[Any]:
    """The posts an answer includes (quoted, answered), under either name."""
    includes = body.get("includes")
    if not isinstance(includes, dict):
        return []
    for key in ("posts", "tweets"):
        found = includes.get(key)
        if isinstance(found, list):
            return found
    return []


def replied_to(post: Mapping[str, Any]) -> str | None:
    """The id of the post `post` replies to, if it is a reply."""
    for ref in references(post):
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
    posts = _by_id(included_posts(body))
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
    author_id = _str_or_none(post.get("author_id")) or ""
    user = users.get(author_id, {})
    author = Author(
        id=author_id,
        handle=str(user.get("username") or author_id),
        display_name=str(user.get("name") or ""),
    )
    refs = _references(post, posts)
    answered = next((ref["id"] for ref in refs if ref["type"] == "replied_to"), None)
    mentioned = _mentioned(post)
    return Mention(
        platform="x",
        post_id=post_id,
        cursor=post_id,
        author=author,
        text=_text(post),
        created_at=_created_at(post, post_id),
        url=f"https://x.com/{author.handle}/status/{post_id}" if user.get("username") else None,
        in_reply_to_id=answered,
        in_reply_to_author_id=_str_or_none(post.get("in_reply_to_user_id")),
        conversation_id=_str_or_none(post.get("conversation_id")),
        visibility="public",
        language=_language(post.get("lang")),
        # X lets an automated account reply only to someone who addressed it: the brand must be
        # among the mentions the author wrote, not merely up the thread or in X's reply prefix.
        mentions_brand=addresses(post, brand_id, brand_username),
        extra={
            "author_verified": bool(user.get("verified", False)),
            "mentioned": mentioned,
            "referenced": refs,
            "quotes_brand": any(r["type"] == "quoted" and r["author_id"] == brand_id for r in refs),
        },
    )


def addresses(post: Mapping[str, Any], brand_id: str, brand_username: str | None) -> bool:
    """Whether the author of `post` wrote the brand's handle in it (not only X's reply prefix)."""
    brand = (brand_username or "").lower()
    shown_from = _display_start(post)
    for entities in (post.get("entities"), _note(post).get("entities")):
        found = entities.get("mentions") if isinstance(entities, dict) else None
        for entity in found if isinstance(found, list) else []:
            if not isinstance(entity, dict):
                continue
            names_brand = str(entity.get("username") or "").lower() == brand or str(entity.get("id") or "") == brand_id
            start = entity.get("start")
            written = not isinstance(start, int) or isinstance(start, bool) or start >= shown_from
            if names_brand and written:
                return True
    return False


def _display_start(post: Mapping[str, Any]) -> int:
    """Where the text the author wrote starts: after the handles X put in front of a reply."""
    shown = post.get("display_text_range")
    if (
        isinstance(shown, list)
        and len(shown) == 2
        and all(isinstance(i, int) and not isinstance(i, bool) for i in shown)
    ):
        return max(0, int(shown[0]))
    return 0


def _note(post: Mapping[str, Any]) -> Mapping[str, Any]:
    for key in ("note_post", "note_tweet"):
        note = post.get(key)
        if isinstance(note, dict):
            return note
    return {}


def _language(code: object) -> str | None:
    if not isinstance(code, str) or not code or code in _NO_LANGUAGE:
        return None
    return _CURRENT_CODE.get(code, code)


def _text(post: Mapping[str, Any]) -> str:
    note = _note(post)
    text = note.get("text") if note.get("text") else post.get("text")
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
    found = []
    for ref in references(post):
        if not isinstance(ref, dict) or post_id_or_none(ref.get("id")) is None:
            continue
        target = posts.get(str(ref["id"]), {})
        text = target.get("text")
        found.append(
            {
                "type": str(ref.get("type") or ""),
                "id": str(ref["id"]),
                "author_id": str(target.get("author_id") or ""),
                "text": html.unescape(text) if isinstance(text, str) else "",
            }
        )
    return found


def _by_id(items: object) -> dict[str, Mapping[str, Any]]:
    if not isinstance(items, list):
        return {}
    return {str(item["id"]): item for item in items if isinstance(item, dict) and "id" in item}


def _str_or_none(value: object) -> str | None:
    return str(value) if value not in (None, "") and not isinstance(value, bool | dict | list) else None
