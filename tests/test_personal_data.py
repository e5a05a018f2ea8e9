"""Personal data: what a public reply must never repeat, found with exact spans."""

from __future__ import annotations

from itertools import pairwise

import pytest

from bot.classifier import PersonalData, find_personal_data, mask_personal_data


def kinds(text: str) -> list[tuple[str, str]]:
    return [(item.kind, text[item.start : item.end]) for item in find_personal_data(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write me at jane.doe+care@example.co.uk please", [("email", "jane.doe+care@example.co.uk")]),
        ("мой email: ivan_petrov@mail.ru", [("email", "ivan_petrov@mail.ru")]),
        ("call me on +44 7700 900123 asap", [("phone", "+44 7700 900123")]),
        ("звоните +7 (912) 345-67-89", [("phone", "+7 (912) 345-67-89")]),
        ("мой номер 8 912 345 67 89", [("phone", "8 912 345 67 89")]),
        ("hubungi aku di 0812-3456-7890 ya min", [("phone", "0812-3456-7890")]),
        ("wa +62 812 3456 7890", [("phone", "+62 812 3456 7890")]),
        ("رقم جوالي 0551234567", [("phone", "0551234567")]),
        ("جوالي ٠٥٥١٢٣٤٥٦٧ اتصلوا", [("phone", "٠٥٥١٢٣٤٥٦٧")]),
        ("call (415) 555-2671 after 5", [("phone", "(415) 555-2671")]),
        ("charged twice on 4111 1111 1111 1111!!", [("card", "4111 1111 1111 1111")]),
        ("card 5500-0000-0000-0004 declined", [("card", "5500-0000-0000-0004")]),
        ("order #A12345 never arrived", [("order", "A12345")]),
        ("order number 112-4567890-1234567 is late", [("order", "112-4567890-1234567")]),
        ("booking ref XKQWPL, flight cancelled", [("order", "XKQWPL")]),
        ("заказ 123456789 не пришел", [("order", "123456789")]),
        ("лицевой счет 5012345678 заблокирован", [("order", "5012345678")]),
        ("no resi JNE0012345678 belum sampai", [("order", "JNE0012345678")]),
        ("rekening 1234567890 kepotong dua kali", [("order", "1234567890")]),
        ("رقم الطلب ١٢٣٤٥٦ ما وصل", [("order", "١٢٣٤٥٦")]),
        ("still waiting for #7788991", [("order", "7788991")]),
        ("deliver to 221 Baker Street, Apt 4B please", [("address", "221 Baker Street, Apt 4B")]),
        ("адрес: ул. Ленина, д. 5, кв. 12", [("address", "ул. Ленина, д. 5, кв. 12")]),
        ("kirim ke Jl. Sudirman No. 5 RT 03/RW 04", [("address", "Jl. Sudirman No. 5 RT 03/RW 04")]),
    ],
)
def test_finds_each_kind_with_its_span(text: str, expected: list[tuple[str, str]]) -> None:
    assert kinds(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "@AcmeTel my internet is down",
        "@jane@mastodon.social thanks!",
        "paid 1.500.000 for this?",
        "harganya Rp 1.500.000 mahal bgt",
        "тариф 8 500 000 руб в год? серьёзно",
        "flight on 2024-05-12 was late",
        "card 4111 1111 1111 1112 (not a real number)",
        "my order never arrived",
        "my BOOKING FAILED again",
        "ticket 2 hours wait",
        "since 2019 a customer",
        "i paid $49.99 for 3 months",
    ],
)
def test_no_personal_data_in_ordinary_posts(text: str) -> None:
    assert find_personal_data(text) == ()


def test_spans_are_sorted_and_do_not_overlap() -> None:
    text = "order 99887766 for a@b.io, card 4111111111111111, phone +1 202 555 0143"
    found = find_personal_data(text)
    assert [item.kind for item in found] == ["order", "email", "card", "phone"]
    assert all(a.end <= b.start for a, b in pairwise(found))
    assert all(isinstance(item, PersonalData) for item in found)


