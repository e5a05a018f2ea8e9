"""Posts that cannot be read or stored are set aside, not fatal: recorded once (raw id, why, a masked
excerpt), the team alerted once, and the stream moves on. A person finds them in `carebot status` and the
desk; the post itself can still be answered by hand on the platform.
"""

from __future__ import annotations

import logging

from bot.classifier import mask_personal_data
from bot.config import AccountConfig
from bot.run.alerts import raise_alert
from bot.storage import Storage
from connectors.base import Mention, Unreadable

log = logging.getLogger("carebot.quarantine")

EXCERPT = 200  # characters of the masked post kept


def one_line(text: str, limit: int = 100) -> str:
    """`text` safe for one log line or a stored label: no lone surrogates, no control characters (no
    forged log lines), at most `limit` characters."""
    clean = text.encode("utf-8", "replace").decode("utf-8")
    clean = " ".join("".join(ch if ch.isprintable() else " " for ch in clean).split())
    return clean if len(clean) <= limit else clean[: limit - 1].rstrip() + "…"


def safe_excerpt(text: str) -> str:
    """The post's text on one line, storable, personal data masked, at most EXCERPT characters."""
    return one_line(mask_personal_data(one_line(text, 10 * EXCERPT)), EXCERPT)


def set_aside(
    storage: Storage,
    account: AccountConfig,
    *,
    post_id: str,
    cursor: str | None,
    stage: str,
    reason: str,
    text: str,
    author_handle: str = "",
) -> bool:
    """Record the post as set aside and tell the team, once; False if it was set aside before."""
    reason = safe_excerpt(reason)
    added = storage.quarantine.add(
        account=account.name,
        platform=account.platform,
        post_id=post_id,
        cursor=cursor,
        stage=stage,
        reason=reason,
        excerpt=safe_excerpt(text),
        author_handle=author_handle,
    )
    if not added:
        return False
    shown = one_line(post_id)
    log.warning("%s: post %s set aside, not answered: %s", account.name, shown, reason)
    raise_alert(
        storage,
        key=f"quarantine:{account.name}:{shown}"[:300],
        kind="quarantine",
        account=account.name,
        text=(
            f"{account.name}: post {shown} could not be {'read' if stage == 'read' else 'handled'} and was set "
            f"aside, not answered ({reason}). It is listed in `carebot status`; answer it on the platform if it "
            "needs an answer."
        ),
    )
    return True


def set_aside_unreadable(storage: Storage, account: AccountConfig, item: Unreadable) -> bool:
    return set_aside(
        storage,
        account,
        post_id=item.post_id,
        cursor=item.cursor,
        stage="read",
        reason=item.reason,
        text=item.excerpt,
        author_handle=item.author_handle,
    )


def set_aside_mention(storage: Storage, account: AccountConfig, mention: Mention, stage: str, reason: str) -> bool:
    return set_aside(
        storage,
        account,
        post_id=mention.post_id,
        cursor=mention.cursor,
        stage=stage,
        reason=reason,
        text=mention.text,
        author_handle=mention.author.handle,
    )
