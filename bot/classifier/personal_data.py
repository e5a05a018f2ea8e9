"""Personal data in a post: emails (also spelled out: "jane at example dot org"), phone numbers (US, RU,
ID and SA formats among others), card numbers, IBANs, passport and national id numbers (by their cue
words), order/booking/account numbers, street addresses. Found so a public reply never repeats them,
the author can be warned, and stored texts can be masked. Prices and order totals are not numbers of
a person: "Rp 1.500.000", "1 500 ₽", "$1,299.00" are left alone."""

from __future__ import annotations

import re
from dataclasses import dataclass

KINDS: tuple[str, ...] = ("email", "phone", "card", "iban", "id_number", "order", "address")


@dataclass(frozen=True)
class PersonalData:
    kind: str  # one of KINDS
    start: int
    end: int


# Same length in and out, so spans found in the folded text are spans of the original.
_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")

_ANY_DIGIT = re.compile(r"\d")
_EMAIL = re.compile(r"(?<![@\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}", re.UNICODE)
# "jane at example dot org", "jane [at] example [dot] com", "ivan собака mail точка ru".
_SPELLED_EMAIL = re.compile(
    r"(?<![\w.])[a-z0-9][\w.+-]*\s*(?:\[at\]|\(at\)|\{at\}|\s(?:at|собака|эт)\s)\s*[a-z0-9][\w-]*"
    r"(?:\s*(?:\[dot\]|\(dot\)|\{dot\}|\s(?:dot|точка|titik|نقطه|نقطة)\s|\.)\s*[a-z0-9][\w-]*)*"
    r"\s*(?:\[dot\]|\(dot\)|\{dot\}|\s(?:dot|точка|titik|نقطه|نقطة)\s)\s*[a-z]{2,}\b",
    re.IGNORECASE,
)
_SPELLED_WORD = re.compile(r"\b(?:dot|точка|titik)\b|\[dot\]|\(dot\)|نقط", re.IGNORECASE)
# Country code, check digits, then 11-30 letters and digits, often in groups of four.
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?:[ -]?[A-Z0-9]{2,4}){3,8}(?![A-Za-z0-9])")
# Passport, national id, tax and social security numbers: only next to their cue words.
_ID_NUMBER = re.compile(
    r"(?:passport|passport\s*(?:no|number|#)|national\s*id|id\s*card|identity\s*card|ssn|social\s*security"
    r"(?:\s*number)?|driver'?s?\s*licen[cs]e|паспорт[аеу]?|серия\s*и\s*номер|снилс|инн|загранпаспорт[аеу]?|"
    r"nik|ktp|no\.?\s*ktp|nomor\s*ktp|nomor\s*induk\s*kependudukan|paspor|sim|npwp|"
    r"رقم\s*(?:ال)?هويه|رقم\s*(?:ال)?هوية|(?:ال)?هويه|(?:ال)?هوية|رقم\s*(?:ال)?جواز|(?:ال)?جواز(?:\s*السفر)?|"
    r"(?:ال)?اقامه|(?:ال)?اقامة|السجل\s*المدني)"
    r"\s*(?:no\.?|number|num|#|№|:|-|номер|nomor|رقم)?\s*(?:is|:)?\s*"
    r"(?P<id>(?=[A-Za-z0-9 -]*\d{3})[A-Za-z0-9][A-Za-z0-9-]*(?:[ -][0-9][0-9-]*){0,3}[0-9])(?![\w])",
    re.IGNORECASE,
)
_ID_WORD = re.compile(
    r"passport|national|id card|identity|ssn|social security|licen|паспорт|серия|снилс|инн|nik|ktp|paspor|"
    r"kependudukan|sim|npwp|هوي|جواز|اقام|السجل",
    re.IGNORECASE,
)
# North American numbers written 415-867-5309, 415 867 5309 or 415.867.5309 (one kind of separator).
_NANP = re.compile(r"(?<![\d+])(?:\+?1[ .-])?\(?[2-9]\d{2}\)?([ .-])[2-9]\d{2}\1\d{4}(?!\d)")
# Money around a number: a currency before or after it means a price or a total, not a phone.
_CURRENCY_BEFORE = re.compile(r"(?:rp\.?|idr|usd|us\$|\$|€|£|₽|rub|sar|sr|aed|egp|ريال|جنيه|درهم)\s*$", re.IGNORECASE)
_CURRENCY_AFTER = re.compile(
    r"^\s*(?:₽|руб|р\.|rub|rp|rupiah|ribu|rb|jt|juta|usd|dollars?|\$|€|£|sar|ريال|ر\.س|جنيه|درهم|"
    r"тыс|млн)",
    re.IGNORECASE,
)
_CARD = re.compile(r"(?<![\d+])\d(?:[ -]?\d){12,18}(?!\d)")
_PHONE = re.compile(r"(?<![\w+#№])(?:\+|00)?\(?\d[\d ().-]{7,19}\d(?![\d])")
_PHONE_CUE = re.compile(
    r"(?:phone|tel|mobile|cell|call|whatsapp|wa|hp|telp|nomor|nomer|no\.?\s*hp|телефон|тел\.?|номер|"
    r"звоните|позвоните|رقم|جوال|هاتف|موبايل|واتس)\W{0,3}$",
    re.IGNORECASE,
)
_ORDER_KEYWORDS = (
    r"order(?:\s*(?:no|number|id|num))?|booking(?:\s*(?:ref(?:erence)?|code|no|number|id))?|"
    r"reservation|confirmation(?:\s*(?:code|number|no))?|pnr|ticket(?:\s*(?:no|number|id))?|"
    r"case(?:\s*(?:no|number|id))?|tracking(?:\s*(?:no|number|id|code))?|account(?:\s*(?:no|number|id))?|"
    r"acct|a/c|invoice(?:\s*(?:no|number))?|contract|customer\s*(?:id|no|number)|member(?:ship)?\s*(?:id|no)|"
    r"awb|claim(?:\s*(?:no|number))?|ref(?:erence)?(?:\s*(?:no|number))?|"
    r"номер\s+заказа|заказ[аеу]?|брон[ьи]|бронировани[ея]|код\s+бронирования|билет[аы]?|"
    r"лицево[йм]\s+сч[её]т[аеу]?|л/с|договор[аеу]?|трек(?:-?номер)?|накладн(?:ая|ой)|заявк[аеиу]|"
    r"обращени[еяю]|сч[её]т[аеу]?|аккаунт[аеу]?|"
    r"(?:no\.?|nomor|nomer)\s*(?:pesanan|resi|order|pelanggan|rek(?:ening)?|tiket|booking|invoice|transaksi|akun)|"
    r"pesanan|resi|kode\s*booking|id\s*(?:pelanggan|transaksi|pesanan)|rekening|transaksi|"
    r"رقم\s*(?:ال)?(?:طلب|حجز|حساب|شحنه|شحنة|تذكره|تذكرة|عميل|بلاغ|فاتوره|فاتورة|عقد)|"
    r"(?:ال)?طلب|(?:ال)?حجز|(?:ال)?شحنه|(?:ال)?شحنة|(?:ال)?فاتوره|(?:ال)?فاتورة"
)
_ORDER = re.compile(
    rf"(?:{_ORDER_KEYWORDS})\s*(?:#|№|:|-|no\.?|number|номер|nomor|رقم)?\s*"
    r"(?P<id>(?=[A-Za-z0-9-]*\d)[A-Za-z0-9][A-Za-z0-9-]{4,})",
    re.IGNORECASE,
)
# Airline-style booking references may be letters only, so they need a booking word in front.
_BOOKING_REF = re.compile(
    r"(?:(?:booking|reservation|confirmation|бронь|брони|бронирования|الحجز|حجز)\s*"
    r"(?:ref(?:erence)?|code|number|no|код|номер|رقم)|pnr|код\s+бронирования|kode\s*booking)"
    r"\s*[#:№-]?\s*(?P<id>(?-i:[A-Z0-9]{5,8}))(?!\w)",
    re.IGNORECASE,
)
# The words every _BOOKING_REF match starts with.
_BOOKING_WORD = re.compile(r"booking|reservation|confirmation|брон|حجز|pnr", re.IGNORECASE)
_HASH_NUMBER = re.compile(r"(?:#|№)\s?(?P<id>\d{5,})(?!\d)")
_ADDRESS = re.compile(
    r"\b\d{1,5}\s+(?:[A-Z][\w'-]*\s+){1,3}(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|"
    r"Way|Court|Ct|Place|Pl|Terrace|Close|Crescent)\b\.?(?:,?\s*(?:Apt|Apartment|Unit|Suite|Flat|#)\.?\s*\w+)?"
    r"|(?:ул\.|улица|пр-т|пр\.|проспект|пер\.|переулок|ш\.|шоссе|бульвар|б-р|наб\.|набережная)\s*"
    r"[\w .-]{2,30}?,?\s*(?:д\.|дом)\s*\d+\w*(?:\s*,?\s*(?:кв\.|квартира|корп\.|к\.|стр\.)\s*\d+)*"
    r"|\b(?:Jl\.?|Jln\.?|Jalan|Gg\.?|Gang|Perum(?:ahan)?|Komplek)\s+[\w .'-]{2,40}?"
    r"(?:No\.?|Nomor|Blok)\s*\w+(?:\s*,?\s*(?:RT|RW)\.?\s*\d+(?:\s*/\s*(?:RW\.?\s*)?\d+)?)*"
    r"|(?:شارع|حي)\s+[\u0600-\u06ff ]{2,30}?\s(?:رقم|مبنى|عماره|عمارة|بيت)\s*\d+",
    re.IGNORECASE,
)