def test_mask_replaces_every_span_with_its_kind() -> None:
    text = "I'm jane@example.com, +7 912 345 67 89, card 4111 1111 1111 1111, order #5566778"
    assert mask_personal_data(text) == "I'm [email], [phone], card [card], order #[order]"


def test_mask_leaves_clean_text_alone() -> None:
    assert mask_personal_data("no personal data here 🙂") == "no personal data here 🙂"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # US numbers written the usual ways, with or without a cue word.
        ("@AcmeTel call me 415-867-5309", [("phone", "415-867-5309")]),
        ("@AcmeTel 415 867 5309 is my cell, nobody called back", [("phone", "415 867 5309")]),
        ("my number is 415-555-0134", [("phone", "415-555-0134")]),
        ("text me at 415.555.0134 pls", [("phone", "415.555.0134")]),
        ("reach me on +1 415 555 0134", [("phone", "+1 415 555 0134")]),
        # Russian, Indonesian and Saudi formats.
        ("перезвоните мне 8 (912) 345-67-89", [("phone", "8 (912) 345-67-89")]),
        ("мой номер 89123456789", [("phone", "89123456789")]),
        ("tolong telp ke 081234567890 ya", [("phone", "081234567890")]),
        ("wa ke +62 812-3456-7890 min", [("phone", "+62 812-3456-7890")]),
        ("اتصلوا على +966 55 123 4567", [("phone", "+966 55 123 4567")]),
        ("جوالي 0551234567 كلموني", [("phone", "0551234567")]),
        # Emails spelled out to dodge filters.
        ("email me: jane at example dot org", [("email", "jane at example dot org")]),
        ("write to jane.doe [at] example [dot] com", [("email", "jane.doe [at] example [dot] com")]),
        ("пишите ivan собака mail точка ru", [("email", "ivan собака mail точка ru")]),
        ("kirim ke budi at gmail dot com ya", [("email", "budi at gmail dot com")]),
        # IBANs (checked with their mod-97 digits) and identity numbers next to their cue words.
        ("refund to DE89 3704 0044 0532 0130 00 please", [("iban", "DE89 3704 0044 0532 0130 00")]),
        ("ايبان SA03 8000 0000 6080 1016 7519", [("iban", "SA03 8000 0000 6080 1016 7519")]),
        ("my passport number is 533380006", [("id_number", "533380006")]),
        ("SSN 123-45-6789 was on the form", [("id_number", "123-45-6789")]),
        ("паспорт 4509 123456, что ещё нужно?", [("id_number", "4509 123456")]),
        ("СНИЛС 123-456-789 01 указал", [("id_number", "123-456-789 01")]),
        ("NIK 3174012345678901 udah aku kirim", [("id_number", "3174012345678901")]),
        ("رقم الهوية 1012345678 ولا زال الطلب معلق", [("id_number", "1012345678")]),
    ],
)
def test_finds_phones_spelled_emails_ibans_and_identity_numbers(text: str, expected: list[tuple[str, str]]) -> None:
    assert kinds(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "harganya Rp 1.500.000 mahal banget",
        "total belanja Rp1.299.000 kok ditagih dua kali",
        "тариф 1 500 ₽ в месяц, серьёзно?",
        "заказ на 12 500 000 рублей для офиса",
        "it was $1,299.00 last week",
        "order total 1,234.56 USD",
        "السعر 1,500 ريال كثير",
        "DE89 3704 0044 0532 0130 01 is not a real IBAN",
        "what does at the end dot mean",
        "my sim card is not working",
    ],
)
def test_prices_totals_and_lookalikes_are_not_personal_data(text: str) -> None:
    assert find_personal_data(text) == ()


def test_masking_hides_the_new_kinds() -> None:
    text = "call me 415-867-5309 or jane at example dot org, IBAN GB29 NWBK 6016 1331 9268 19"
    assert mask_personal_data(text) == "call me [phone] or [email], IBAN [iban]"
