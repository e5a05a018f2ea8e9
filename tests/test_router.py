from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime

import pytest

from bot.classifier import Classification, PersonalData, find_personal_data
from bot.config import Brand
from bot.decide.playbooks import Playbooks, load_playbooks
from bot.decide.router import ANGRY_BONUS, Context, decide
from bot.models import LANGUAGES, SITUATIONS, Action, Decision
from connectors import mastodon_limits, x_text
from connectors.base import Author, Mention

BRAND = Brand(
    name="Acme",
    support_email="help@acme.example",
    support_url="https://acme.example/help",
    handles=("acme",),
)
SCRIPT = {
    "en": re.compile(r"^[\x00-\x7f“”’]+$"),
    "id": re.compile(r"^[\x00-\x7f“”’]+$"),
    "ru": re.compile(r"[А-Яа-яЁё]{3}"),
    "ar": re.compile(r"[\u0600-\u06ff]{3}"),
}
# Posts that only the situation's playbook rules look at (keywords); the classifier is not involved.
POSTS = {
    "contact_request": "how do I reach your support team?",
    "simple_question": "can I use one account on two phones?",
    "complaint": "my order never arrived and nobody answers",
    "price_question": "why is the yearly plan so expensive?",
    "trolling": "lol what a clown company",
    "other": "just saw your billboard on my way to work",
}
EXPECTED = {
    "contact_request": (Action.REPLY, "contact_request/channels/"),
    "simple_question": (Action.REPLY, "simple_question/move_private/"),
    "complaint": (Action.REPLY, "complaint/ack/"),
    "price_question": (Action.REPLY, "price_question/pricing/"),
    "trolling": (Action.RECORD, None),
    "other": (Action.IGNORE, None),
}


@pytest.fixture(scope="module")
def playbooks() -> Playbooks:
    return load_playbooks()


def mention(text: str = "hello @acme", post_id: str = "1001", **author: object) -> Mention:
    fields: dict[str, object] = {"id": "42", "handle": "jane_doe", **author}
    return Mention(
        platform="mastodon",
        post_id=post_id,
        cursor=post_id,
        author=Author(**fields),  # type: ignore[arg-type]
        text=text,
        created_at=datetime(2026, 1, 5, 12, 0, tzinfo=UTC),
    )


def classified(situation: str, lang: str = "en", confidence: float = 0.9, **signals: object) -> Classification:
    values: dict[str, object] = {
        "lang": lang,
        "lang_confidence": 0.99,
        "situation": situation,
        "confidence": confidence,
        "scores": {s: (confidence if s == situation else (1 - confidence) / 5) for s in SITUATIONS},
        "personal_data": (),
        "angry": False,
        "opt_out": False,
        "bot_like": False,
        **signals,
    }
    return Classification(**values)  # type: ignore[arg-type]


def mastodon(**changes: object) -> Context:
    return dataclasses.replace(
        Context(brand=BRAND, platform="mastodon", max_characters=500, text_length=mastodon_limits.text_length),
        **changes,
    )


def x(**changes: object) -> Context:
    base = Context(
        brand=BRAND,
        platform="x",
        max_characters=280,
        text_length=x_text.text_length,
        allow_direct=False,
        prefer_links=False,
    )
    return dataclasses.replace(base, **changes)


