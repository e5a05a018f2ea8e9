"""What storage hands out: plain frozen records (accounts, mentions, replies, desk rows) and their row readers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.clock import as_utc
from bot.models import OPEN_STATES, UNPROMPTED, ReplyKind, ReplyState
from bot.storage.tables import mentions, replies
from connectors.base import Author, Mention


@dataclass(frozen=True)
class AccountState:
    name: str
    platform: str
    cursor: str | None
    paused_until: datetime | None
    pause_reason: str | None
    own_id: str | None
    own_handle: str | None
    max_characters: int | None
    requests: int
    posts_read: int
    posts_created: int
    last_cycle_at: datetime | None = None
    answer_since: datetime | None = None
    cursor_marks: list[list[str]] | None = None  # where the cursor stood lately (bot/run/overlap.py)


@dataclass(frozen=True)
class StoredSession:
    """A login to the approval desk (the token itself is never stored)."""

    user: str
    fingerprint: str
    csrf: str
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class StoredMention:
    id: int
    account: str
    mention: Mention
    lang: str
    situation: str
    confidence: float
    personal_data: list[dict[str, Any]]
    angry: bool
    action: str
    reason: str
    urgent: bool
    priority: int
    received_at: datetime
    case_id: int | None = None


@dataclass(frozen=True)
class StoredReply:
    id: int
    mention_id: int
    account: str
    kind: ReplyKind
    text: str
    template_id: str | None
    state: ReplyState
    idempotency_key: str
    platform_post_id: str | None
    attempts: int
    last_error: str | None
    reworded: bool
    decided_by: str
    approved_by: str | None
    rejected_reason: str | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None
    purpose: str = "answer"  # answer | holding | team | check_back | incident
    case_id: int | None = None
    target_post_id: str | None = None
    next_attempt_at: datetime | None = None
    outcome_unknown: bool = False  # an earlier attempt may have posted it: look it up before any new one

    @property
    def written_by(self) -> str:
        return "carebot" if self.decided_by == "auto" else self.decided_by

    @property
    def rejected_by(self) -> str | None:
        """`approved_by` holds whoever decided on it, the one who stopped it included."""
        return self.approved_by if self.state is ReplyState.REJECTED else None

    @property
    def who(self) -> str:
        """Whose words, and who let them go or stopped them: "carebot, rejected by ana", not "ana"."""
        decider = "carebot" if self.approved_by == "bot" else self.approved_by  # the outbox dropping it
        if decider is None or (decider == self.written_by and self.state is not ReplyState.REJECTED):
            return self.written_by
        verb = "rejected" if self.state is ReplyState.REJECTED else "approved"
        return f"{self.written_by}, {verb} by {decider}"


@dataclass(frozen=True)
class StoredCase:
    id: int
    account: str
    platform: str
    author_id: str
    author_handle: str
    lang: str
    situation: str
    state: str
    urgent: bool
    priority: int
    escalated: bool
    customer_replied: bool
    resolve_proposed: bool
    thread_deleted: bool
    assigned_to: str | None
    assigned_at: datetime | None
    opened_at: datetime
    updated_at: datetime
    last_customer_at: datetime
    first_auto_response_at: datetime | None
    first_human_response_at: datetime | None
    resolved_at: datetime | None
    resolved_by: str | None
    resolution_note: str | None
    resolutions: int
    check_back_due_at: datetime | None
    holding_sent_at: datetime | None
    closed_at: datetime | None
    incident_id: int | None = None

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def flags(self) -> tuple[str, ...]:
        """What a person should see at a glance; escalated and urgent only while the case is open (a
        resolved case that was escalated once is no longer anyone's emergency)."""
        flags = []
        if self.is_open and self.escalated:
            flags.append("escalated")
        elif self.is_open and self.urgent:
            flags.append("urgent")
        if self.customer_replied:
            flags.append("customer wrote")
        if self.resolve_proposed:
            flags.append("says it works now")
        return tuple(flags)


@dataclass(frozen=True)
class StoredIncident:
    id: int
    account: str
    topic: str
    state: str  # open | resolved | false_alarm | merged
    wording: dict[str, str]
    eta: str | None
    opened_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None
    note: str | None
    merged_into: int | None
    alerted_size: int


@dataclass(frozen=True)
class Reporter:
    """One complaint about a topic, for the incident detector."""

    mention_id: int
    case_id: int | None
    author_id: str
    lang: str
    at: datetime


@dataclass(frozen=True)
class CaseEvent:
    id: int
    case_id: int
    at: datetime
    kind: str
    actor: str
    text: str
    mention_id: int | None
    reply_id: int | None


@dataclass(frozen=True)
class CasePlan:
    """How a new mention joins the case book; storage applies it in the mention's own transaction."""

    case_id: int | None  # the case it joins; None opens a new one
    state: str  # the case's state afterwards
    reason: str  # one line for the case's history: why it joined (or opened)
    customer_replied: bool = False  # a post of theirs now waits for a person
    escalated: bool = False
    resolve_proposed: bool = False
    reopened: bool = False
    holding: bool = False  # the mention's reply is the case's holding reply
    incident_id: int | None = None  # the open incident the post is a report of


@dataclass(frozen=True)
class QueueItem:
    reply: StoredReply
    mention: StoredMention
    follow_up: StoredReply | None = None  # the private follow-up that goes out after a public reply

    @property
    def urgent(self) -> bool:
        """An urgent customer waits for this reply (a check-back or a fixed-notice is never urgent)."""
        return self.mention.urgent and self.reply.purpose not in UNPROMPTED

    @property
    def waiting_since(self) -> datetime:
        """Since when this waits: the customer's post (never later than we saw it), or, for a reply we send
        of our own accord, the reply itself."""
        if self.reply.purpose in UNPROMPTED:
            return self.reply.created_at
        return min(self.mention.mention.created_at, self.mention.received_at)


@dataclass(frozen=True)
class FollowUp:
    """What a person approving a public reply saw of its private follow-up: the text shown, and their edit."""

    reply_id: int
    shown: str
    text: str | None = None  # an edit; None approves the shown text as it is


@dataclass(frozen=True)
class AuthorHistory:
    opted_out: bool
    replies_last_hour: int
    last_template_id: str | None


@dataclass(frozen=True)
class Classified:
    """What the pipeline learned about a mention, as storage keeps it."""

    lang: str
    situation: str
    confidence: float
    scores: dict[str, float]
    personal_data: list[dict[str, Any]]
    angry: bool
    opt_out: bool


@dataclass(frozen=True)
class HistoryRow:
    reply_id: int
    state: str
    kind: str
    account: str
    platform: str
    author_handle: str
    situation: str
    lang: str
    post: str  # as stored: whoever shows it masks personal data
    text: str
    decided_by: str  # "auto" or the person who wrote the text
    approved_by: str | None  # who approved (or rejected); None when it went out on its own
    rejected_reason: str | None
    when: datetime
    platform_post_id: str | None


@dataclass(frozen=True)
class ThreadPost:
    author_handle: str
    text: str  # as stored: whoever shows it masks personal data (of the customers' posts)
    created_at: datetime
    ours: bool  # a reply the brand sent


@dataclass(frozen=True)
class DeskFigures:
    waiting_now: int  # posts (customers) with a reply waiting for a person, not replies
    oldest_wait: timedelta | None
    answered_today: int
    median_first_response: timedelta | None
    set_aside: int = 0  # posts that could not be read or stored (quarantine): a person should look


@dataclass(frozen=True)
class AlertDue:
    """A mention the team has not yet been told about, for one reason."""

    mention_id: int
    kind: str  # "urgent" | "waiting"
    account: str
    platform: str
    lang: str
    situation: str
    text: str  # as stored: the message masks it
    since: datetime  # when the wait started
    case_id: int | None = None


@dataclass(frozen=True)
class StoredAlert:
    id: int
    key: str
    kind: str
    account: str | None
    mention_id: int | None
    text: str
    excerpt: str | None
    since: datetime | None
    state: str
    attempts: int
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True)
class Decided:
    """A person's verdict on the bot's reading of one post."""

    id: int
    account: str
    mention_id: int | None
    lang: str
    label: str
    source: str
    text: str  # masked
    decided_by: str
    at: datetime


