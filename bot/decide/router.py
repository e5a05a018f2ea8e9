"""Decide what to do with one classified mention: guards first, then the situation's playbook.

A pure function of the mention, its classification, the playbooks and a context the daemon
builds (platform limits, what we already said to this author). No I/O, no clock, no randomness:
the same inputs always give the same decision, so a re-run after a crash decides the same.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.config import Brand, ClassifierConfig, DaemonConfig
from bot.decide.playbooks import Condition, MessagePlaybook, Playbooks
from bot.decide.render import Variant, variants
from bot.models import Action, Decision
from connectors import get_platform
from connectors.base import Mention, plain_handle

if TYPE_CHECKING:
    from bot.classifier import Classification

ANGRY_BONUS = 10  # an angry complaint goes ahead of a calm one in the queue


@dataclass(frozen=True)
class Context:
    brand: Brand
    platform: str  # "mastodon" | "x"
    max_characters: int
    text_length: Callable[[str], int]  # the platform's way to count (X weighs URLs/emoji)
    min_confidence: float = ClassifierConfig.min_confidence
    allow_direct: bool = True  # False on X (no automated DMs)
    prefer_links: bool = True  # False on X by default: use email, not {support_url}
    own_account_ids: frozenset[str] = frozenset()  # the brand's own account ids on this platform
    ignored_author_ids: frozenset[str] = frozenset()  # accounts the brand blocked or muted
    author_opted_out: bool = False  # the author said "stop" before
    recent_replies_to_author: int = 0  # automated replies to this author in the last hour
    max_replies_per_author_hour: int = DaemonConfig.max_replies_per_author_hour
    last_template_for_author: str | None = None  # never the same template twice in a row to one person
    # The platform's handle syntax (`Platform.valid_handle`); None: the platform named by `platform`.
    valid_handle: Callable[[str], bool] | None = None


@dataclass(frozen=True)
class Pick:
    template_id: str
    text: str
    doubt: str | None = None  # why a person should look before it goes out


def decide(mention: Mention, result: Classification, playbooks: Playbooks, ctx: Context) -> Decision:
    if result.situation not in playbooks.by_situation:
        raise ValueError(f"no playbook for situation {result.situation!r}")
    playbook = playbooks.by_situation[result.situation]
    situation = playbook.situation
    urgent = playbook.urgent
    priority = playbook.priority + (ANGRY_BONUS if result.angry and playbook.urgent else 0)

    guard = check_guards(mention, result, ctx)
    if guard is not None:
        action, reason = guard
        if action is Action.IGNORE:
            return Decision(situation, action, reason)
        return Decision(situation, action, reason, urgent=urgent, priority=priority)

    rule = next(r for r in playbook.rules if _holds(r.when, mention, result, ctx))
    threshold = playbook.min_confidence if playbook.min_confidence is not None else ctx.min_confidence
    # The classifier's doubt (sarcastic praise, a possible complaint) wants a person at any confidence.
    unsure = result.confidence < threshold or result.doubt is not None
    # Past the per-author limit (a bot loop, or a very busy conversation) the reply is still drafted,
    # so that the person who decides finds it in the queue instead of writing it from scratch.
    capped = ctx.recent_replies_to_author >= ctx.max_replies_per_author_hour
    reasons = [f"{situation} playbook, rule {rule.name}"]
    if capped:
        reasons.insert(
            0,
            f"guard: {ctx.recent_replies_to_author} automated replies to this author in the last hour "
            f"(limit {ctx.max_replies_per_author_hour}): a person decides",
        )
    if result.confidence < threshold:
        reasons.append(f"confidence {result.confidence:.2f} is below {threshold:.2f}: a person checks")
    if result.doubt is not None:
        reasons.append(result.doubt)

    if rule.action is not Action.REPLY or rule.template is None:
        # A post we would let pass, but are unsure about, is kept for a person rather than dropped.
        action = Action.RECORD if unsure and rule.action is Action.IGNORE else rule.action
        return Decision(situation, action, "; ".join(reasons), needs_approval=unsure, urgent=urgent, priority=priority)

    lang = _language(result.lang, playbook.templates[rule.template], ctx.brand)
    handle = mention.author.handle
    try:
        pick = _pick(
            playbook.templates,
            situation,
            rule.template,
            lang,
            handle,
            mention.post_id,
            ctx,
            ctx.last_template_for_author,
        )
    except ValueError as exc:  # the handle has nothing we can safely write
        pick = f"no reply drafted: {exc}"
    if isinstance(pick, str):  # nothing can go out as it is: a person writes or drops the reply
        reasons.append(pick)
        return Decision(
            situation,
            Action.RECORD,
            "; ".join(reasons),
            needs_approval=True,
            urgent=urgent,
            priority=priority,
        )
    reasons.append(f"template {pick.template_id}")
    if pick.doubt:
        reasons.append(pick.doubt)
    if playbook.approval_required:
        reasons.append(f"the {situation} playbook asks a person to approve every reply")

    if mention.visibility == "direct" and rule.hands_off:
        # They wrote to us privately: an answer that says "please DM us", then a second private message,
        # would be two canned messages and a request they already met. One private acknowledgement; a
        # person takes it from there, as with any private message in a case.
        holding = playbooks.messages.get("holding")
        ack = draft_message(holding, lang, mention, ctx) if holding is not None else "no holding playbook"
        if isinstance(ack, Pick) and ack.doubt is None:
            said = f"a private message: answered privately with {ack.template_id}, a person takes it"
            reasons = [said if r == f"template {pick.template_id}" else r for r in reasons]
            return Decision(
                situation=situation,
                action=Action.REPLY,
                reason="; ".join(reasons),
                reply_text=ack.text,
                template_id=ack.template_id,
                needs_approval=unsure or capped or playbook.approval_required,
                urgent=urgent,
                priority=priority,
            )

    direct_text = None
    if rule.direct_template and ctx.allow_direct and mention.visibility != "direct":
        direct = _pick(playbook.templates, situation, rule.direct_template, lang, handle, mention.post_id, ctx, None)
        if isinstance(direct, Pick) and direct.doubt is None:
            direct_text = direct.text
        else:
            reasons.append("private follow-up left out: no variant fits")

    return Decision(
        situation=situation,
        action=Action.REPLY,
        reason="; ".join(reasons),
        reply_text=pick.text,
        direct_text=direct_text,
        template_id=pick.template_id,
        needs_approval=unsure or capped or playbook.approval_required or pick.doubt is not None,
        urgent=urgent,
        priority=priority,
    )


def check_guards(mention: Mention, result: Classification, ctx: Context) -> tuple[Action, str] | None:
    """Reasons to say nothing that win over any playbook."""
    author = mention.author
    if author.id in ctx.own_account_ids or author.handle.lower().lstrip("@") in ctx.brand.handles:
        return Action.IGNORE, "guard: the brand's own post"
    if author.id in ctx.ignored_author_ids:
        return Action.IGNORE, "guard: the brand blocked or muted this author"
    if result.opt_out or ctx.author_opted_out:
        return Action.RECORD, "guard: the author asked for no automated replies"
    if author.is_bot or result.bot_like:
        return Action.RECORD, "guard: the author looks like a bot"
    if not mention.mentions_brand:
        return Action.RECORD, "guard: the post does not address the brand"
    return None


def _holds(when: Condition | None, mention: Mention, result: Classification, ctx: Context) -> bool:
    if when is None:
        return True
    # Personal data in a private message is expected (it is where we ask for it): only a public post
    # carrying it gets the "keep it private" answer.
    public_personal_data = bool(result.personal_data) and mention.visibility != "direct"
    checks = (
        when.personal_data is None or when.personal_data == public_personal_data,
        when.angry is None or when.angry == bool(result.angry),
        when.platform is None or when.platform == ctx.platform,
    )
    return all(checks) and (when.keywords is None or when.keywords.search(mention.text))


def _language(lang: str, available: Mapping[str, Sequence[str]], brand: Brand) -> str:
    for candidate in (lang, brand.default_language, "en"):
        if candidate in available:
            return candidate
    return next(iter(available))


def draft_message(
    message: MessagePlaybook,
    lang: str,
    mention: Mention,
    ctx: Context,
    template: str | None = None,
    extra: Callable[[str], Mapping[str, str]] | None = None,
) -> Pick | str:
    """A message of `message`'s playbook (its template named like its kind, or `template`) for this post in
    the author's language, or why none fits. `extra(lang)` fills the playbook's own placeholders."""
    name = template or message.kind
    chosen = _language(lang, message.templates[name], ctx.brand)
    handle = mention.author.handle
    values = extra(chosen) if extra else None
    return _pick(message.templates, message.kind, name, chosen, handle, mention.post_id, ctx, None, values)


def _pick(
    templates: Mapping[str, Mapping[str, Sequence[str]]],
    prefix: str,
    template: str,
    lang: str,
    handle: str,
    post_id: str,
    ctx: Context,
    avoid: str | None,
    extra: Mapping[str, str] | None = None,
) -> Pick | str:
    """The variant to send, or (as text) why none can be sent."""
    if not handle_ok(handle, ctx):
        return (
            f"no reply drafted: the author's handle is missing or not a valid {ctx.platform} handle, "
            "so nothing can be addressed to them automatically: a person answers"
        )
    texts: Sequence[str] = templates[template][lang]
    usable = variants(texts, ctx.brand, handle, lang, ctx.prefer_links, extra)
    start = _start(post_id, len(texts))
    ordered = sorted(usable, key=lambda v: (v.index - start) % len(texts))

    def ident(v: Variant) -> str:
        return f"{prefix}/{template}/{lang}/{v.index}"

    fitting = [v for v in ordered if ctx.text_length(v.text) <= ctx.max_characters]
    fresh = [v for v in fitting if ident(v) != avoid]
    if fresh:
        return Pick(ident(fresh[0]), fresh[0].text)
    if fitting:
        shortest = min(fitting, key=lambda v: ctx.text_length(v.text))
        return Pick(ident(shortest), shortest.text, "only a repeat of this author's last reply fits: a person checks")
    return f"no variant of {prefix}/{template}/{lang} fits {ctx.max_characters} characters"


def handle_ok(handle: str, ctx: Context) -> bool:
    """Whether `handle` follows the platform's handle syntax: only then is it written into a reply."""
    valid = ctx.valid_handle
    if valid is None:
        try:
            valid = get_platform(ctx.platform).valid_handle
        except KeyError:  # not a platform carebot knows: only the plainest handles
            valid = plain_handle
    return valid(handle)


def _start(post_id: str, count: int) -> int:
    """Where to start in the variant list: spread over posts, the same for the same post."""
    digest = hashlib.sha256(post_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % max(count, 1)
