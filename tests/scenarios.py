"""Mentions the end-to-end tests post, on any platform: every situation in every language.

Written for these tests, and clear cases only: the classifier's quality on messy real posts is
measured by `carebot eval`, not here. `{brand}` is the brand's handle on the platform.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Scenario:
    customer: str
    text: str
    situation: str
    lang: str

    def for_brand(self, handle: str) -> str:
        return self.text.format(brand=handle)


POSTS: tuple[Scenario, ...] = (
    Scenario("alice", "@{brand} how can I contact your support team? is there an email?", "contact_request", "en"),
    Scenario("alice", "@{brand} does the app have a dark mode?", "simple_question", "en"),
    Scenario(
        "alice",
        "@{brand} my order never arrived and I was charged twice! email me at alice.w@example.org "
        "or call +1 415 555 0134",
        "complaint",
        "en",
    ),
    Scenario(
        "alice",
        "@{brand} why is the premium plan so expensive? any discount for students?",
        "price_question",
        "en",
    ),
    Scenario("alice", "@{brand} you are all clowns lol, worst brand ever, go cry", "trolling", "en"),
    Scenario("boris", "@{brand} как связаться со службой поддержки? дайте почту", "contact_request", "ru"),
    Scenario(
        "boris",
        "@{brand} приложение не работает третий день, деньги списали, а доступа нет!!!",
        "complaint",
        "ru",
    ),
    Scenario("boris", "@{brand} почему так дорого? есть скидки для студентов?", "price_question", "ru"),
    Scenario(
        "dewi",
        "@{brand} aplikasinya error terus dari kemarin, gak bisa login sama sekali, tolong",
        "complaint",
        "id",
    ),
    Scenario("dewi", "@{brand} kak, cara menghubungi customer service gimana ya?", "contact_request", "id"),
    Scenario("layla", "@{brand} الطلب وصلني ناقص وما حد يرد علي، ابغى حل اليوم", "complaint", "ar"),
    Scenario("layla", "@{brand} كيف اتواصل مع خدمة العملاء؟", "contact_request", "ar"),
)
ANSWERED = {"contact_request", "simple_question", "complaint", "price_question"}
PERSONAL_DATA = ("alice.w@example.org", "415 555 0134", "+1 415")
SCRIPTS = {"ru": re.compile(r"[\u0400-\u04ff]"), "ar": re.compile(r"[\u0600-\u06ff]")}
