"""Incidents in the running bot: many people reporting the same problem at once (docs/GUIDE.md, principle 6).

A complaint's *topics* are the problems of `playbooks/incident.yaml` its words name (login, payments, the
app, ... in all four languages, so a Russian and an English report of one outage share a topic). When
`incidents.min_reports` different people report one topic within `incidents.window`, their cases form an
incident and the team is alerted once (and again each time it doubles). While it is open, every new report
of it gets the incident reply (one consistent answer, no request for details), unless the post is personal
(personal data, payments): that one keeps its private hand-off and joins all the same. When the team
resolves it, each member is told once, in the thread of their post, spread under the platform's posting
limit; on X the notifications wait for one bulk approval (an unprompted automated reply breaks X's rules).
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.classifier import Classification
from bot.clock import format_duration, now
from bot.config import AccountConfig, Config
from bot.decide.playbooks import MessagePlaybook, Playbooks
from bot.decide.router import Context, Pick, draft_message
from bot.models import Action, CaseState, Decision, Mode, ReplyKind, ReplyPurpose, ReplyState
from bot.run.alerts import raise_alert
from bot.run.cases import take_back_drafts
from bot.run.context import router_context
from bot.storage import Conflict, Storage
from bot.storage.incidents import FALSE_ALARM, RESOLVED
from bot.storage.records import StoredIncident
from connectors import get_platform
from connectors.base import Mention

log = logging.getLogger("carebot.incidents")

PERSONAL_TOPICS = frozenset({"payment"})  # billing is personal: the private hand-off stays
ANSWERED = ("complaint", "simple_question")  # reports and questions about an open incident get its answer


def topics_of(playbooks: Playbooks, text: str) -> tuple[str, ...]:
    incident = playbooks.messages.get("incident")
    if incident is None:
        return ()
    return tuple(name for name, topic in incident.topics.items() if topic.words.search(text))


def reading(
    storage: Storage, playbooks: Playbooks, account: str, mention: Mention, result: Classification
) -> tuple[tuple[str, ...], StoredIncident | None]:
    """A complaint's topics (what the detector counts), and the open incident the post reports (None if
    none): a complaint, or a question about the problem ("is login down for everyone?")."""
    if result.situation not in ANSWERED:
        return (), None
    topics = topics_of(playbooks, mention.text)
    incident = storage.incidents.open_for(account, topics)
    return (topics if result.situation == "complaint" else ()), incident


def wording(playbooks: Playbooks, incident: StoredIncident, lang: str) -> str:
    """The public words for the incident's topic: the team's, else the playbook's label."""
    if incident.wording.get(lang):
        return incident.wording[lang]
    message = playbooks.messages.get("incident")
    topic = message.topics.get(incident.topic) if message else None
    if topic is None:
        return incident.topic
    return topic.label.get(lang) or topic.label.get("en") or incident.topic


def _values(
    playbooks: Playbooks, incident: StoredIncident, message: MessagePlaybook
) -> Callable[[str], Mapping[str, str]]:
    def extra(lang: str) -> Mapping[str, str]:
        eta = ""
        if incident.eta and message.eta.get(lang):
            eta = message.eta[lang].replace("{time}", incident.eta)
        return {"topic": wording(playbooks, incident, lang), "eta": eta}

    return extra


def incident_reply(
    decision: Decision,
    mention: Mention,
    result: Classification,
    playbooks: Playbooks,
    ctx: Context,
    incident: StoredIncident,
    topics: Sequence[str],
) -> Decision:
    """The incident's one consistent answer instead of the complaint's hand-off, where it fits."""
    message = playbooks.messages.get("incident")
    personal = bool(result.personal_data) or bool(PERSONAL_TOPICS & set(topics))
    if message is None or decision.action is not Action.REPLY or personal or decision.situation not in ANSWERED:
        return decision
    pick = draft_message(message, result.lang, mention, ctx, "incident", _values(playbooks, incident, message))
    if not isinstance(pick, Pick) or pick.doubt is not None:
        return decision
    return dataclasses.replace(
        decision,
        reason=f"{decision.reason}; a report of incident #{incident.id} ({incident.topic}): the incident's answer",
        reply_text=pick.text,
        direct_text=None,  # nothing to ask: the team knows what is wrong
        template_id=pick.template_id,
    )


