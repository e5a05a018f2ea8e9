"""One mention in, one stored decision out: classify, find its case, decide, apply the account's mode."""

from __future__ import annotations

import dataclasses
import logging
import time

from bot.classifier import Classification, mask_personal_data
from bot.config import AccountConfig
from bot.models import Action, Decision, Mode, ReplyState
from bot.run.app import App
from bot.run.cases import after_recording, decide_in_case
from bot.run.context import router_context
from bot.run.incidents import detect, incident_reply, reading
from bot.storage.records import AccountState, Classified
from connectors.base import Connector, Mention

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


def process_mention(
    app: App, account: AccountConfig, state: AccountState, connector: Connector, mention: Mention
) -> bool:
    """Classify, decide and store one mention; False if it was already stored (seen before)."""
    if app.storage.mentions.has(account.name, mention.post_id):
        return False
    mention = without_nul(mention)
    started = time.perf_counter()
    result = app.classifier.classify(mention.text, default_lang=app.config.brand.default_language)
    app.metrics.classifier_seconds.observe(time.perf_counter() - started)
    context = router_context(
        app.config,
        app.storage,
        state,
        mention,
        measure=connector.text_length,
        ignored_author_ids=connector.ignored_author_ids(),  # the connector caches it between cycles
    )
    decision, case = decide_in_case(app.config, app.storage, app.playbooks, account, mention, result, context)
    topics, incident = reading(app.storage, app.playbooks, account.name, mention, result)
    if incident is not None and case is not None:
        decision = incident_reply(decision, mention, result, app.playbooks, context, incident, topics)
        case = dataclasses.replace(case, incident_id=incident.id)
    new_state = reply_state(decision, account.mode)
    record = app.storage.mentions.record
    stored = record(account.name, mention, classified(result), decision, new_state, case, topics)
    if stored is None:
        return False
    after_recording(app.storage, account, stored, case)
    if topics and case is not None:
        detect(app.config, app.storage, account.name, topics)
    log.info(
        "%s: mention %s by @%s: %s (%s, %.2f) -> %s%s; %s",
        account.name,
        mention.post_id,
        mention.author.handle,
        result.situation,
        result.lang,
        result.confidence,
        decision.action.value,
        f" [{new_state.value}]" if new_state else "",
        decision.reason,
    )
    log.debug("%s: mention %s text: %s", account.name, mention.post_id, mask_personal_data(mention.text))
    return True
