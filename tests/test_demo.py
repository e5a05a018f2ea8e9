"""`carebot demo`, the README's first command: it runs end to end and shows what the bot did."""

from __future__ import annotations

import pytest

from bot.cli.demo import POSTS, run_demo


def test_demo_answers_every_situation_and_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_demo() == 0
    out = capsys.readouterr().out
    for post in POSTS:
        assert post.text in out
    for situation in ("contact_request", "simple_question", "complaint", "price_question", "trolling", "other"):
        assert f"situation {situation}" in out
    for lang in ("en", "ru", "id", "ar"):
        assert f"language {lang}" in out
    assert "public reply [sent]: @boris" in out
    assert "alice.w@example.org" not in out.split("alice.w@example.org", 1)[1]  # quoted once, never echoed