def find_personal_data(text: str) -> tuple[PersonalData, ...]:
    """Spans of personal data, in text order, never overlapping."""
    folded = text.translate(_DIGITS)
    # Every kind but emails and letter-only booking references needs a digit; skipping the
    # patterns that cannot match keeps classifying fast (most posts carry no number at all).
    has_digit = _ANY_DIGIT.search(folded) is not None
    has_booking_word = _BOOKING_WORD.search(folded) is not None
    if "@" not in folded and not has_digit and not has_booking_word and not _SPELLED_WORD.search(folded):
        return ()
    found: list[PersonalData] = []

    def add(kind: str, start: int, end: int) -> None:
        if not any(start < item.end and item.start < end for item in found):
            found.append(PersonalData(kind, start, end))

    if "@" in folded:
        for match in _EMAIL.finditer(folded):
            add("email", match.start(), match.end())
    if _SPELLED_WORD.search(folded):
        for match in _SPELLED_EMAIL.finditer(folded):
            add("email", match.start(), match.end())
    if has_digit:
        for match in _IBAN.finditer(folded):
            if _iban_ok(match.group()):
                add("iban", match.start(), match.end())
        for match in _CARD.finditer(folded):
            if _luhn_ok(re.sub(r"\D", "", match.group())):
                add("card", match.start(), match.end())
        if _ID_WORD.search(folded):
            for match in _ID_NUMBER.finditer(folded):
                add("id_number", match.start("id"), match.end("id"))
        for match in _NANP.finditer(folded):
            if not _is_money(folded, match.start(), match.end()):
                add("phone", match.start(), match.end())
        for match in _ORDER.finditer(folded):
            add("order", match.start("id"), match.end("id"))
    if has_booking_word:
        for match in _BOOKING_REF.finditer(folded):
            add("order", match.start("id"), match.end("id"))
    if has_digit:
        for match in _HASH_NUMBER.finditer(folded):
            add("order", match.start("id"), match.end("id"))
        for match in _PHONE.finditer(folded):
            start, end = _trim_phone(folded, match.start(), match.end())
            if _looks_like_phone(folded, start, end) and not _is_money(folded, start, end):
                add("phone", start, end)
        for match in _ADDRESS.finditer(folded):
            add("address", match.start(), match.end())
    return tuple(sorted(found, key=lambda item: item.start))


