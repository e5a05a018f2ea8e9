from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests

from connectors.mastodon_limits import RateHeaders, parse_reset, retry_after, text_length

NOW = datetime(2025, 3, 14, 9, 30, 0, tzinfo=UTC)
HTTP_NOW = "Fri, 14 Mar 2025 09:30:00 GMT"


@pytest.mark.parametrize(
    ("text", "length"),
    [
        ("", 0),
        ("hello", 5),
        ("https://example.com", 23),
        ("see https://example.com/a/very/long/path/that/goes/on/and/on?x=1&y=2#frag now", 4 + 23 + 4),
        ("short http://a.io", 6 + 23),
        ("two https://a.io https://b.io", 4 + 23 + 1 + 23),
        ("end of sentence https://a.io/x.", 16 + 23 + 1),  # the full stop is not part of the URL
        ("(see https://en.wikipedia.org/wiki/Foo_(bar))", 5 + 23 + 1),
        ("example.com without protocol", 28),  # only http(s) URLs get the concession
        ("@alice hi", 9),
        ("@alice@mastodon.social hi", 9),
        ("@alice@mastodon.social @bob@x.example", 11),
        ("mail me at help@shop.example", 28),  # an email address is not a mention
        ("Спасибо за ожидание", 19),
        ("شكرا لك", 7),
        ("😡👍", 2),
    ],
)
def test_text_length_counts_like_mastodon(text: str, length: int) -> None:
    assert text_length(text) == length


def test_a_500_character_limit_admits_a_long_url_in_a_short_reply() -> None:
    url = "https://help.shop.example/" + "a" * 600
    assert len(url) > 500
    assert text_length(f"@alice@mastodon.social Here is how: {url}") == len("@alice Here is how: ") + 23


@pytest.mark.parametrize(
    ("header", "moment"),
    [
        ("1741944605", NOW + timedelta(seconds=5)),  # epoch seconds (the mock, GoToSocial)
        ("1741944605.5", NOW + timedelta(seconds=5.5)),
        ("2025-03-14T09:30:05.000000Z", NOW + timedelta(seconds=5)),  # real Mastodon
        ("2025-03-14T09:30:05+00:00", NOW + timedelta(seconds=5)),
        ("2025-03-14T12:30:05+03:00", NOW + timedelta(seconds=5)),
        ("2025-03-14T09:30:05", NOW + timedelta(seconds=5)),  # no zone: UTC
        ("", None),
        (None, None),
        ("soon", None),
    ],
)
def test_reset_header_in_both_formats(header: str | None, moment: datetime | None) -> None:
    assert parse_reset(header) == moment


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"X-RateLimit-Reset": "2025-03-14T09:30:05.000000Z", "Date": HTTP_NOW}, 5),
        ({"x-ratelimit-reset": "1741944605", "date": HTTP_NOW}, 5),
        ({"X-RateLimit-Reset": "1741944605"}, 5),  # no Date: our clock
        ({"X-RateLimit-Reset": "1741944600"}, 1),  # already passed: at least a second
        ({"X-RateLimit-Reset": "1741944000"}, 1),
        ({"X-RateLimit-Reset": "1900000000"}, 24 * 3600),  # absurd: at most a day
        ({"Retry-After": "30"}, 30),
        ({"Retry-After": "Fri, 14 Mar 2025 09:31:00 GMT"}, 60),
        ({"X-RateLimit-Reset": "1741944605", "Retry-After": "300"}, 5),  # the reset header wins
        ({}, 60),  # the server said nothing: a minute
        ({"Retry-After": "later"}, 60),
    ],
)
def test_retry_after(headers: dict[str, str], seconds: float) -> None:
    assert retry_after(headers, NOW) == pytest.approx(seconds)


def test_retry_after_measures_against_the_servers_clock() -> None:
    # The server's clock is 10 minutes ahead of ours; its reset is 5 s away on its clock.
    headers = {"X-RateLimit-Reset": "2025-03-14T09:40:05Z", "Date": "Fri, 14 Mar 2025 09:40:00 GMT"}
    assert retry_after(headers, NOW) == pytest.approx(5)


def _answer(method: str, remaining: int, limit: int, reset: datetime) -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    response.request = requests.Request(method, "https://social.example/api/v1/statuses").prepare()
    response.headers.update(
        {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": reset.isoformat(),
        }
    )
    return response


def test_a_posts_answer_that_describes_the_general_limit_counts_for_reads_too() -> None:
    """A server with one limit for all requests answers a post with that limit's headers: what it says is
    left is what is left for reads too, even when a read's answer, sent earlier, arrives later."""
    rate = RateHeaders()
    reset = datetime.now(UTC) + timedelta(seconds=60)
    rate.observe(_answer("GET", 9, 12, reset))
    for remaining in (8, 7, 6, 4, 3):
        rate.observe(_answer("POST", remaining, 12, reset))
    rate.observe(_answer("GET", 5, 12, reset))  # processed between the posts, answered after them all
    assert rate.budget().remaining == 3  # counting the posts from the first read's 9 would say 4


def test_a_posting_limit_of_its_own_leaves_the_general_budget_counted_by_hand() -> None:
    """Real Mastodon answers a post with its posting limit (300 per 3 h): the general budget loses one
    request per post, and the posting budget is what the post's headers say."""
    rate = RateHeaders()
    now = datetime.now(UTC)
    rate.observe(_answer("GET", 250, 300, now + timedelta(minutes=4)))
    rate.observe(_answer("POST", 280, 300, now + timedelta(hours=2)))
    assert (rate.budget().remaining, rate.budget(write=True).remaining) == (249, 280)
