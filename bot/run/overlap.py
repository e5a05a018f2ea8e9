"""Where a read of the mention stream starts: a little before the cursor, so nothing is lost at its edge.

A platform's ids are not commit order: on a busy server a post can become visible after a post with a
higher id was served, below a cursor that has already moved past it. So each read starts where the cursor
stood `overlap` seconds ago (the account's `overlap`, else its platform's `reread_overlap`) and reads
forward from there; posts already stored are skipped by their unique `(account, post_id)`, and the cursor
itself only ever moves forward.

Where the cursor stood is kept in `accounts.cursor_marks`: a few (time, cursor) pairs, one per tenth of
the overlap at most, from the newest one older than the overlap on. In a burst (more posts stored since a
mark than `MAX_REREAD_PAGES` pages hold) the read starts at a later mark, so the re-read costs a few
requests at most and never holds back new posts. And a process re-reads an account at most once per
tenth of the overlap (`reread_every`; its other reads start at the cursor): a late post is still read
within that, and a busy account polled every few seconds does not have the same pages re-read (and, on
Mastodon, each notification typed again by the client library) at every cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from bot.config import AccountConfig
from connectors import get_platform

Marks = list[list[str]]  # [[iso time, cursor], ...], oldest first
MAX_REREAD_PAGES = 2
MARK_SHARE = 0.1  # of the overlap: at most one mark, and one re-read per process, this often


def reread_every(overlap: float) -> timedelta:
    return timedelta(seconds=overlap * MARK_SHARE)


def overlap_of(account: AccountConfig) -> float:
    return account.overlap if account.overlap is not None else get_platform(account.platform).reread_overlap


def cursor_key(cursor: str) -> tuple[int, str]:
    """Stream positions in order: ids are decimal strings too long for a float, or fixed-width ULIDs."""
    return len(cursor), cursor


def later(cursor: str, than: str | None) -> bool:
    return than is None or cursor_key(cursor) > cursor_key(than)


def read_start(
    marks: Marks | None,
    cursor: str | None,
    overlap: float,
    at: datetime,
    too_many_since: Callable[[datetime], bool] = lambda _moment: False,
) -> str | None:
    """Where this read starts: the cursor as it stood `overlap` ago (as far back as the marks go), or at a
    later mark if `too_many_since` that moment (a burst: re-reading it all each cycle would cost the
    platform's budget and hold back the new posts)."""
    if cursor is None or overlap <= 0 or not marks:
        return cursor
    edge = at - timedelta(seconds=overlap)
    stamps = [datetime.fromisoformat(stamp) for stamp, _ in marks]
    older = [i for i, stamp in enumerate(stamps) if stamp <= edge]
    first = older[-1] if older else 0
    for i in range(first, len(marks)):
        if not too_many_since(stamps[i]):
            start = marks[i][1]
            return start if cursor_key(start) < cursor_key(cursor) else cursor
    return cursor


def marked(marks: Marks | None, cursor: str | None, overlap: float, at: datetime) -> Marks | None:
    """The marks with the cursor as it stands now added (at most one per tenth of the overlap), and the
    ones no read will start from again dropped. None when they would not change."""
    if cursor is None or overlap <= 0:
        return None
    kept = list(marks or [])
    if kept and datetime.fromisoformat(kept[-1][0]) > at - reread_every(overlap):
        return None
    kept.append([at.isoformat(), cursor])
    edge = at - timedelta(seconds=overlap)
    older = [i for i, (stamp, _) in enumerate(kept) if datetime.fromisoformat(stamp) <= edge]
    if older:
        kept = kept[older[-1] :]
    return kept
