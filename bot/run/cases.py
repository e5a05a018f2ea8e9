"""Cases in the running bot: which case a new post joins, what the bot does inside a case, and the timers.

A case is one customer's problem on one account (`storage.cases`). A new post joins the case whose thread
or conversation it is in, or its author's open case within `cases.join_window`; otherwise it opens one
(trolling, bots, opt-outs and chatter open none). Inside a case that already had the bot's hand-off, the
post goes to the team (`bot/decide/follow_up.py`). Each cycle, `sweep` sends the check-backs that are due,
alerts the team about targets about to be missed or missed, and closes what is done.
"""

from __future__ import annotations

import logging
import re
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.classifier import Classification
from bot.clock import format_duration, now
from bot.config import AccountConfig, Config
from bot.decide.follow_up import CaseFacts, follow_up
from bot.decide.playbooks import Playbooks
from bot.decide.router import Context, Pick, decide, draft_message
from bot.models import Action, CaseState, Decision, Mode, ReplyKind, ReplyPurpose, ReplyState
from bot.run.alerts import excerpt, raise_alert
from bot.run.case_figures import first_response
from bot.run.context import check_public_words, check_text, router_context
from bot.storage import Conflict, Storage
from bot.storage.alerts import CASE, ESCALATION
from bot.storage.records import AccountState, CasePlan, StoredCase, StoredMention, StoredReply
from connectors import get_platform
from connectors.base import Mention

log = logging.getLogger("carebot.cases")

HANDED_OFF = (ReplyState.PENDING, ReplyState.APPROVED, ReplyState.SENDING, ReplyState.SENT, ReplyState.FAILED)
SOON = 0.25  # a target is "about to be missed" in its last quarter
SOON_AT_MOST = timedelta(minutes=30)


def decide_in_case(
    config: Config,
    storage: Storage,
    playbooks: Playbooks,
    account: AccountConfig,
    mention: Mention,
    result: Classification,
    context: Context,
    at: datetime | None = None,
) -> tuple[Decision, CasePlan | None]:
    """The decision for a new post and how it joins the case book (None: it belongs to no case)."""
    at = at or now()
    settings = config.cases
    match = storage.cases.find_for(account.name, mention, window=timedelta(seconds=settings.join_window), at=at)
    case = match.case if match else None
    if case is not None and (mention.visibility == "direct" or _handed_off(storage, case)):
        holding_allowed = case.holding_sent_at is None or at - case.holding_sent_at >= timedelta(
            seconds=settings.holding_every
        )
        facts = CaseFacts(case.id, case.urgent, case.priority, holding_allowed)
        outcome = follow_up(mention, result, playbooks, context, facts)
        if outcome.decision.action is Action.IGNORE:
            return outcome.decision, None
        resolved_now = outcome.says_resolved and settings.on_thanks == "resolve"
        was_resolved = case.state == CaseState.RESOLVED.value
        if resolved_now:
            state = CaseState.RESOLVED.value
        elif outcome.says_resolved:
            state = case.state  # a person confirms; nothing waits on us meanwhile
        else:
            state = CaseState.WAITING_ON_US.value
        plan = CasePlan(
            case_id=case.id,
            state=state,
            reason=match.reason if match else "",
            customer_replied=not outcome.says_resolved,
            escalated=outcome.escalated,
            resolve_proposed=outcome.says_resolved and not resolved_now,
            reopened=was_resolved and state != CaseState.RESOLVED.value,
            holding=outcome.decision.action is Action.REPLY,
        )
        return outcome.decision, plan
    decision = decide(mention, result, playbooks, context)
    if decision.action is Action.IGNORE:
        return decision, None
    if case is not None:
        reopened = case.state == CaseState.RESOLVED.value
        plan = CasePlan(case.id, CaseState.WAITING_ON_US.value, match.reason if match else "", True, reopened=reopened)
        return decision, plan
    if decision.action is not Action.REPLY and not decision.needs_approval and result.situation != "complaint":
        # Trolling, a bot, an opt-out, chatter that does not address the brand: recorded, nobody's
        # problem to follow.
        return decision, None
    return decision, CasePlan(None, _first_state(decision, result, account), "opened by this post")


