"""Send approved replies exactly once, retrying transient failures and parking what keeps failing.

Exactly once rests on four things: a reply is claimed (state `sending`, committed) before any request;
each reply carries its own idempotency key (Mastodon returns the same status for the same key); a reply
whose earlier attempt has an unknown outcome (public reply or private follow-up) is first looked up on the
platform (`find_reply`) and, if it is there, recorded instead of posted again (X has no idempotency key,
and Mastodon forgets one after an hour). "Unknown" is kept on the reply (`outcome_unknown`, set by each
claim) until a lookup or the platform's answer settles it: a person's retry, a restart or an hour's wait
never skips the lookup. A reply in doubt that the platform then refuses as a duplicate is taken to be out
already: looked up thoroughly, recorded if found, else parked for a person, and never reworded into a
second reply.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
from collections import Counter
from collections.abc import Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.classifier import Classification
from bot.clock import now
from bot.config import AccountConfig
from bot.decide.router import decide
from bot.models import CaseState, ReplyKind, ReplyPurpose, ReplyState
from bot.run.app import App
from bot.run.context import router_context
from bot.run.liveness import is_dead, process_identity
from bot.storage import DatabaseTrouble
from bot.storage.records import AccountState, StoredMention, StoredReply
from connectors import get_platform
from connectors.base import (
    AuthFailed,
    BadResponse,
    Connector,
    ConnectorError,
    DuplicateContent,
    Mention,
    Metered,
    PostedReply,
    RateLimited,
    Rejected,
    Unavailable,
    Unreachable,
)

log = logging.getLogger("carebot.outbox")

# Replies that answer the case's newest post in their channel rather than a mention of their own.
CASE_WIDE = (ReplyPurpose.TEAM.value, ReplyPurpose.CHECK_BACK.value, ReplyPurpose.INCIDENT.value)
# A claim lasts this long, or LEASE_TIMEOUTS times the account's request timeout if that is longer. The
# lookups before the post (an earlier attempt, the blocked and muted lists, several pages each) may outlast
# it when the platform is slow; so what is left of it must cover the post (its connect and its read, each up
# to the timeout) and the record, else it is renewed first, and the renewal finds out whether another
# worker has taken the reply over meanwhile.
CLAIM_LEASE = timedelta(seconds=120)
LEASE_TIMEOUTS = 3
RECORD_ALLOWANCE = 10.0  # seconds for the record after the post


def claim_lease(account: AccountConfig) -> timedelta:
    return max(CLAIM_LEASE, timedelta(seconds=LEASE_TIMEOUTS * account.timeout))


def post_window(account: AccountConfig) -> timedelta:
    """How much of its lease a claim must have left when the post starts."""
    return timedelta(seconds=2 * account.timeout + RECORD_ALLOWANCE)


@dataclass(frozen=True)
class Claim:
    """Our claim on a reply: when it was made (what `Replies.renew_claim` checks) and how long it lasts."""

    at: datetime
    lease: timedelta

    def lasts(self, window: timedelta) -> bool:
        return now() + window <= self.at + self.lease


@dataclass
class SendReport:
    sent: int = 0
    retried: int = 0
    parked: int = 0
    found_existing: int = 0

    def add(self, other: SendReport) -> SendReport:
        return SendReport(
            self.sent + other.sent,
            self.retried + other.retried,
            self.parked + other.parked,
            self.found_existing + other.found_existing,
        )


def retry_delay(base: float, attempts: int) -> float:
    """Exponential backoff with full jitter, capped at 15 minutes."""
    ceiling = min(base * (2 ** max(attempts - 1, 0)), 900.0)
    return random.uniform(ceiling / 2, ceiling)


def send_due(
    app: App,
    account: AccountConfig,
    state: AccountState,
    connector: Connector,
    stop: threading.Event | None = None,
    purposes: Collection[str] | None = None,
) -> SendReport:
    """Send every reply of this account whose time has come, several at once, until none is left (only
    those of `purposes`, if given).

    The due replies are taken in rounds (`ROUND` at a time) and each round is split into lanes, one per
    case (or per mention outside any case): a lane is sent in order by one sender, lanes side by side by
    up to `daemon.send_concurrency` senders (fewer if the connector says so). So a case's replies keep
    their order in each channel, and a private follow-up still waits for its public reply. Each reply is
    tried at most once per call. RateLimited and AuthFailed from any sender stop every sender before its
    next reply, and propagate once the replies in flight are settled; so does database trouble (the claim
    stays, and is recognised as ours once the database is back)."""
    _take_over_dead_claims(app, account)
    workers = max(1, min(app.config.daemon.send_concurrency, connector.max_send_concurrency))
    halt = _Halt(stop)
    tried: set[int] = set()
    reports: list[SendReport] = []
    with ThreadPoolExecutor(workers, thread_name_prefix=f"carebot-send-{account.name}") as pool:
        while not halt.is_set():
            batch = _next_round(app, account, tried, purposes)
            if not batch:
                break
            tried.update(reply.id for reply in batch)
            lanes = _lanes(batch)
            if workers == 1 or len(lanes) == 1:
                done = [_send_lane(app, account, state, connector, lane, halt) for lane in lanes]
            else:
                futures = [pool.submit(_send_lane, app, account, state, connector, lane, halt) for lane in lanes]
                done = [future.result() for future in futures]
            reports += done
            posted = sum(report.sent for report in done)
            if posted and not isinstance(connector, Metered):  # a metered connector counts its posts, by kind
                app.storage.accounts.add_usage(account.name, posts_created=posted)  # once a round, not per post
    halt.raise_first()
    return _total(reports)


ROUND = 100  # due replies read at once; rounds go on until none is left
# Failures that concern the whole account, not the reply at hand: they halt every sender of the account.
ACCOUNT_WIDE = (RateLimited, AuthFailed, Unreachable, DatabaseTrouble)


class _Halt:
    """Whether the senders stop taking replies: the daemon is stopping, or a sender met a failure that
    concerns the whole account (the first one is raised once every sender has settled its reply)."""

    def __init__(self, stop: threading.Event | None) -> None:
        self._stop = stop
        self._failure: BaseException | None = None
        self._lock = threading.Lock()

    def is_set(self) -> bool:
        return self._failure is not None or (self._stop is not None and self._stop.is_set())

    def fail(self, exc: BaseException) -> None:
        with self._lock:
            if self._failure is None:
                self._failure = exc

    def raise_first(self) -> None:
        if self._failure is not None:
            raise self._failure


def _next_round(
    app: App, account: AccountConfig, tried: set[int], purposes: Collection[str] | None
) -> list[StoredReply]:
    """The due replies not tried yet in this call (a reply waiting its turn stays due, and is skipped)."""
    limit = ROUND
    while True:
        due = app.storage.replies.due(account.name, limit=limit, purposes=purposes)
        fresh = [reply for reply in due if reply.id not in tried]
        if fresh or len(due) < limit:
            return fresh
        limit *= 2


def _lanes(batch: list[StoredReply]) -> list[list[StoredReply]]:
    """The round's replies by case (by mention outside a case), each lane in the order `due` gave."""
    lanes: dict[tuple[str, int], list[StoredReply]] = {}
    for reply in batch:
        key = ("case", reply.case_id) if reply.case_id is not None else ("mention", reply.mention_id)
        lanes.setdefault(key, []).append(reply)
    return list(lanes.values())


