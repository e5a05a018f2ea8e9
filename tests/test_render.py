from __future__ import annotations

import re

import pytest

from bot.config import Brand
from bot.decide.playbooks import load_playbooks
from bot.decide.render import render, sanitise_handle, support_channels, template_problems, usable, variants
from bot.models import LANGUAGES
from connectors import mastodon_limits, x_text

WITH_PAGE = Brand(
    name="Acme Mobile",
    support_email="support@acme-mobile.example",
    support_url="https://help.acme-mobile.example/contact",
)
WITHOUT_PAGE = Brand(name="Acme Mobile", support_email="support@acme-mobile.example")
HANDLE_30 = "a_rather_long_handle_for_test1"  # the longest handle X allows is 15; Mastodon's is 30
SCRIPTS = {
    "ru": re.compile(r"[А-Яа-яЁё]"),
    "ar": re.compile(r"[\u0600-\u06ff]"),
}


def shipped_variants() -> list[tuple[str, str]]:
    playbooks = load_playbooks()
    return [
        (f"{situation}/{name}/{lang}/{i}", text)
        for situation, playbook in playbooks.by_situation.items()
        for name, by_lang in playbook.templates.items()
        for lang, texts in by_lang.items()
        for i, text in enumerate(texts)
    ]


@pytest.mark.parametrize("brand", [WITH_PAGE, WITHOUT_PAGE], ids=["with-page", "email-only"])
@pytest.mark.parametrize("prefer_links", [True, False], ids=["links", "no-links"])
def test_every_shipped_variant_renders_within_280_with_a_30_char_handle(brand: Brand, prefer_links: bool) -> None:
    checked = 0
    for template_id, template in shipped_variants():
        if not usable(template, brand, prefer_links):
            continue
        lang = template_id.split("/")[2]
        text = render(template, brand, HANDLE_30, lang, prefer_links)
        assert text.startswith(f"@{HANDLE_30} "), template_id
        assert "{" not in text and "}" not in text, template_id
        assert "<" not in text and ">" not in text, template_id
        assert len(text) <= 280, (template_id, len(text))
        assert x_text.text_length(text) <= 280, template_id
        assert mastodon_limits.text_length(text) <= 500, template_id
        if lang in SCRIPTS:
            assert SCRIPTS[lang].search(text), template_id
        if not prefer_links or brand.support_url is None:
            assert "http" not in text, template_id
        checked += 1
    assert checked > 100


def test_a_variant_naming_the_help_page_is_skipped_without_one_or_without_links() -> None:
    templates = ["See {support_url}.", "Write to {support_email}.", "Reach us: {support_channels}."]
    assert [v.index for v in variants(templates, WITH_PAGE, "jo", "en", prefer_links=True)] == [0, 1, 2]
    assert [v.index for v in variants(templates, WITH_PAGE, "jo", "en", prefer_links=False)] == [1, 2]
    assert [v.index for v in variants(templates, WITHOUT_PAGE, "jo", "en", prefer_links=True)] == [1, 2]
    with pytest.raises(ValueError):
        render(templates[0], WITHOUT_PAGE, "jo", "en", prefer_links=True)


@pytest.mark.parametrize(
    ("lang", "brand", "prefer_links", "expected"),
    [
        (
            "en",
            WITH_PAGE,
            True,
            "email support@acme-mobile.example or https://help.acme-mobile.example/contact",
        ),
        ("en", WITH_PAGE, False, "email support@acme-mobile.example"),
        ("en", WITHOUT_PAGE, True, "email support@acme-mobile.example"),
        (
            "ru",
            WITH_PAGE,
            True,
            "почта support@acme-mobile.example или страница https://help.acme-mobile.example/contact",
        ),
        ("ru", WITHOUT_PAGE, True, "почта support@acme-mobile.example"),
        (
            "id",
            WITH_PAGE,
            True,
            "email support@acme-mobile.example atau https://help.acme-mobile.example/contact",
        ),
        ("ar", WITHOUT_PAGE, False, "البريد الإلكتروني support@acme-mobile.example"),
        ("fr", WITHOUT_PAGE, True, "email support@acme-mobile.example"),  # unknown language: English
    ],
)
def test_support_channels_read_naturally_per_language(
    lang: str, brand: Brand, prefer_links: bool, expected: str
) -> None:
    assert support_channels(brand, lang, prefer_links) == expected
    rendered = render("Reach us: {support_channels}.", brand, "jo", lang, prefer_links)
    assert rendered == f"@jo Reach us: {expected}."


@pytest.mark.parametrize(
    ("handle", "expected"),
    [
        ("jane", "jane"),
        ("@jane", "jane"),
        ("jane@mastodon.example", "jane@mastodon.example"),
        ("Jane_Doe-99", "Jane_Doe-99"),
        ("<b>jane</b>", "bjaneb"),
        ("[jane](https://evil.example)", "janehttpsevil.example"),
        ("ja ne\n*x*", "janex"),
    ],
)
def test_the_handle_is_reduced_to_safe_characters(handle: str, expected: str) -> None:
    assert sanitise_handle(handle) == expected
    assert render("Thanks!", WITHOUT_PAGE, handle, "en", True) == f"@{expected} Thanks!"


def test_a_handle_with_nothing_safe_left_is_refused() -> None:
    with pytest.raises(ValueError):
        render("Thanks!", WITHOUT_PAGE, "日本語", "en", True)


def test_brand_values_are_inserted_once_not_read_as_placeholders() -> None:
    brand = Brand(name="{support_email} & {0}", support_email="help@x.example")
    assert render("From {brand}.", brand, "jo", "en", True) == "@jo From {support_email} & {0}."


def test_template_problems_name_unknown_placeholders_and_stray_braces() -> None:
    assert template_problems("Hi from {brand}, write to {support_email}.") == []
    assert any("{handle}" in p for p in template_problems("Hi {handle}"))
    assert any("brace" in p for p in template_problems("Hi {brand"))
    assert all(not template_problems(text) for _, text in shipped_variants())


@pytest.mark.parametrize(
    "template",
    [
        "Write to help@acme.example.",
        "See https://acme.example/help.",
        "Hi @jane, thanks.",
        "We apologise for any inconvenience caused.",
        "Приносим извинения за доставленные неудобства.",
        "Mohon maaf atas ketidaknyamanan ini.",
        "نعتذر عن الإزعاج",
    ],
)
def test_contacts_written_out_and_stock_phrases_are_refused(template: str) -> None:
    assert template_problems(template)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_rendered_spacing_is_tidy(lang: str) -> None:
    assert render("  Thanks   from {brand}.  ", WITHOUT_PAGE, "jo", lang, True) == "@jo Thanks from Acme Mobile."