def _first_state(decision: Decision, result: Classification, account: AccountConfig) -> str:
    """A case starts waiting on us unless the bot's own answer covers it (a question, a thank-you)."""
    answered = decision.action is Action.REPLY and not decision.needs_approval and account.mode is Mode.AUTO
    if answered and result.situation != "complaint":
        return CaseState.WAITING_ON_CUSTOMER.value
    return CaseState.OPEN.value


def _handed_off(storage: Storage, case: StoredCase) -> bool:
    """The bot already answered in this case (its canned hand-off is done or on its way)."""
    return any(r.purpose == ReplyPurpose.ANSWER.value and r.state in HANDED_OFF for r in storage.cases.replies(case.id))


def after_recording(storage: Storage, account: AccountConfig, mention_id: int, plan: CasePlan | None) -> None:
    """Tell the team when a customer writes again in a case: once per post, escalations said as such."""
    if plan is None or plan.case_id is None or not (plan.customer_replied or plan.resolve_proposed):
        return
    stored = storage.mentions.get(mention_id)
    if plan.escalated:
        what = "wrote again and says nobody answered: escalated"
    elif plan.resolve_proposed:
        what = "says it works now: confirm and resolve"
    else:
        what = "wrote again"
    text = f"case #{plan.case_id} ({account.name}, {stored.lang}, {stored.situation}): the customer {what}"
    raise_alert(
        storage,
        key=f"case:{plan.case_id}:post:{mention_id}",
        kind=ESCALATION if plan.escalated else CASE,
        account=account.name,
        text=f"{text}: “{excerpt(stored.mention.text)}”",
        mention_id=mention_id,
    )


# --- what people do in a case ---------------------------------------------------------------------


def team_reply(
    config: Config,
    storage: Storage,
    case_id: int,
    text: str,
    by: str,
    *,
    private: bool,
    request_key: str,
    seen_reply: int | None = None,
) -> StoredReply:
    """A person's reply in a case, public or private, through the outbox like any reply (exactly once).

    `request_key` names this one request (the desk's form, the CLI call): the same key twice makes one
    reply. ValueError if the text is empty or too long, or the platform takes no private messages.
    `seen_reply`: the newest reply of the case the person had in front of them (the desk's page); a new
    request after a colleague's later reply is a Conflict.
    """
    key = f"team:{case_id}:{request_key}"
    if seen_reply is not None and storage.cases.reply_with_key(key) is None:
        # Two people on one case, both answering from the page they had open: the second reply went out too.
        newer = [
            r
            for r in storage.cases.replies(case_id)
            if r.id > seen_reply and r.purpose == ReplyPurpose.TEAM.value and r.decided_by != by
        ]
        if newer:
            last = newer[-1]
            raise Conflict(
                f"{last.decided_by} replied meanwhile (#{last.id}): read it, then send yours if it still fits"
            )
    case = storage.cases.get(case_id)
    account = config.account(case.account)
    if private and not get_platform(case.platform).automated_direct_messages:
        raise ValueError(f"carebot sends no private messages on {case.platform}: reply publicly")
    words = text.strip()
    handle = f"@{case.author_handle}"
    # A handle that is not the platform's syntax is never written into a post: the person's words go alone.
    addressable = get_platform(case.platform).valid_handle(case.author_handle)
    if words and addressable and not re.search(rf"(?<![\w@]){re.escape(handle)}(?![\w@.-])", words, re.IGNORECASE):
        words = f"{handle} {words}"  # the platform shows and notifies only the people a post names
    check_text(storage, case.account, case.platform, words)
    if not private:
        check_public_words(config.brand, words, [m.mention.text for m in storage.cases.posts(case_id)])
    state = ReplyState.DRAFTED if account.mode is Mode.DRY_RUN else ReplyState.APPROVED
    reply = storage.cases.add_reply(
        case_id,
        kind=ReplyKind.DIRECT if private else ReplyKind.PUBLIC,
        purpose=ReplyPurpose.TEAM,
        text=words,
        by=by,
        state=state,
        dedupe_key=key,
    )
    if reply is None:
        made = storage.cases.reply_with_key(key)  # this very request, made before
        assert made is not None, "add_reply found the key taken"
        if made.text != words:  # the same form sent again with its words changed: they would be lost unseen
            raise Conflict(f"this form was sent already, with other words (reply #{made.id}): reload the case")
        return made
    take_back_drafts(storage, case_id, f"superseded: {by} answered the case")
    if case.check_back_due_at is not None:  # "is it working now?" after a person just wrote to them: twice
        storage.cases.check_back_done(case_id, f"not sent: {by} wrote to the customer after it was resolved")
    return reply