def _total(reports: list[SendReport]) -> SendReport:
    total = SendReport()
    for report in reports:
        total = total.add(report)
    return total


def _send_lane(
    app: App, account: AccountConfig, state: AccountState, connector: Connector, lane: list[StoredReply], halt: _Halt
) -> SendReport:
    """One case's due replies, in order, by one sender. Never raises: a failure for the whole account
    halts every sender and is raised by `send_due`."""
    report = SendReport()
    try:
        for reply in lane:
            if halt.is_set():
                break
            with app.storage.held():  # one connection for the reply's statements
                _send_due_reply(app, account, state, connector, reply, report)
    except ACCOUNT_WIDE as exc:
        halt.fail(exc)
    except BaseException as exc:  # a bug outside any one reply: said by send_due's caller, like before
        halt.fail(exc)
    return report


def _send_due_reply(
    app: App, account: AccountConfig, state: AccountState, connector: Connector, reply: StoredReply, report: SendReport
) -> None:
    answer = reply.purpose == ReplyPurpose.ANSWER.value
    if answer and reply.kind is ReplyKind.DIRECT and not _public_reply_sent(app, account, reply):
        return
    if not answer and app.storage.cases.unsent_before(reply):
        return  # the case's earlier reply in this channel goes first
    # A person's reply and a check-back answer the case's newest post; the bot's answer and holding
    # reply answer their own mention.
    target = _target(app, reply) if reply.purpose in CASE_WIDE else None
    lease = claim_lease(account)
    with _in_flight(reply.id):
        claimed_at = app.storage.replies.claim(reply, lease, process_identity(), target_post_id=target)
        if claimed_at is None:
            return  # another worker took it
        claim = Claim(claimed_at, lease)
        stored = app.storage.mentions.get(reply.mention_id)
        claimed = dataclasses.replace(reply, target_post_id=reply.target_post_id or target)
        try:
            _send_one(app, account, state, connector, claimed, claim, stored, report)
        except ACCOUNT_WIDE:
            raise
        except Exception as exc:  # a bug with this one reply must not hold up the others
            log.exception("%s: unexpected error while sending reply %s; will try again", account.name, reply.id)
            _retry_later(app, account, reply, claim, _describe(exc), claimed.attempts + 1, report)