@dataclass(frozen=True)
class Activity:
    """What one account has done, for `carebot status`."""

    mentions: int
    replies_by_state: dict[str, int]


def account_record(row: Any) -> AccountState:
    return AccountState(
        name=row["name"],
        platform=row["platform"],
        cursor=row["cursor"],
        paused_until=row["paused_until"],
        pause_reason=row["pause_reason"],
        own_id=row["own_id"],
        own_handle=row["own_handle"],
        max_characters=row["max_characters"],
        requests=row["requests"] or 0,
        posts_read=row["posts_read"] or 0,
        posts_created=row["posts_created"] or 0,
        last_cycle_at=row["last_cycle_at"],
        answer_since=row["answer_since"],
        cursor_marks=row["cursor_marks"],
    )


def session_record(row: Any) -> StoredSession:
    return StoredSession(
        user=row["user"],
        fingerprint=row["fingerprint"],
        csrf=row["csrf"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
    )


def mention_record(row: Any) -> StoredMention:
    mention = Mention(
        platform=row["platform"],
        post_id=row["post_id"],
        cursor=row["cursor"],
        author=Author(row["author_id"], row["author_handle"], row["author_name"], row["author_is_bot"]),
        text=row["text"],
        created_at=row["created_at"],
        url=row["url"],
        in_reply_to_id=row["in_reply_to_id"],
        in_reply_to_author_id=row["in_reply_to_author_id"],
        conversation_id=row["conversation_id"],
        visibility=row["visibility"],
        mentions_brand=row["mentions_brand"],
    )
    return StoredMention(
        id=row["id"],
        account=row["account"],
        mention=mention,
        lang=row["lang"],
        situation=row["situation"],
        confidence=row["confidence"],
        personal_data=list(row["personal_data"] or []),
        angry=row["angry"],
        action=row["action"],
        reason=row["reason"],
        urgent=row["urgent"],
        priority=row["priority"],
        received_at=row["received_at"],
        case_id=row["case_id"],
    )


def reply_record(row: Any) -> StoredReply:
    return StoredReply(
        id=row["id"],
        mention_id=row["mention_id"],
        account=row["account"],
        kind=ReplyKind(row["kind"]),
        text=row["text"],
        template_id=row["template_id"],
        state=ReplyState(row["state"]),
        idempotency_key=row["idempotency_key"],
        platform_post_id=row["platform_post_id"],
        attempts=row["attempts"],
        last_error=row["last_error"],
        reworded=row["reworded"],
        decided_by=row["decided_by"],
        approved_by=row["approved_by"],
        rejected_reason=row["rejected_reason"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        sent_at=row["sent_at"],
        purpose=row["purpose"],
        case_id=row["case_id"],
        target_post_id=row["target_post_id"],
        next_attempt_at=row["next_attempt_at"],
        outcome_unknown=bool(row["outcome_unknown"]),
    )


def queue_item_record(row: Any) -> QueueItem:
    values = row._mapping
    reply_values = {c.name: values[replies.c[c.name]] for c in replies.columns}
    mention_values = {c.name: values[mentions.c[c.name]] for c in mentions.columns}
    return QueueItem(reply_record(reply_values), mention_record(mention_values))


def history_record(row: Any) -> HistoryRow:
    return HistoryRow(
        reply_id=row["id"],
        state=row["state"],
        kind=row["kind"],
        account=row["account"],
        platform=row["platform"],
        author_handle=row["author_handle"],
        situation=row["situation"],
        lang=row["lang"],
        post=row["post"],
        text=row["text"],
        decided_by=row["decided_by"],
        approved_by=row["approved_by"],
        rejected_reason=row["rejected_reason"],
        when=as_utc(row["sent_at"] or row["updated_at"]),
        platform_post_id=row["platform_post_id"],
    )


def alert_record(row: Any) -> StoredAlert:
    return StoredAlert(
        id=row["id"],
        key=row["key"],
        kind=row["kind"],
        account=row["account"],
        mention_id=row["mention_id"],
        text=row["text"],
        excerpt=row["excerpt"],
        since=row["since"],
        state=row["state"],
        attempts=row["attempts"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        delivered_at=row["delivered_at"],
    )


def case_record(row: Any) -> StoredCase:
    return StoredCase(**{f: row[f] for f in StoredCase.__dataclass_fields__})


def case_event_record(row: Any) -> CaseEvent:
    return CaseEvent(**{f: row[f] for f in CaseEvent.__dataclass_fields__})


def incident_record(row: Any) -> StoredIncident:
    values = {f: row[f] for f in StoredIncident.__dataclass_fields__}
    values["wording"] = dict(values["wording"] or {})
    return StoredIncident(**values)