def take_back_drafts(storage: Storage, case_id: int, why: str) -> None:
    """Reject the bot's drafts in the case that still wait for a person, with `why`: once a person has
    answered, or an incident's fix is announced, approving one ("send us the details", "we know, we're on
    it") would answer twice or say the opposite. A person's own words are theirs to take back."""
    for reply in storage.cases.replies(case_id):
        if reply.state is ReplyState.PENDING and reply.decided_by == "auto":
            with suppress(Conflict):  # a person approved or rejected it meanwhile: theirs
                storage.replies.reject(reply.id, "bot", why)


NOTE_LIMIT = 2000  # characters: the desk's field holds as many


def add_note(storage: Storage, case_id: int, by: str, text: str) -> None:
    """An internal note in the case's history, from the desk or the command line. ValueError for an empty
    note or a longer one (cut, it would lose its end unseen); NotFound for no such case."""
    text = text.strip()
    if not text:
        raise ValueError("the note is empty")
    if len(text) > NOTE_LIMIT:
        raise ValueError(f"the note has {len(text):,} characters; at most {NOTE_LIMIT:,}")
    storage.cases.get(case_id)
    storage.cases.add_event(case_id, "note", by, text)


def give_case(config: Config, storage: Storage, case_id: int, to: str, by: str) -> StoredCase:
    """Hand the case to `to`. Where the desk has its users (web.users), a name it does not know, or one who
    may not act on the case's account (web.access), is refused: the case would sit with nobody who can
    open it, while the lists said someone was on it."""
    web = config.web
    if web.users:
        known = set(web.users) | ({"admin"} if web.admin_token else set())
        if to not in known:
            names = ", ".join(sorted(known))
            raise ValueError(f"nobody called {to!r} logs in to the desk (web.users: {names}; yourself: --by NAME)")
        allowed = web.access.get(to)
        account = storage.cases.get(case_id).account
        if allowed is not None and account not in allowed:
            raise ValueError(f"{to} may not act on {account} (web.access), so cannot take this case")
    return storage.cases.assign(case_id, to, by)


def resolve_case(config: Config, storage: Storage, case_id: int, by: str, note: str | None = None) -> StoredCase:
    """Resolved by a person; the check-back falls due `cases.check_back_after` later (if on)."""
    settings = config.cases
    check_back_at = now() + timedelta(seconds=settings.check_back_after) if settings.check_back else None
    return storage.cases.resolve(case_id, by, note, check_back_at)


# --- timers ---------------------------------------------------------------------------------------


@dataclass
class SweepReport:
    check_backs: int = 0
    alerts: int = 0
    closed: int = 0


def sweep(
    config: Config, storage: Storage, playbooks: Playbooks, account: AccountConfig, at: datetime | None = None
) -> SweepReport:
    """Check-backs that are due, targets about to be missed or missed, cases done with. Database work only."""
    at = at or now()
    report = SweepReport()
    state = storage.accounts.get(account.name)
    for case in storage.cases.due_check_backs(at):
        if case.account == account.name:
            report.check_backs += _check_back(config, storage, playbooks, account, state, case)
    for case in storage.cases.open_cases(account.name):
        report.alerts += _target_alerts(config, storage, case, at)
        if _idle(config, case, at) and storage.cases.set_state(
            case.id,
            CaseState.CLOSED.value,
            "bot",
            f"no news from the customer in {format_duration(config.cases.idle_close_after)}",
            expected=[CaseState.WAITING_ON_CUSTOMER.value],
            closed_at=at,
        ):
            report.closed += 1
    for case in storage.cases.listed(states=[CaseState.RESOLVED.value], account=account.name, limit=10_000):
        done = case.resolved_at is not None and at - case.resolved_at >= timedelta(seconds=config.cases.close_after)
        if (
            done
            and case.check_back_due_at is None
            and storage.cases.set_state(
                case.id,
                CaseState.CLOSED.value,
                "bot",
                f"resolved {format_duration(config.cases.close_after)} ago, no new post since",
                expected=[CaseState.RESOLVED.value],
                closed_at=at,
            )
        ):
            report.closed += 1
    return report