# Replies this process is sending right now: any other claim of ours is left over from a cycle that the
# database dropped between the post and its record (its lease would otherwise hold it for 120 s or more).
# Counted, not a set: two of this process's senders (a stream's and a poll's) may go for the same reply, and
# the one that lost the claim must not unmark it while the other is still posting it.
_SENDING: Counter[int] = Counter()
_SENDING_LOCK = threading.Lock()


@contextmanager
def _in_flight(reply_id: int) -> Iterator[None]:
    with _SENDING_LOCK:
        _SENDING[reply_id] += 1
    try:
        yield
    finally:
        with _SENDING_LOCK:
            _SENDING[reply_id] -= 1
            if _SENDING[reply_id] <= 0:
                del _SENDING[reply_id]


def _target(app: App, reply: StoredReply) -> str | None:
    """The post a case reply answers: the newest of the case in its channel, fixed at the first claim."""
    if reply.target_post_id is not None or reply.case_id is None:
        return reply.target_post_id
    return app.storage.cases.latest_in_channel(reply.case_id, direct=reply.kind is ReplyKind.DIRECT)


def _answering(app: App, reply: StoredReply, stored: StoredMention) -> Mention:
    """What the platform sees this reply answer: the mention, or for a case reply the post it targets
    (a later post of the customer's, or our own last reply in the channel), addressed to the customer."""
    target = reply.target_post_id
    if reply.purpose not in CASE_WIDE or target is None or target == stored.mention.post_id:
        return stored.mention
    visibility = "direct" if reply.kind is ReplyKind.DIRECT else _public_visibility(app, reply, stored)
    return dataclasses.replace(stored.mention, post_id=target, visibility=visibility, in_reply_to_id=None)


def _public_visibility(app: App, reply: StoredReply, stored: StoredMention) -> str:
    """A public reply of a case is as public as the customer's own latest public post."""
    if reply.case_id is None:
        return stored.mention.visibility
    public = [m.mention.visibility for m in app.storage.cases.posts(reply.case_id) if m.mention.visibility != "direct"]
    return public[-1] if public else "public"


