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


class CaseState(StrEnum):
    OPEN = "open"  # new: nobody has acted yet
    WAITING_ON_US = "waiting_on_us"  # the customer wrote; a person must act
    WAITING_ON_CUSTOMER = "waiting_on_customer"  # we answered; the ball is in their court
    RESOLVED = "resolved"  # a person (or the customer) says it is done; a check-back may follow
    CLOSED = "closed"  # over: a new post starts a new case


OPEN_STATES = frozenset({CaseState.OPEN.value, CaseState.WAITING_ON_US.value, CaseState.WAITING_ON_CUSTOMER.value})


class ReplyPurpose(StrEnum):
    ANSWER = "answer"  # the bot's answer to a mention (one per mention and kind)
    HOLDING = "holding"  # "we have your message; a person is on it" (at most one per case per period)
    TEAM = "team"  # a person's reply from the desk or the CLI
    CHECK_BACK = "check_back"  # "is everything working now?" after a person resolved the case
    INCIDENT = "incident"  # "the problem with ... is fixed", once to each member of a resolved incident


# What a person reading the queue or a case calls each (the bot's answer needs no label).
PURPOSE_LABELS = {
    ReplyPurpose.HOLDING.value: "holding reply",
    ReplyPurpose.TEAM.value: "a person's reply",
    ReplyPurpose.CHECK_BACK.value: "check-back",
    ReplyPurpose.INCIDENT.value: "incident: fixed-notice",
}

# Replies we send of our own accord, not answers to a customer who waits: waiting for approval, they are
# neither urgent nor as old as the customer's post (a check-back is queued a day after it, by design).
UNPROMPTED = frozenset({ReplyPurpose.CHECK_BACK.value, ReplyPurpose.INCIDENT.value})


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
