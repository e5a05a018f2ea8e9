"""Plain values shared by the core: situations, languages, modes, actions, decisions, reply states."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

SITUATIONS: tuple[str, ...] = (
    "contact_request",
    "simple_question",
    "complaint",
    "price_question",
    "trolling",
    "other",
)
LANGUAGES: tuple[str, ...] = ("en", "ru", "id", "ar")


class Mode(StrEnum):
    AUTO = "auto"  # playbooks decide what goes out on its own
    APPROVE = "approve"  # every reply waits for a person
    DRY_RUN = "dry-run"  # decide and record, never post


class Action(StrEnum):
    REPLY = "reply"  # public reply (optionally followed by a direct message)
    RECORD = "record"  # keep for the team, say nothing
    IGNORE = "ignore"  # nothing to do


class ReplyState(StrEnum):
    DRAFTED = "drafted"  # decided but never to be sent (dry-run)
    PENDING = "pending"  # waiting for a person
    APPROVED = "approved"  # will be sent by the next cycle
    SENDING = "sending"  # an attempt started; outcome unknown until recorded
    SENT = "sent"
    FAILED = "failed"  # parked after too many tries; a person may retry
    REJECTED = "rejected"  # a person said no


class ReplyKind(StrEnum):
    PUBLIC = "public"
    DIRECT = "direct"


@dataclass(frozen=True)
class Decision:
    """What to do with one mention. Pure data: the router makes it, storage keeps it."""

    situation: str
    action: Action
    reason: str  # one line a person can read: why this action
    reply_text: str | None = None
    direct_text: str | None = None  # optional private message after the public reply
    template_id: str | None = None  # e.g. "complaint/ack/en/2": to avoid repeats per author
    needs_approval: bool = False
    urgent: bool = False
    priority: int = 0  # higher is more urgent in the approval queue