def _take_over_dead_claims(app: App, account: AccountConfig) -> None:
    """Make replies claimed by a process that has since died due now, not when their lease ends.

    Such a reply may or may not have been posted: it is sent like any retry, so `find_reply` (or the
    same idempotency key) settles which. A claimant on another machine is never judged dead here.
    """
    me = process_identity()
    for reply_id, claimed_by in app.storage.replies.claims_in_flight(account.name):
        if claimed_by is None:
            continue
        if claimed_by == me:
            with _SENDING_LOCK:
                ours_in_flight = reply_id in _SENDING
            if not ours_in_flight and app.storage.replies.expire_claim(reply_id, claimed_by):
                log.info(
                    "%s: reply %s was claimed by this process before the database was lost; resolving it now",
                    account.name,
                    reply_id,
                )
        elif is_dead(claimed_by) and app.storage.replies.expire_claim(reply_id, claimed_by):
            log.info("%s: reply %s was being sent by a process that died; resolving it now", account.name, reply_id)


def _send_one(
    app: App,
    account: AccountConfig,
    state: AccountState,
    connector: Connector,
    reply: StoredReply,
    claim: Claim,
    stored: StoredMention,
    report: SendReport,
) -> None:
    storage = app.storage
    attempt = reply.attempts + 1
    # An earlier attempt may have posted it: its outcome was never learnt (a timeout, a lost answer, a sender
    # that died with the request in flight). `unknown` is whether it may be on the platform: so until the
    # lookup says it is not, and again from the moment the post goes out until the platform answers.
    in_doubt = unknown = reply.outcome_unknown
    posting = False
    try:
        answering = _answering(app, reply, stored)
        if in_doubt:
            direct = reply.kind is ReplyKind.DIRECT
            storage.let_go()  # no connection kept idle while the platform answers (Database.let_go)
            existing = connector.find_reply(answering, reply.idempotency_key, direct=direct, text=_words(reply))
            if existing is not None:
                _found(app, account, reply, existing, report)
                return
            unknown = False
        if reply.purpose == ReplyPurpose.CHECK_BACK.value and _customer_wrote_since(app, reply):
            why = "not sent: the customer wrote since the case was resolved"
            if storage.replies.drop(reply.id, why, claimed_at=claim.at):
                log.info("%s: check-back %s dropped: the customer wrote since", account.name, reply.id)
            else:
                _left_to_another(account, reply)
            return
        storage.let_go()  # from here to the post, only the platform is waited on (blocks and mutes: once a minute)
        if reply.decided_by == "auto" and stored.mention.author.id in connector.ignored_author_ids():
            _park(
                app, account, reply, claim, "not sent: the brand has since blocked or muted the author", report, False
            )
            return
        warning = _needs_a_person(account, reply)
        if warning is not None:
            _park(app, account, reply, claim, f"not sent: {warning}; a person decides (retry sends it)", report, False)
            return
        window = post_window(account)
        if not claim.lasts(window) and not storage.replies.renew_claim(reply.id, claim.at, max(claim.lease, window)):
            _left_to_another(account, reply)  # not posted here
            return
        storage.let_go()
        posting = unknown = True
        posted = _post(connector, reply, answering)
    except (RateLimited, AuthFailed) as exc:
        # Refused before anything was posted (the post itself, or the lookup before it).
        storage.replies.release(
            reply.id,
            _describe(exc),
            retry_at=None,
            count_attempt=False,
            outcome_unknown=unknown and not posting,
            claimed_at=claim.at,
        )
        raise
    except Unreachable as exc:
        # The platform is out of reach: this reply has not failed, and every other would meet the same. It
        # waits, no attempt counted, as a doubt if the post may have gone out; the senders stop, and the
        # cycle reports the outage (`carebot status` and /metrics: the account's last good cycle ages).
        retry_at = now() + timedelta(seconds=app.config.daemon.retry_backoff)
        storage.replies.release(
            reply.id, _describe(exc), retry_at, count_attempt=False, outcome_unknown=unknown, claimed_at=claim.at
        )
        raise
    except DuplicateContent as exc:
        if in_doubt:
            _already_there(app, account, connector, reply, claim, answering, exc, report)
        elif reply.reworded or not _reword(app, account, state, connector, reply, claim, stored):
            _park(app, account, reply, claim, _describe(exc), report, False)
        return
    except Rejected as exc:
        _park(app, account, reply, claim, _describe(exc), report, unknown and not posting)
        return
    except (Unavailable, BadResponse) as exc:
        what = _describe(exc)
        if unknown:
            what += "; it may be on the platform already: it is looked up before any new attempt"
        if attempt >= app.config.daemon.max_attempts:
            _park(app, account, reply, claim, f"gave up after {attempt} attempts: {what}", report, unknown)
            return
        delay = _retry_later(app, account, reply, claim, what, attempt, report, unknown)
        if delay is not None:
            log.warning("%s: reply %s failed (%s); retry in %.0fs", account.name, reply.id, exc, delay)
        return
    storage.cases.record_sent(reply, posted.post_id, now())
    report.sent += 1
    log.info(
        "%s: sent %s reply %s to mention %s as %s",
        account.name,
        reply.kind.value,
        reply.id,
        stored.mention.post_id,
        posted.post_id,
    )


