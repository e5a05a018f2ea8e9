"""Language detection: the four languages in the shapes real posts take, others fall back."""

from __future__ import annotations

import pytest

from bot.classifier import detect_language


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@AcmeTel my internet has been down since this morning, what is going on?", "en"),
        ("ur app keeps crashing smh", "en"),
        ("how much is the family plan per month?", "en"),
        ("@AcmeTel почему опять не работает интернет??", "ru"),
        ("Подскажите, как подключить роуминг", "ru"),
        ("инет тупит третий день, задолбали", "ru"),
        ("kok sinyal lemot bgt sih min, udah 3 hari", "id"),
        ("min, paket data aku gak masuk padahal pulsa udah kepotong", "id"),
        ("@AcmeTel tolong dong login error terus di app nya", "id"),
        ("berapa harga paket unlimited sebulan?", "id"),
        ("النت فاصل من امس ليش كذا", "ar"),
        ("كم سعر باقة الانترنت الشهرية؟", "ar"),
        ("@AcmeTel الشبكة زفت 😡 Wi-Fi ما يشتغل", "ar"),
        ("privet, pochemu u menya ne rabotaet internet uzhe dva dnya", "ru"),
        ("ana 3ayez a3raf leh el net msh shaghal", "ar"),
    ],
)
def test_detects_the_four_languages(text: str, expected: str) -> None:
    lang, confidence = detect_language(text, default="en")
    assert lang == expected
    assert 0.0 < confidence <= 1.0


@pytest.mark.parametrize(
    "text",
    [
        "Bonjour, pourquoi ma connexion ne marche pas depuis hier ?",
        "Hola, tengo un problema con mi factura, no funciona nada",
        "Warum ist das Internet schon wieder weg? Das ist nicht normal",
        "Чому у мене знову не працює інтернет? Це вже третій день",
        "我的网络怎么又断了",
        "چرا اینترنت من کار نمی‌کند؟ پیگیری کنید",
    ],
)
@pytest.mark.parametrize("default", ["en", "id", "ru", "ar"])
def test_other_languages_fall_back_to_the_default(text: str, default: str) -> None:
    assert detect_language(text, default=default)[0] == default


@pytest.mark.parametrize("text", ["", "   ", "@AcmeTel", "👍👍", "http://url", "12345"])
def test_posts_without_words_get_the_default_with_low_confidence(text: str) -> None:
    lang, confidence = detect_language(text, default="id")
    assert lang == "id"
    assert confidence < 0.5


def test_handles_and_links_do_not_decide_the_language() -> None:
    text = "@the_internet_company @support http://example.com/what/is/this ini kenapa lemot banget"
    assert detect_language(text, default="en")[0] == "id"
