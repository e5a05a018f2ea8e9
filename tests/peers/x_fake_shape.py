"""How the fake X shapes a post for an answer, in either of X's two vocabularies.

The fake keeps its posts in the older names (`referenced_tweets`, `note_tweet`, `edit_history_tweet_ids`);
an answer renames them when the fake plays a server of the current spec (v2.167: "post" for "tweet"). What
a request may ask for differs too, and a server that does not know a name refuses it (400), as X does, or,
when told to (`drops_unknown`), silently drops it, as the issue says some servers may.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Vocabulary:
    name: str  # "tweets" (v2.159 and before) | "posts" (v2.167)
    fields: str  # the query parameter listing the post fields
    field_names: frozenset[str]  # what that parameter may list (the ones the fake serves)
    expansions: frozenset[str]  # the expansions the fake serves
    renames: dict[str, str]  # stored key -> key in the answer
    includes: str  # the includes key of referenced posts
    # Fields this server gives only through an expansion of the same meaning (v2.167 lists no
    # author_id, in_reply_to_user_id or references among its post fields).
    by_expansion: dict[str, str]


TWEETS = Vocabulary(
    name="tweets",
    fields="tweet.fields",
    field_names=frozenset(
        {
            "author_id",
            "conversation_id",
            "created_at",
            "display_text_range",
            "entities",
            "in_reply_to_user_id",
            "lang",
            "note_tweet",
            "referenced_tweets",
            "edit_history_tweet_ids",
            "id",
            "text",
        }
    ),
    expansions=frozenset({"author_id", "referenced_tweets.id", "in_reply_to_user_id", "entities.mentions.username"}),
    renames={},
    includes="tweets",
    by_expansion={},
)

POSTS = Vocabulary(
    name="posts",
    fields="post.fields",
    field_names=frozenset(
        {"conversation_id", "created_at", "display_text_range", "entities", "lang", "note_post", "id", "text"}
    ),
    expansions=frozenset({"author_id", "referenced_posts", "in_reply_to_user_id", "entities.mentions.username"}),
    renames={
        "referenced_tweets": "referenced_posts",
        "note_tweet": "note_post",
        "edit_history_tweet_ids": "edit_history_post_ids",
    },
    includes="posts",
    by_expansion={
        "author_id": "author_id",
        "in_reply_to_user_id": "in_reply_to_user_id",
        "referenced_tweets": "referenced_posts",
    },
)

VOCABULARIES = {v.name: v for v in (TWEETS, POSTS)}
# Query parameters every post-listing endpoint takes, whatever the vocabulary.
COMMON_PARAMETERS = frozenset(
    {"since_id", "until_id", "max_results", "pagination_token", "next_token", "query", "user.fields", "expansions"}
)


def unknown_names(vocabulary: Vocabulary, query: dict[str, str]) -> list[str]:
    """The parameters and values in `query` this server does not know."""
    unknown = [name for name in query if name not in COMMON_PARAMETERS and name != vocabulary.fields]
    unknown += [
        f"{vocabulary.fields}={f}" for f in _listed(query, vocabulary.fields) if f not in vocabulary.field_names
    ]
    unknown += [f"expansions={e}" for e in _listed(query, "expansions") if e not in vocabulary.expansions]
    return unknown


def shaped(post: dict[str, Any], vocabulary: Vocabulary, query: dict[str, str]) -> dict[str, Any]:
    """`post` with the fields `query` asked for (and the default ones), named as `vocabulary` names them."""
    asked = set(_listed(query, vocabulary.fields)) & vocabulary.field_names
    expanded = set(_listed(query, "expansions"))
    stored_names = {vocabulary.renames.get(key, key): key for key in post}
    wanted = {"id", "text", "edit_history_tweet_ids"}
    for name in asked:
        wanted.add(stored_names.get(name, name))
    for stored, expansion in vocabulary.by_expansion.items():
        if expansion in expanded:
            wanted.add(stored)
    return {vocabulary.renames.get(key, key): value for key, value in post.items() if key in wanted}


def expands(vocabulary: Vocabulary, query: dict[str, str], what: str) -> bool:
    """Whether `query` asks to expand `what` ("author_id", "references", "in_reply_to_user_id", "mentions")."""
    names = {
        "author_id": "author_id",
        "references": "referenced_posts" if vocabulary.name == "posts" else "referenced_tweets.id",
        "in_reply_to_user_id": "in_reply_to_user_id",
        "mentions": "entities.mentions.username",
    }
    return names[what] in _listed(query, "expansions")


def _listed(query: dict[str, str], name: str) -> list[str]:
    return [item for item in query.get(name, "").split(",") if item]