# --- detection ----------------------------------------------------------------------------------------


def detect(config: Config, storage: Storage, account: str, topics: Sequence[str], at: datetime | None = None) -> None:
    """After a complaint is stored: open an incident when enough people reported its topic lately, or
    tell the team when an open one has doubled. Database work only."""
    at = at or now()
    settings = config.incidents
    since = at - timedelta(seconds=settings.window)
    incident = storage.incidents.open_for(account, topics)
    if incident is not None:
        _growth(storage, incident)
        return  # a report of an open incident: its other words ("the app" of "the app won't log me in") open none
    for topic in topics:
        if not storage.incidents.enough_reporters(account, topic, since, settings.min_reports):
            continue
        # Only the people whose cases are in no incident yet count: an incident takes in the cases that
        # are free, and the same people reporting a second problem ("the app" of "can't log in to the
        # app") would otherwise open an incident of nobody.
        reporters = storage.incidents.reporters(account, topic, since)
        people = {r.author_id for r in reporters}
        if len(people) < settings.min_reports:
            continue
        cases = sorted({r.case_id for r in reporters if r.case_id is not None})
        langs = Counter(r.lang for r in reporters)
        why = (
            f"{len(people)} people reported {topic} within "
            f"{format_duration(settings.window)} ({', '.join(f'{n} {lang}' for lang, n in langs.most_common())})"
        )
        opened = storage.incidents.open(account, topic, cases, at, why)
        if opened is None:
            continue  # another worker opened it first, or took its cases into another
        log.warning("%s: incident #%s opened: %s", account, opened.id, why)
        raise_alert(
            storage,
            key=f"incident:{opened.id}:opened",
            kind="incident",
            account=account,
            text=f"incident #{opened.id} ({account}): {why}; newcomers get one consistent answer",
            at=at,
        )
        return  # this report's case is in that incident now


def _growth(storage: Storage, incident: StoredIncident) -> None:
    """One more alert each time the incident doubles: the team hears that it grows, never a storm."""
    size = storage.incidents.size(incident.id)
    if size < 2 * max(incident.alerted_size, 1) or not storage.incidents.grew(incident.id, size, incident.alerted_size):
        return
    raise_alert(
        storage,
        key=f"incident:{incident.id}:size:{size}",
        kind="incident",
        account=incident.account,
        text=f"incident #{incident.id} ({incident.account}, {incident.topic}) has grown to {size} people",
    )


# --- the team's actions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Drain:
    """The fixed-notifications of a resolved incident and how far they have gone out."""

    total: int
    sent: int
    waiting_approval: int
    skipped: int  # opted out, or their case was resolved otherwise
    expected_end: datetime | None

    @property
    def done(self) -> bool:
        return self.sent + self.skipped >= self.total


def resolve_incident(
    config: Config, storage: Storage, playbooks: Playbooks, incident_id: int, by: str, note: str | None = None
) -> Drain:
    """Resolved: each member is told once, in the thread of their post, spread under the posting limit."""
    at = now()
    incident = storage.incidents.close(incident_id, RESOLVED, by, note, at)
    account = config.account(incident.account)
    message = playbooks.messages.get("incident")
    if message is None:
        return drain(storage, incident_id)
    spacing = timedelta(seconds=3600.0 / config.incidents.notify_per_hour)
    platform = get_platform(account.platform)
    state = _notice_state(account, platform.automated_direct_messages)
    queued = 0
    for case in storage.incidents.members(incident_id):
        if case.state in (CaseState.RESOLVED.value, CaseState.CLOSED.value):
            storage.incidents.add_event(incident_id, "skipped", "bot", "resolved otherwise", case_id=case.id)
            continue
        posts = storage.cases.posts(case.id)
        if not posts:
            continue
        latest = posts[-1]
        history = storage.mentions.author_history(latest.mention.platform, latest.mention.author.id)
        if history.opted_out:
            storage.incidents.add_event(incident_id, "skipped", "bot", "the customer opted out", case_id=case.id)
            continue
        context = router_context(config, storage, storage.accounts.get(account.name), latest.mention)
        values = _values(playbooks, incident, message)
        pick = draft_message(message, case.lang, latest.mention, context, "fixed", values)
        if not isinstance(pick, Pick):
            storage.incidents.add_event(incident_id, "skipped", "bot", f"no message fits: {pick}", case_id=case.id)
            continue
        take_back_drafts(storage, case.id, f"superseded: incident #{incident_id} is fixed, and the customer is told so")
        reply = storage.cases.add_reply(
            case.id,
            kind=ReplyKind.PUBLIC,
            purpose=ReplyPurpose.INCIDENT,
            text=pick.text,
            by="auto",
            state=state,
            dedupe_key=f"incident:{incident_id}:case:{case.id}",
            template_id=pick.template_id,
            event_text=f"incident #{incident_id} is fixed: told once",
            not_before=at + queued * spacing,
        )
        queued += reply is not None
    log.info("incident #%s resolved by %s: %s fixed-notifications queued", incident_id, by, queued)
    return drain(storage, incident_id)


