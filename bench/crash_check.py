"""After the crash test: compare what customers see on the server with what the database says.

A mention is *answered* when it has exactly one public reply from the brand and the database records that
very post as sent. It is *deliberately unanswered* when the database decided so (no reply for trolling or
chatter, a reply waiting for a person) and the server agrees. Anything else is a duplicate (more than one
reply), a loss (not stored, or a reply stuck unsent) or a disagreement between database and server.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from bench.crash_peers import ServerPost
from bot.models import ReplyKind, ReplyPurpose, ReplyState
from bot.storage import Storage
from bot.storage.records import StoredReply

DELIBERATE = {ReplyState.PENDING, ReplyState.REJECTED, ReplyState.DRAFTED}
ANSWERS = (ReplyPurpose.ANSWER.value, ReplyPurpose.HOLDING.value)  # the bot's own reply to a mention
CASE_WIDE = (ReplyPurpose.TEAM.value, ReplyPurpose.CHECK_BACK.value, ReplyPurpose.INCIDENT.value)


@dataclass(frozen=True)
class Posted:
    post_id: str
    customer: str
    text: str
    fault: str | None = None  # what the fault proxy does to it (bench/crash_faults.py), if anything

    @property
    def poison(self) -> bool:
        return (self.fault or "").startswith("poison")


@dataclass
class Verdict:
    posted: int = 0
    stored: int = 0
    public_on_server: int = 0
    direct_on_server: int = 0
    answered: int = 0
    unanswered: Counter[str] = field(default_factory=Counter)
    team_sent: int = 0  # a person's replies, on the server once each
    check_backs_sent: int = 0
    incident_sent: int = 0  # "it's fixed" to each member of a resolved incident
    set_aside: int = 0  # posts that could not be read or stored, in the quarantine and not answered
    duplicates: list[str] = field(default_factory=list)
    losses: list[str] = field(default_factory=list)
    disagreements: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.duplicates or self.losses or self.disagreements)


def check(posted: list[Posted], server: list[ServerPost], storage: Storage, account: str) -> Verdict:
    verdict = Verdict(posted=len(posted))
    public_by_target: dict[str, list[ServerPost]] = {}
    direct_to: Counter[str] = Counter()
    for post in server:
        if post.direct:
            verdict.direct_on_server += 1
            direct_to.update(_addressees(post.text))
        else:
            verdict.public_on_server += 1
            public_by_target.setdefault(post.in_reply_to_id or "", []).append(post)

    stored = {m.mention.post_id: m for m in storage.mentions.all(account)}
    recorded: dict[str, StoredReply] = {}
    direct_sent: Counter[str] = Counter()
    for mention in stored.values():
        for reply in storage.replies.for_mention(mention.id):
            if reply.state is ReplyState.SENT and reply.platform_post_id:
                recorded[reply.platform_post_id] = reply
                if reply.kind is ReplyKind.DIRECT:
                    direct_sent[mention.mention.author.handle.lower()] += 1

    # A person's reply or a check-back may answer a customer's post too: it is checked on its own below.
    case_posts = {post_id for post_id, reply in recorded.items() if reply.purpose not in ANSWERS}
    for item in posted:
        on_server = [p for p in public_by_target.get(item.post_id, []) if p.id not in case_posts]
        if len(on_server) > 1:
            ids = ", ".join(p.id for p in on_server)
            verdict.duplicates.append(f"mention {item.post_id} has {len(on_server)} public replies ({ids})")
        mention = stored.get(item.post_id)
        if item.poison:
            if mention is not None:
                verdict.disagreements.append(f"poison post {item.post_id} ({item.fault}) was stored")
            elif storage.quarantine.has(account, item.post_id):
                verdict.set_aside += 1
            else:
                verdict.losses.append(f"poison post {item.post_id} ({item.fault}) was neither stored nor set aside")
            if on_server:
                verdict.disagreements.append(f"poison post {item.post_id} ({item.fault}) was answered")
            continue
        if mention is None:
            verdict.losses.append(f"mention {item.post_id} ({item.text[:40]!r}) was never stored")
            continue
        verdict.stored += 1
        all_replies = storage.replies.for_mention(mention.id)
        for reply in all_replies:
            if reply.purpose in CASE_WIDE:
                _case_reply(verdict, reply, recorded)
        replies = {
            r.kind: r for r in all_replies if r.purpose in (ReplyPurpose.ANSWER.value, ReplyPurpose.HOLDING.value)
        }
        public = replies.get(ReplyKind.PUBLIC)
        if public is None or public.state in DELIBERATE:
            why = f"{mention.situation}: {mention.action}" if public is None else f"reply {public.state.value}"
            verdict.unanswered[why] += 1
            if on_server:
                verdict.disagreements.append(f"mention {item.post_id} is answered on the server but {why} here")
        elif public.state is ReplyState.SENT:
            if public.platform_post_id in {p.id for p in on_server}:
                verdict.answered += 1
            else:
                verdict.disagreements.append(
                    f"reply {public.id} is recorded as {public.platform_post_id}, which is not a reply to "
                    f"mention {item.post_id} on the server"
                )
        else:
            verdict.losses.append(
                f"reply {public.id} to mention {item.post_id} is {public.state.value}: {public.last_error}"
            )
        direct = replies.get(ReplyKind.DIRECT)
        if direct is not None and direct.state not in DELIBERATE and direct.state is not ReplyState.SENT:
            verdict.losses.append(f"direct reply {direct.id} is {direct.state.value}: {direct.last_error}")

    for post in server:  # a handle that is not the platform's syntax is never written into a post
        if "evil.example" in post.text or "@None" in post.text:
            verdict.disagreements.append(f"brand post {post.id} carries a broken or hostile handle")
    server_ids = {p.id for p in server}
    for post_id, reply in recorded.items():
        if post_id not in server_ids:
            verdict.disagreements.append(f"reply {reply.id} is recorded as sent as {post_id}, not on the server")
    for post in server:
        if post.id not in recorded:
            verdict.disagreements.append(f"brand post {post.id} on the server is not recorded as sent")
    for handle, count in direct_to.items():
        if count > direct_sent[handle]:
            verdict.duplicates.append(f"@{handle} got {count} direct messages; {direct_sent[handle]} recorded as sent")
    return verdict


def _case_reply(verdict: Verdict, reply: StoredReply, recorded: dict[str, StoredReply]) -> None:
    """A person's reply or a check-back: sent once (on the server as recorded), or waiting for a person."""
    if reply.state is ReplyState.SENT and reply.platform_post_id in recorded:
        if reply.purpose == ReplyPurpose.TEAM.value:
            verdict.team_sent += 1
        elif reply.purpose == ReplyPurpose.INCIDENT.value:
            verdict.incident_sent += 1
        else:
            verdict.check_backs_sent += 1
    elif reply.state not in DELIBERATE:
        verdict.losses.append(f"{reply.purpose} reply {reply.id} is {reply.state.value}: {reply.last_error}")


def _addressees(html: str) -> set[str]:
    """The @handles a direct message names (its text may be HTML, as Mastodon serves it)."""
    text = re.sub(r"<[^>]+>", " ", html)
    return {h.lower() for h in re.findall(r"(?<![\w@.])@([A-Za-z0-9_]+)", text)}
