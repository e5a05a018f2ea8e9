"""A Mastodon account's own config keys."""

from __future__ import annotations

from dataclasses import dataclass

from bot.setting import setting


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


@dataclass(frozen=True)
class MastodonOptions:
    """A Mastodon account's own keys in the config."""

    stream: bool = setting(
        False,
        doc="also listen to the notification stream: a mention is answered within a second instead of at the "
        "next poll (polling goes on, as the safety net and the fallback)",
        check=_flag,
    )