def _words(reply: StoredReply) -> str | None:
    """What a lookup matches a case reply by: it shares its target with no other reply of ours but may share
    the mention, so it is known by its words. The bot's answer is the one reply to its mention."""
    return None if reply.purpose == ReplyPurpose.ANSWER.value else reply.text


def _found(app: App, account: AccountConfig, reply: StoredReply, existing: PostedReply, report: SendReport) -> None:
    # Recorded whoever holds the claim now: the reply is on the platform, and that is never to be forgotten.
    app.storage.cases.record_sent(reply, existing.post_id, now())
    report.found_existing += 1
    log.info("%s: reply %s was already posted as %s; recorded", account.name, reply.id, existing.post_id)


def _already_there(
    app: App,
    account: AccountConfig,
    connector: Connector,
    reply: StoredReply,
    claim: Claim,
    answering: Mention,
    refusal: DuplicateContent,
    report: SendReport,
) -> None:
    """A duplicate refusal right after an attempt of unknown outcome: the reply is almost surely out already.

    Look as hard as the platform allows and record it if found; if not, park it for a person with the reason.
    Never reworded: new words would make a second reply to the same post.
    """
    direct = reply.kind is ReplyKind.DIRECT
    app.storage.let_go()
    try:
        existing = connector.find_reply(
            answering, reply.idempotency_key, direct=direct, text=_words(reply), thorough=True
        )
    except (RateLimited, AuthFailed, Unreachable) as exc:  # not an answer: asked again, the doubt kept
        app.storage.replies.release(
            reply.id, _describe(exc), retry_at=None, count_attempt=False, outcome_unknown=True, claimed_at=claim.at
        )
        raise
    except ConnectorError as exc:
        log.warning("%s: reply %s: the lookup after a duplicate refusal failed: %s", account.name, reply.id, exc)
        existing = None
    if existing is not None:
        _found(app, account, reply, existing, report)
        return
    reason = (
        "probably posted already: refused as a duplicate after an attempt whose outcome is unknown, yet not "
        f"found on {account.platform}; look at the thread before retrying ({_describe(refusal)})"
    )
    _park(app, account, reply, claim, reason, report, unknown=True)


def _needs_a_person(account: AccountConfig, reply: StoredReply) -> str | None:
    """Why these words must not go out before a person said yes (on X: a link, and its cost), if so."""
    if reply.approved_by is not None:
        return None  # a person approved (or retried) this reply, the cost shown to them
    warn = get_platform(account.platform).reply_warning
    return warn(reply.text, account.options) if warn is not None else None


def _customer_wrote_since(app: App, reply: StoredReply) -> bool:
    if reply.case_id is None:
        return False
    case = app.storage.cases.get(reply.case_id)
    return case.last_customer_at > reply.created_at or case.state != CaseState.RESOLVED.value