def template_text(playbooks: Playbooks, template_id: str) -> str:
    situation, name, lang, index = template_id.split("/")
    return playbooks[situation].templates[name][lang][int(index)]


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("situation", SITUATIONS)
@pytest.mark.parametrize("platform", ["mastodon", "x"])
def test_each_situation_and_language(playbooks: Playbooks, situation: str, lang: str, platform: str) -> None:
    ctx = mastodon() if platform == "mastodon" else x()
    decision = decide(mention(POSTS[situation]), classified(situation, lang), playbooks, ctx)
    action, template = EXPECTED[situation]
    assert decision.situation == situation
    assert decision.action is action
    assert not decision.needs_approval
    assert decision.reason.startswith(f"{situation} playbook, rule ")
    if template is None:
        assert decision.reply_text is None and decision.direct_text is None and decision.template_id is None
        return
    assert decision.template_id is not None and decision.template_id.startswith(f"{template}{lang}/")
    reply = decision.reply_text
    assert reply is not None and reply.startswith("@jane_doe ")
    assert SCRIPT[lang].search(reply.removeprefix("@jane_doe ").replace(BRAND.support_email, ""))
    assert ctx.text_length(reply) <= ctx.max_characters
    assert x_text.text_length(reply) <= 280 or platform == "mastodon"
    assert BRAND.support_email in reply or BRAND.name in reply or situation == "other"
    if platform == "x":
        assert "http" not in reply  # X charges much more for a post with a link


@pytest.mark.parametrize("lang", LANGUAGES)
def test_complaint_with_personal_data_gets_the_privacy_warning_and_none_of_the_data(
    playbooks: Playbooks, lang: str
) -> None:
    text = (
        "@acme you charged my card 4111 1111 1111 1111 twice!! order #A-99812-77, "
        "email me at jane.doe@mail.example or call +44 20 7946 0958"
    )
    found = find_personal_data(text)
    assert {p.kind for p in found} >= {"card", "email", "phone"}
    result = classified("complaint", lang, personal_data=found, angry=True)
    for ctx in (mastodon(), x()):
        decision = decide(mention(text), result, playbooks, ctx)
        assert decision.action is Action.REPLY
        assert decision.template_id is not None and decision.template_id.startswith(f"complaint/pii_warning/{lang}/")
        assert decision.urgent and decision.priority == playbooks["complaint"].priority + ANGRY_BONUS
        for reply in (decision.reply_text, decision.direct_text):
            for span in found:
                assert text[span.start : span.end] not in (reply or "")
            assert "4111" not in (reply or "") and "0958" not in (reply or "") and "99812" not in (reply or "")
        # The private follow-up goes out only where automated DMs are allowed.
        assert (decision.direct_text is not None) is ctx.allow_direct


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("situation", ["complaint", "simple_question"])
def test_a_private_message_is_acknowledged_privately_and_never_asked_to_dm_us(
    playbooks: Playbooks, situation: str, lang: str
) -> None:
    """A customer who wrote to us privately got "please DM us or email ..." and then a second private
    message: two canned messages, one asking for what they had already done."""
    private = dataclasses.replace(mention(POSTS[situation]), visibility="direct")
    decision = decide(private, classified(situation, lang), playbooks, mastodon())
    assert decision.action is Action.REPLY and decision.direct_text is None
    assert decision.template_id is not None and decision.template_id.startswith(f"holding/holding/{lang}/")
    _, name, _, index = decision.template_id.split("/")
    said = playbooks.messages["holding"].templates[name][lang][int(index)].replace("{brand}", "Acme")
    assert decision.reply_text == f"@jane_doe {said}"
    assert "a private message: answered privately" in decision.reason
    # A reply that answers the question itself goes as it is, privately.
    faq = dataclasses.replace(mention("I forgot my password"), visibility="direct")
    answer = decide(faq, classified("simple_question", "en"), playbooks, mastodon())
    assert answer.template_id is not None and answer.template_id.startswith("simple_question/faq_password/en/")


def test_an_angry_complaint_is_acknowledged_as_such_and_goes_first(playbooks: Playbooks) -> None:
    calm = decide(mention(), classified("complaint"), playbooks, mastodon())
    angry = decide(mention(), classified("complaint", angry=True), playbooks, mastodon())
    assert calm.template_id is not None and calm.template_id.startswith("complaint/ack/en/")
    assert angry.template_id is not None and angry.template_id.startswith("complaint/angry_ack/en/")
    assert (
        angry.priority > calm.priority > decide(mention(), classified("price_question"), playbooks, mastodon()).priority
    )
    assert calm.urgent and angry.urgent
    assert calm.direct_text is not None and calm.direct_text.startswith("@jane_doe ")