def _idle(config: Config, case: StoredCase, at: datetime) -> bool:
    if case.state != CaseState.WAITING_ON_CUSTOMER.value:
        return False
    quiet = at - max(case.last_customer_at, case.updated_at) >= timedelta(seconds=config.cases.idle_close_after)
    unanswered_complaint = case.situation == "complaint" and case.first_human_response_at is None
    return quiet and not unanswered_complaint


def _check_back(
    config: Config,
    storage: Storage,
    playbooks: Playbooks,
    account: AccountConfig,
    state: AccountState | None,
    case: StoredCase,
) -> int:
    """Queue the case's one check-back for this resolution; 1 if queued."""
    posts = storage.cases.posts(case.id)
    if not posts:
        storage.cases.check_back_done(case.id, "not sent: the case has no post to answer")
        return 0
    latest = posts[-1]
    history = storage.mentions.author_history(latest.mention.platform, latest.mention.author.id)
    if history.opted_out:
        storage.cases.check_back_done(case.id, "not sent: the customer asked for no automated replies")
        return 0
    if case.resolved_at is not None and case.last_customer_at > case.resolved_at:
        storage.cases.check_back_done(case.id, "not sent: the customer wrote since it was resolved")
        return 0
    message = playbooks.messages.get("check_back")
    context = router_context(config, storage, state, latest.mention)
    pick = draft_message(message, case.lang, latest.mention, context) if message else "no check_back playbook"
    if not isinstance(pick, Pick):
        storage.cases.check_back_done(case.id, f"not sent: {pick}")
        return 0
    platform = get_platform(account.platform)
    reply_state = _check_back_state(account, platform.automated_direct_messages)
    kind = ReplyKind.DIRECT if latest.mention.visibility == "direct" else ReplyKind.PUBLIC
    reply = storage.cases.add_reply(
        case.id,
        kind=kind,
        purpose=ReplyPurpose.CHECK_BACK,
        text=pick.text,
        by="auto",
        state=reply_state,
        dedupe_key=f"check_back:{case.id}:{case.resolutions}",
        template_id=pick.template_id,
    )
    waits = (
        " (waits for approval: on X an unprompted automated reply needs a person)"
        if not (platform.automated_direct_messages)
        else ""
    )
    storage.cases.check_back_done(case.id, f"check-back {reply_state.value}{waits}" if reply else "already queued")
    return 1 if reply else 0


def _check_back_state(account: AccountConfig, automated_allowed: bool) -> ReplyState:
    """X allows automated replies only to posts that mention the account: there a person approves it."""
    if account.mode is Mode.DRY_RUN:
        return ReplyState.DRAFTED
    if account.mode is Mode.APPROVE or not automated_allowed:
        return ReplyState.PENDING
    return ReplyState.APPROVED


def _target_alerts(config: Config, storage: Storage, case: StoredCase, at: datetime) -> int:
    target = config.cases.targets.get(case.situation)
    if target is None:
        return 0
    hours = config.cases.business_hours
    raised = 0
    for name, seconds, done in (
        ("first_response", target.first_response, first_response(case)),
        ("resolution", target.resolution, case.resolved_at),
    ):
        if seconds is None or done is not None:
            continue
        spent = hours.elapsed(case.opened_at, at).total_seconds()
        margin = min(seconds * SOON, SOON_AT_MOST.total_seconds())
        label = "the first answer" if name == "first_response" else "resolution"
        goal = format_duration(seconds)
        if spent >= seconds:
            key, text = "missed", f"missed its target for {label} ({goal} in business hours)"
        elif spent >= seconds - margin:
            key, text = "soon", f"is about to miss its target for {label} ({goal} in business hours)"
        else:
            continue
        raised += raise_alert(
            storage,
            key=f"target:{case.id}:{name}:{key}",
            kind="target",
            account=case.account,
            text=f"case #{case.id} ({case.account}, {case.lang}, {case.situation}) {text}",
            at=at,
        )
    return raised


def anchor(storage: Storage, case: StoredCase) -> StoredMention:
    """The case's latest post from the customer."""
    posts = storage.cases.posts(case.id)
    if not posts:
        raise LookupError(f"case {case.id} has no post")
    return posts[-1]