def _park(
    app: App, account: AccountConfig, reply: StoredReply, claim: Claim, reason: str, report: SendReport, unknown: bool
) -> None:
    """Stop trying: the reply waits, failed, with the reason, until a person retries or rejects it. While
    `unknown` (it may be on the platform), a retry looks it up first."""
    if not app.storage.replies.park(reply.id, reason, outcome_unknown=unknown, claimed_at=claim.at):
        _left_to_another(account, reply)
        return
    report.parked += 1
    log.warning("%s: reply %s parked: %s", account.name, reply.id, reason)


def _retry_later(
    app: App,
    account: AccountConfig,
    reply: StoredReply,
    claim: Claim,
    reason: str,
    attempt: int,
    report: SendReport,
    unknown: bool | None = None,
) -> float | None:
    """Back to approved, to be tried again after the backoff for `attempt`: the seconds until then, or None
    when the claim was taken over meanwhile. `unknown`: as for `Replies.release`."""
    delay = retry_delay(app.config.daemon.retry_backoff, attempt)
    retry_at = now() + timedelta(seconds=delay)
    released = app.storage.replies.release(
        reply.id, reason, retry_at=retry_at, outcome_unknown=unknown, claimed_at=claim.at
    )
    if not released:
        _left_to_another(account, reply)
        return None
    report.retried += 1
    return delay


def _left_to_another(account: AccountConfig, reply: StoredReply) -> None:
    """Our claim ran out (the platform was slow) and another sender has taken the reply over since: what
    happens to it is theirs to do and record. Nothing of ours is written over it."""
    log.warning(
        "%s: reply %s: its claim ran out and another sender has taken it over; left to that one",
        account.name,
        reply.id,
    )


def _public_reply_sent(app: App, account: AccountConfig, reply: StoredReply) -> bool:
    """A private follow-up goes out only after its public reply did: never a DM out of the blue.

    If a person rejected the public reply, the follow-up is parked for good, so it does not sit
    among the due replies forever.
    """
    public = next((r for r in app.storage.replies.for_mention(reply.mention_id) if r.kind is ReplyKind.PUBLIC), None)
    if public is None or public.state is ReplyState.SENT:
        return True
    if public.state is ReplyState.REJECTED:
        app.storage.replies.park(reply.id, "not sent: its public reply was rejected")
        log.info("%s: private follow-up %s dropped: its public reply was rejected", account.name, reply.id)
    return False


def _post(connector: Connector, reply: StoredReply, answering: Mention) -> PostedReply:
    if reply.kind is ReplyKind.DIRECT:
        return connector.send_direct(answering, reply.text, reply.idempotency_key)
    return connector.reply(answering, reply.text, reply.idempotency_key)


def _reword(
    app: App,
    account: AccountConfig,
    state: AccountState,
    connector: Connector,
    reply: StoredReply,
    claim: Claim,
    stored: StoredMention,
) -> bool:
    """Redraft a reply the platform refused as a duplicate with another variant; False if none differs."""
    if reply.kind is not ReplyKind.PUBLIC or reply.decided_by != "auto" or reply.purpose != ReplyPurpose.ANSWER.value:
        return False  # a person's words are not ours to change, nor a case's set messages
    result: Classification = app.classifier.classify(
        stored.mention.text, default_lang=app.config.brand.default_language
    )
    context = router_context(
        app.config,
        app.storage,
        state,
        stored.mention,
        measure=connector.text_length,
        ignored_author_ids=connector.ignored_author_ids(),
        last_template=reply.template_id,
    )
    decision = decide(stored.mention, result, app.playbooks, context)
    if not decision.reply_text or decision.reply_text == reply.text:
        return False
    if not app.storage.replies.reword(reply.id, decision.reply_text, decision.template_id, claimed_at=claim.at):
        _left_to_another(account, reply)
        return True
    log.info("%s: reply %s was a duplicate on the platform; reworded once", account.name, reply.id)
    return True


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"