@pytest.mark.parametrize(
    ("situation", "text", "template"),
    [
        ("simple_question", "hi @acme I forgot my password, what now?", "simple_question/faq_password/en/"),
        ("simple_question", "@acme как восстановить пароль?", "simple_question/faq_password/ru/"),
        ("simple_question", "@acme how do I turn dark mode off?", "simple_question/move_private/en/"),
        ("other", "@acme thanks, the new version is great", "other/praise_thanks/en/"),
        ("other", "@acme love it, but please add a dark mode", "other/idea_thanks/en/"),
        ("other", "@acme спасибо, всё работает отлично", "other/praise_thanks/ru/"),
        ("other", "@acme شكرا على الخدمة", "other/praise_thanks/ar/"),
        ("other", "@acme ada saran: tambahin mode gelap dong", "other/idea_thanks/id/"),
    ],
)
def test_keyword_rules_pick_the_answer(playbooks: Playbooks, situation: str, text: str, template: str) -> None:
    lang = template.split("/")[2]
    decision = decide(mention(text), classified(situation, lang), playbooks, mastodon())
    assert decision.action is Action.REPLY
    assert decision.template_id is not None and decision.template_id.startswith(template)


@pytest.mark.parametrize(
    ("post", "result", "ctx", "action", "reason"),
    [
        (
            mention(id="7"),
            classified("complaint"),
            mastodon(own_account_ids=frozenset({"7"})),
            Action.IGNORE,
            "brand's own post",
        ),
        (
            mention(handle="Acme"),
            classified("complaint"),
            mastodon(),
            Action.IGNORE,
            "brand's own post",
        ),
        (
            mention(),
            classified("complaint", opt_out=True),
            mastodon(),
            Action.RECORD,
            "no automated replies",
        ),
        (
            mention(),
            classified("complaint"),
            mastodon(author_opted_out=True),
            Action.RECORD,
            "no automated replies",
        ),
        (mention(is_bot=True), classified("complaint"), mastodon(), Action.RECORD, "bot"),
        (mention(), classified("contact_request", bot_like=True), mastodon(), Action.RECORD, "bot"),
        (
            dataclasses.replace(mention(), mentions_brand=False),
            classified("complaint"),
            mastodon(),
            Action.RECORD,
            "does not address the brand",
        ),
        # The brand's own post wins over everything else.
        (
            mention(id="7", is_bot=True),
            classified("complaint", opt_out=True),
            mastodon(own_account_ids=frozenset({"7"})),
            Action.IGNORE,
            "brand's own post",
        ),
    ],
)
def test_guards_win_over_the_playbook(
    playbooks: Playbooks,
    post: Mention,
    result: Classification,
    ctx: Context,
    action: Action,
    reason: str,
) -> None:
    decision = decide(post, result, playbooks, ctx)
    assert decision.action is action
    assert decision.reply_text is None and decision.direct_text is None
    assert not decision.needs_approval  # nothing to approve: these authors get no automated reply
    assert decision.reason.startswith("guard: ") and reason in decision.reason


def test_past_the_replies_per_hour_limit_the_reply_waits_for_a_person(playbooks: Playbooks) -> None:
    below = decide(mention(), classified("complaint"), playbooks, mastodon(recent_replies_to_author=2))
    assert below.action is Action.REPLY and not below.needs_approval
    capped = decide(mention(), classified("complaint"), playbooks, mastodon(recent_replies_to_author=3))
    assert capped.action is Action.REPLY and capped.needs_approval
    assert capped.reply_text == below.reply_text  # drafted, so the person only has to approve it
    assert capped.reason.startswith("guard: 3 automated replies to this author in the last hour (limit 3)")
    assert capped.urgent
    trolling = decide(mention(), classified("trolling"), playbooks, mastodon(recent_replies_to_author=9))
    assert trolling.action is Action.RECORD and trolling.reply_text is None


