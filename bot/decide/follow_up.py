"""What to do with a post that joins a case the bot already answered: pure, like the router.

Inside a case the bot never repeats its hand-off (docs/GUIDE.md, principles 4 and 5). The post goes to the
team: at most one short holding reply per case per period, in the channel the customer used; "I already
tried and nobody answered" escalates the case; "thanks, it works now" proposes resolving it. A private
message in a case is never answered with public-style advice or another request for details.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.decide.playbooks import Playbooks
from bot.decide.router import Context, Pick, check_guards, draft_message
from bot.models import Action, Decision
from connectors.base import Mention

if TYPE_CHECKING:
    from bot.classifier import Classification

ESCALATED_PRIORITY = 300  # ahead of every fresh complaint in the queue


@dataclass(frozen=True)
class CaseFacts:
    """What the decision needs to know about the case the post joins."""

    id: int
    urgent: bool
    priority: int
    holding_allowed: bool  # no holding reply within `cases.holding_every`


@dataclass(frozen=True)
class FollowUp:
    decision: Decision
    escalated: bool  # "already tried, nobody answered"
    says_resolved: bool  # "thanks, it works now"


def follow_up(
    mention: Mention, result: Classification, playbooks: Playbooks, ctx: Context, case: CaseFacts
) -> FollowUp:
    holding = playbooks.messages.get("holding")
    signals = holding.signals if holding is not None else {}

    def says(name: str) -> bool:
        keywords = signals.get(name)
        return keywords is not None and keywords.search(mention.text)

    escalated = says("escalation")
    says_resolved = says("resolved") and not says("still_broken") and not escalated
    urgent = case.urgent or escalated or result.situation == "complaint"
    priority = max(case.priority, ESCALATED_PRIORITY if escalated else 0)
    reasons = [f"follow-up in case #{case.id}: no canned answer twice, a person takes it"]
    if escalated:
        reasons.append("the customer says they already tried and nobody answered: escalated")
    if says_resolved:
        reasons.append("the customer says it works now: resolving the case is proposed")

    def record(extra: str | None = None) -> FollowUp:
        why = "; ".join([*reasons, extra] if extra else reasons)
        decision = Decision(result.situation, Action.RECORD, why, urgent=urgent, priority=priority)
        return FollowUp(decision, escalated, says_resolved)

    guard = check_guards(mention, result, ctx)
    if guard is not None:
        action, why = guard
        if action is Action.IGNORE:
            return FollowUp(Decision(result.situation, action, why), False, False)
        return record(why)
    if says_resolved:
        return record()
    if holding is None or not case.holding_allowed:
        return record("this case had a holding reply lately (sent or not): none now")
    pick = draft_message(holding, result.lang, mention, ctx)
    if not isinstance(pick, Pick) or pick.doubt is not None:
        return record(f"no holding reply: {pick if isinstance(pick, str) else pick.doubt}")
    reasons.append(f"holding reply {pick.template_id}")
    decision = Decision(
        result.situation,
        Action.REPLY,
        "; ".join(reasons),
        reply_text=pick.text,
        template_id=pick.template_id,
        urgent=urgent,
        priority=priority,
    )
    return FollowUp(decision, escalated, says_resolved)
