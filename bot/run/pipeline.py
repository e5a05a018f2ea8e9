"""One mention in, one stored decision out: classify, find its case, decide, apply the account's mode."""

from __future__ import annotations

import dataclasses
import logging
import time
import traceback
from dataclasses import dataclass

from bot.classifier import Classification, Classifier, mask_personal_data
from bot.config import AccountConfig, Config
from bot.decide.playbooks import Playbooks
from bot.decide.router import Context
from bot.models import Action, Decision, Mode, ReplyState
from bot.run.app import App
from bot.run.cases import after_recording, decide_in_case
from bot.run.context import router_context
from bot.run.incidents import detect, incident_reply, reading
from bot.run.quarantine import one_line, set_aside_mention
from bot.storage import DatabaseTrouble, Storage, Unstorable
from bot.storage.records import AccountState, Classified
from connectors import get_platform
from connectors.base import Connector, ConnectorError, Mention

log = logging.getLogger("carebot.pipeline")


def reply_state(decision: Decision, mode: Mode) -> ReplyState | None:
    """The state a new reply starts in, or None when nothing is to be said.

    A decision that says nothing but wants a person (a low-confidence troll, say) still gets a reply
    row, with no draft: it shows in the queue, where a person writes a reply or rejects it.
    """
    has_draft = decision.action is Action.REPLY and bool(decision.reply_text)
    if not has_draft and not decision.needs_approval:
        return None
    if mode is Mode.DRY_RUN:
        return ReplyState.DRAFTED
    if mode is Mode.APPROVE or decision.needs_approval:
        return ReplyState.PENDING
    return ReplyState.APPROVED


def classified(result: Classification) -> Classified:
    return Classified(
        lang=result.lang,
        situation=result.situation,
        confidence=round(result.confidence, 4),
        scores={k: round(v, 4) for k, v in result.scores.items()},
        personal_data=[{"kind": p.kind, "start": p.start, "end": p.end} for p in result.personal_data],
        angry=result.angry,
        opt_out=result.opt_out,
    )


def without_nul(mention: Mention) -> Mention:
    """The mention with NUL characters removed: PostgreSQL cannot store them in text, and a post that
    cannot be stored would hold the account's cursor back forever."""
    author = mention.author
    if "\x00" not in f"{mention.text}{author.handle}{author.display_name}{mention.url or ''}":
        return mention
    return dataclasses.replace(
        mention,
        text=mention.text.replace("\x00", ""),
        url=mention.url.replace("\x00", "") if mention.url else mention.url,
        author=dataclasses.replace(
            author, handle=author.handle.replace("\x00", ""), display_name=author.display_name.replace("\x00", "")
        ),
    )


def with_platform_doubts(decision: Decision, account: AccountConfig) -> Decision:
    """The decision, waiting for a person if its words need one on this platform (on X: a link, and its cost)."""
    warn = get_platform(account.platform).reply_warning
    warning = warn(decision.reply_text, account.options) if warn and decision.reply_text else None
    if warning is None:
        return decision
    return dataclasses.replace(decision, needs_approval=True, reason=f"{decision.reason}; {warning}: a person decides")


@dataclass(frozen=True)
class Handled:
    mention_id: int
    result: Classification
    decision: Decision
    reply_state: ReplyState | None
    classify_seconds: float = 0.0  # how long the classifier took (for /metrics)


def handle_mention(
    config: Config,
    storage: Storage,
    classifier: Classifier,
    playbooks: Playbooks,
    account: AccountConfig,
    mention: Mention,
    context: Context,
) -> Handled | None:
    """Classify, find its case, decide (the incident's answer for a report of one), store, and look for an
    incident; None if the mention was stored before. No platform needed: `context` says what it allows."""
    started = time.perf_counter()
    result = classifier.classify(mention.text, default_lang=config.brand.default_language)
    seconds = time.perf_counter() - started
    decision, case = decide_in_case(config, storage, playbooks, account, mention, result, context)
    topics, incident = reading(storage, playbooks, account.name, mention, result)
    if incident is not None and case is not None:
        decision = incident_reply(decision, mention, result, playbooks, context, incident, topics)
        case = dataclasses.replace(case, incident_id=incident.id)
    decision = with_platform_doubts(decision, account)
    new_state = reply_state(decision, account.mode)
    stored = storage.mentions.record(account.name, mention, classified(result), decision, new_state, case, topics)
    if stored is None:
        return None
    after_recording(storage, account, stored, case)
    if topics and case is not None:
        detect(config, storage, account.name, topics)
    return Handled(stored, result, decision, new_state, seconds)


def process_mention(
    app: App, account: AccountConfig, state: AccountState, connector: Connector, mention: Mention
) -> bool:
    """Classify, decide and store one mention; False if it was already stored or set aside (seen before).

    A mention that cannot be stored, or that trips a bug, is set aside (`bot.run.quarantine`) so that it
    never holds the account's stream back. The platform's failures and the database's trouble propagate:
    they say nothing about this post, and the cycle reads it again later.
    """
    try:
        with app.storage.held():  # one connection for the mention's dozen statements
            if app.storage.mentions.has(account.name, mention.post_id):
                return False  # read again (the overlap, a crash): the common case, one query
            if app.storage.quarantine.has(account.name, mention.post_id):
                return False
            return _process(app, account, state, connector, mention)
    except (ConnectorError, DatabaseTrouble):
        raise
    except Unstorable as exc:
        set_aside_mention(app.storage, account, mention, "store", f"cannot be stored: {exc}")
        return False
    except Exception as exc:
        # The traceback's frames, not its message: a message may quote the post.
        log.error(
            "%s: unexpected error (%s) with mention %s; set aside. Traceback:\n%s",
            account.name,
            type(exc).__name__,
            one_line(mention.post_id),
            "".join(traceback.format_tb(exc.__traceback__)),
        )
        set_aside_mention(app.storage, account, mention, "process", f"unexpected error: {type(exc).__name__}")
        return False


def _process(app: App, account: AccountConfig, state: AccountState, connector: Connector, mention: Mention) -> bool:
    mention = without_nul(mention)
    # The blocked and muted lists are cached by the connector and re-read from the platform once a minute,
    # up to ten pages each: no database connection is kept idle meanwhile (Database.let_go); the next
    # statement takes one again.
    app.storage.let_go()
    ignored = connector.ignored_author_ids()
    # One mention decided at a time per account: a polled page and a streamed batch (bot/run/stream.py)
    # may be at it together, and a case, an author's history or an incident must see the one before.
    with app.decide_lock(account.name):
        context = router_context(
            app.config, app.storage, state, mention, measure=connector.text_length, ignored_author_ids=ignored
        )
        handled = handle_mention(app.config, app.storage, app.classifier, app.playbooks, account, mention, context)
    if handled is None:
        return False
    result, decision, new_state = handled.result, handled.decision, handled.reply_state
    app.metrics.classifier_seconds.observe(handled.classify_seconds)
    log.info(
        "%s: mention %s by @%s: %s (%s, %.2f) -> %s%s; %s",
        account.name,
        mention.post_id,
        one_line(mention.author.handle),
        result.situation,
        result.lang,
        result.confidence,
        decision.action.value,
        f" [{new_state.value}]" if new_state else "",
        decision.reason,
    )
    shown = " ".join(mask_personal_data(mention.text).split())
    log.debug("%s: mention %s text: %s", account.name, mention.post_id, shown)
    return True