@pytest.mark.parametrize(
    ("situation", "action"),
    [("complaint", Action.REPLY), ("trolling", Action.RECORD), ("other", Action.RECORD)],
)
def test_low_confidence_goes_to_a_person(playbooks: Playbooks, situation: str, action: Action) -> None:
    decision = decide(mention(POSTS[situation]), classified(situation, confidence=0.4), playbooks, mastodon())
    assert decision.action is action  # chatter we are unsure of is kept for a person, not dropped
    assert decision.needs_approval
    assert "confidence 0.40 is below 0.55" in decision.reason
    sure = decide(mention(POSTS[situation]), classified(situation, confidence=0.56), playbooks, mastodon())
    assert not sure.needs_approval


@pytest.mark.parametrize(
    ("text", "situation", "doubt"),
    [
        ("thanks for the super fast delivery, only took a month 🙄 @acme", "other", "sarcasm?"),
        ("is this still on sale? the app keeps showing an error @acme", "price_question", "complaint probability"),
    ],
)
def test_the_classifiers_doubt_sends_a_confident_post_to_a_person(
    playbooks: Playbooks, text: str, situation: str, doubt: str
) -> None:
    result = classified(situation, confidence=0.95, doubt=f"{doubt}: a person checks")
    decision = decide(mention(text), result, playbooks, mastodon())
    assert decision.needs_approval  # never thanked or answered on its own
    assert doubt in decision.reason and "below" not in decision.reason


def test_the_playbook_threshold_and_approval_override_the_core(playbooks: Playbooks) -> None:
    strict = dataclasses.replace(playbooks["price_question"], min_confidence=0.95)
    custom = Playbooks({**playbooks.by_situation, "price_question": strict})
    assert decide(mention(), classified("price_question", confidence=0.9), custom, mastodon()).needs_approval
    required = dataclasses.replace(playbooks["contact_request"], approval_required=True)
    custom = Playbooks({**playbooks.by_situation, "contact_request": required})
    decision = decide(mention(), classified("contact_request"), custom, mastodon())
    assert decision.action is Action.REPLY and decision.reply_text and decision.needs_approval
    assert "approve every reply" in decision.reason


def test_the_same_mention_always_gets_the_same_decision(playbooks: Playbooks) -> None:
    first = decide(mention(post_id="555"), classified("complaint", "ru"), playbooks, mastodon())
    again = decide(mention(post_id="555"), classified("complaint", "ru"), playbooks, mastodon())
    assert first == again
    spread = {
        decide(mention(post_id=str(n)), classified("complaint", "ru"), playbooks, mastodon()).template_id
        for n in range(40)
    }
    assert len(spread) >= 3  # different posts get different wordings


@pytest.mark.parametrize("ctx", [mastodon(), x()], ids=["mastodon", "x"])
def test_never_the_same_template_twice_in_a_row_to_one_author(playbooks: Playbooks, ctx: Context) -> None:
    for n in range(20):
        post = mention(post_id=f"9{n}")
        first = decide(post, classified("contact_request"), playbooks, ctx)
        second = decide(
            post,
            classified("contact_request"),
            playbooks,
            dataclasses.replace(ctx, last_template_for_author=first.template_id),
        )
        assert second.template_id != first.template_id and second.reply_text != first.reply_text
        assert second.action is Action.REPLY and not second.needs_approval


