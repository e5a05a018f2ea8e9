"""People's data over time: `storage.retention` and `carebot forget`.

After `storage.retention` (say 90 days) a public post's stored text keeps its words but not its personal
data (masked), and private messages, ours and theirs, lose their text; alert and set-aside excerpts go too.
`forget` erases one person on request (GDPR): their posts' texts and their identity on them, our replies
to them, their cases, the team's decisions about their posts. Both leave one audit line without the data.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from bot.classifier import mask_personal_data
from bot.clock import format_duration, now
from bot.config import Config
from bot.storage import Storage
from bot.storage.privacy import Erased

log = logging.getLogger("carebot.privacy")

BATCH = 500


def apply_retention(config: Config, storage: Storage, at: datetime | None = None) -> int:
    """Mask or erase what is older than `storage.retention`; how many stored texts changed."""
    retention = config.storage.retention
    if retention is None:
        return 0
    before = (at or now()) - timedelta(seconds=retention)
    changed = 0
    while True:
        due = storage.privacy.due_texts(before, limit=BATCH)
        texts = [(item, "" if item.private else mask_personal_data(item.text)) for item in due]
        changed += storage.privacy.apply_retention(before, texts, format_duration(retention))
        if len(due) < BATCH:
            break
    if changed:
        log.info("retention: %s stored texts older than %s masked or erased", changed, format_duration(retention))
    return changed


def forget(storage: Storage, handle: str, by: str, platform: str | None = None, apply: bool = True) -> Erased:
    """Erase one person's data (see `bot.storage.privacy.Privacy.forget`); logged without the handle."""
    erased = storage.privacy.forget(handle, by, platform=platform, apply=apply)
    if apply and (erased.posts or erased.cases or erased.set_aside):
        log.info("forget: one person's data erased on request by %s: %s", by, erased.summary())
    return erased