def mask_personal_data(text: str) -> str:
    """The text with each personal-data span replaced by its kind, e.g. "[email]"."""
    for item in reversed(find_personal_data(text)):
        text = f"{text[: item.start]}[{item.kind}]{text[item.end :]}"
    return text


def _luhn_ok(digits: str) -> bool:
    if not 13 <= len(digits) <= 19 or len(set(digits)) == 1:
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _iban_ok(candidate: str) -> bool:
    """The ISO 13616 check: the rearranged number is 1 modulo 97."""
    compact = re.sub(r"[ -]", "", candidate).upper()
    if not 15 <= len(compact) <= 34 or not compact[:2].isalpha():
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _is_money(text: str, start: int, end: int) -> bool:
    return bool(_CURRENCY_BEFORE.search(text[max(0, start - 6) : start]) or _CURRENCY_AFTER.match(text[end : end + 8]))


def _trim_phone(text: str, start: int, end: int) -> tuple[int, int]:
    # The pattern may swallow an unmatched "(" or trailing separators; keep the number itself.
    while start < end and text[start] in " .-":
        start += 1
    if text[start] == "(" and ")" not in text[start:end]:
        start += 1
    return start, end


def _looks_like_phone(text: str, start: int, end: int) -> bool:
    candidate = text[start:end]
    digits = re.sub(r"\D", "", candidate)
    if not 9 <= len(digits) <= 15:
        return False
    if re.search(r"\d[.,]\d{3}[.,]\d{3}(?!\d)", candidate) and not candidate.startswith("+"):
        return False  # 1.500.000 is an amount, not a phone number
    if re.fullmatch(r"(?:19|20)\d\d[-./](?:0?[1-9]|1[0-2])[-./]\d\d?", candidate.strip()):
        return False
    if candidate.startswith(("+", "00", "(")):
        return True
    if digits[0] in "08" or (digits[0] == "5" and len(digits) == 9):
        return True
    return bool(_PHONE_CUE.search(text[max(0, start - 24) : start]))