def test_the_variant_must_fit_the_platform_limit(playbooks: Playbooks) -> None:
    texts = playbooks["complaint"].templates["ack"]["en"]
    rendered = sorted(
        (
            len(t.replace("{support_email}", BRAND.support_email).replace("{brand}", BRAND.name)) + len("@jane_doe "),
            i,
        )
        for i, t in enumerate(texts)
    )
    shortest_length, shortest = rendered[0]
    tight = mastodon(max_characters=shortest_length)
    decision = decide(mention(), classified("complaint"), playbooks, tight)
    assert decision.template_id == f"complaint/ack/en/{shortest}"
    assert decision.reply_text is not None and len(decision.reply_text) == shortest_length
    assert not decision.needs_approval
    # Only the wording this author got last time fits: a person decides whether to repeat it.
    repeat = decide(
        mention(),
        classified("complaint"),
        playbooks,
        dataclasses.replace(tight, last_template_for_author=decision.template_id),
    )
    assert repeat.action is Action.REPLY and repeat.needs_approval and repeat.template_id == decision.template_id
    # Nothing fits: never truncated, never over the limit; kept for a person.
    none_fits = decide(mention(), classified("complaint"), playbooks, mastodon(max_characters=shortest_length - 1))
    assert none_fits.action is Action.RECORD and none_fits.needs_approval and none_fits.reply_text is None
    assert "fits" in none_fits.reason
    assert none_fits.urgent  # still a complaint: first in the queue


def test_the_private_follow_up_is_dropped_when_it_does_not_fit(playbooks: Playbooks) -> None:
    complaint = playbooks["complaint"]
    long_followup = {lang: tuple(f"{n} " + "word " * 120 for n in range(3)) for lang in LANGUAGES}
    wordy = dataclasses.replace(complaint, templates={**complaint.templates, "dm_followup": long_followup})
    custom = Playbooks({**playbooks.by_situation, "complaint": wordy})
    decision = decide(mention(), classified("complaint"), custom, mastodon())
    assert decision.action is Action.REPLY and decision.reply_text and decision.direct_text is None
    assert not decision.needs_approval  # the public acknowledgement still goes out at once
    assert "private follow-up left out" in decision.reason


def test_without_a_help_page_or_links_no_reply_names_one(playbooks: Playbooks) -> None:
    no_page = dataclasses.replace(BRAND, support_url=None)
    for n in range(30):
        for ctx in (mastodon(brand=no_page), x(), x(brand=no_page)):
            decision = decide(mention(post_id=str(n)), classified("price_question"), playbooks, ctx)
            assert decision.reply_text is not None and "http" not in decision.reply_text
            assert "{" not in template_text(playbooks, decision.template_id or "").replace(
                "{support_email}", ""
            ).replace("{brand}", "").replace("{support_channels}", "")


def test_an_unknown_language_falls_back_to_the_brand_default(playbooks: Playbooks) -> None:
    russian_brand = dataclasses.replace(BRAND, default_language="ru")
    decision = decide(mention(), classified("contact_request", "fr"), playbooks, mastodon(brand=russian_brand))
    assert decision.template_id is not None and "/ru/" in decision.template_id


@pytest.mark.parametrize(
    "handle",
    ["<b>jane</b>", "日本", "", "None@", "victim@evil.example https://evil.example/x", "@victim@evil.example"],
)
def test_a_handle_that_is_not_the_platforms_syntax_goes_to_a_person(playbooks: Playbooks, handle: str) -> None:
    decision = decide(mention(handle=handle), classified("contact_request"), playbooks, mastodon())
    assert decision.action is Action.RECORD and decision.needs_approval and decision.reply_text is None
    assert "handle is missing or not a valid mastodon handle" in decision.reason


@pytest.mark.parametrize("handle", ["jane", "Dewi_99", "boris@mastodon.social", "a.b-c@x.example"])
def test_a_valid_handle_is_addressed(playbooks: Playbooks, handle: str) -> None:
    decision = decide(mention(handle=handle), classified("contact_request"), playbooks, mastodon())
    assert decision.reply_text is not None and decision.reply_text.startswith(f"@{handle} ")


def test_decisions_are_plain_values(playbooks: Playbooks) -> None:
    decision = decide(
        mention(),
        classified("complaint", personal_data=(PersonalData("email", 0, 5),)),
        playbooks,
        mastodon(),
    )
    assert isinstance(decision, Decision)
    assert dataclasses.replace(decision) == decision