def _notice_state(account: AccountConfig, automated_allowed: bool) -> ReplyState:
    if account.mode is Mode.DRY_RUN:
        return ReplyState.DRAFTED
    if account.mode is Mode.APPROVE or not automated_allowed:
        return ReplyState.PENDING  # on X: one bulk approval, `carebot incidents approve` or the desk
    return ReplyState.APPROVED


def drain(storage: Storage, incident_id: int) -> Drain:
    """How far the fixed-notifications have gone out, and when the last is due."""
    notices = [
        r
        for case in storage.incidents.members(incident_id)
        for r in storage.cases.replies(case.id)
        if r.purpose == ReplyPurpose.INCIDENT.value
    ]
    skipped = sum(1 for e in storage.incidents.events(incident_id) if e.kind == "skipped")
    due = [r.next_attempt_at for r in notices if r.state is ReplyState.APPROVED and r.next_attempt_at]
    return Drain(
        total=len(notices) + skipped,
        sent=sum(1 for r in notices if r.state is ReplyState.SENT),
        waiting_approval=sum(1 for r in notices if r.state is ReplyState.PENDING),
        skipped=skipped,
        expected_end=max(due) if due else None,
    )


def approve_notifications(storage: Storage, incident_id: int, by: str) -> int:
    """Approve every fixed-notification of the incident waiting for a person (one click for the batch).
    NotFound for no such incident; Conflict before it is resolved (resolving is what makes them)."""
    incident = storage.incidents.get(incident_id)
    if incident.state != RESOLVED:
        state = incident.state.replace("_", " ")
        raise Conflict(f"incident {incident_id} is {state}: it has fixed-notifications to approve once resolved")
    approved = 0
    for case in storage.incidents.members(incident_id):
        for reply in storage.cases.replies(case.id):
            if reply.purpose == ReplyPurpose.INCIDENT.value and reply.state is ReplyState.PENDING:
                storage.replies.approve(reply.id, by)
                approved += 1
    storage.incidents.add_event(incident_id, "approved", by, f"{approved} fixed-notifications")
    return approved


def false_alarm(storage: Storage, incident_id: int, by: str, note: str | None = None) -> StoredIncident:
    """Not one problem after all: closed, its members keep their own cases, nobody is notified."""
    return storage.incidents.close(incident_id, FALSE_ALARM, by, note, now())


@dataclass(frozen=True)
class Summary:
    """A short machine summary of an incident: topic, people, languages, first and last report."""

    id: int
    account: str
    topic: str
    state: str
    wording: dict[str, str]  # lang -> the public words in use
    people: int
    languages: dict[str, int]
    first_report: datetime | None
    last_report: datetime | None
    eta: str | None

    def as_json(self) -> dict[str, object]:
        data = dataclasses.asdict(self)
        for key in ("first_report", "last_report"):
            data[key] = data[key].isoformat() if data[key] else None
        return data


def summary(storage: Storage, playbooks: Playbooks, incident: StoredIncident) -> Summary:
    members = storage.incidents.members(incident.id)
    langs = Counter(c.lang for c in members)
    reported = [c.opened_at for c in members] + [c.last_customer_at for c in members]
    return Summary(
        id=incident.id,
        account=incident.account,
        topic=incident.topic,
        state=incident.state,
        wording={lang: wording(playbooks, incident, lang) for lang in sorted(langs)},
        people=len(members),
        languages=dict(langs.most_common()),
        first_report=min(reported) if reported else None,
        last_report=max(reported) if reported else None,
        eta=incident.eta,
    )
