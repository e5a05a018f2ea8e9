"""Language detection for en, ru, id and ar; anything else falls back to the caller's default.

Script decides first (Cyrillic, Arabic); Latin text is told apart by function words and slang,
which survive typos and short posts better than letter statistics do. Russian typed in Latin
letters and Arabizi ("3ayez") are recognised by their own word lists.
"""

from __future__ import annotations

import re

from bot.classifier.text import normalize, strip_handles_and_urls, words

_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_ARABIC = re.compile(r"[\u0600-\u06ff\u0750-\u077f\ufb50-\ufdff\ufe70-\ufeff]")
_LATIN = re.compile(r"[a-zA-Z\u00c0-\u024f]")
_OTHER_SCRIPT = re.compile(r"[\u0370-\u03ff\u0590-\u05ff\u0900-\u0dff\u0e00-\u0e7f\u3040-\u30ff\u4e00-\u9fff\uac00-\ud7af]")
# Letters that Russian never uses but its neighbours do (Ukrainian, Belarusian, Kazakh...).
_NOT_RUSSIAN = re.compile(r"[іїєґўәғқңөұүһ]")
# Letters of Persian and Urdu that Arabic does not use.
_NOT_ARABIC = re.compile(r"[پچژگکیےٹڈڑںہ]")
_ARABIZI_WORD = re.compile(r"^(?=.*[a-z])(?=.*[235789])[a-z235789']+$")

_EN = frozenset(
    ["the", "a", "an", "and", "or", "but", "is", "are", "was", "were", "be", "been", "being", "am", "i", "you", "he", "she", "it", "we", "they", "me", "my", "your", "ur", "our", "their", "his", "her", "its", "this", "that", "these", "those", "to", "of", "in", "on", "at", "for", "from", "with", "without", "by", "about", "as", "into", "over", "after", "before", "not", "no", "don't", "dont", "doesn't", "doesnt", "didn't", "didnt", "can't", "cant", "cannot", "won't", "wont", "isn't", "isnt", "wasn't", "aren't", "haven't", "hasn't", "i'm", "im", "i've", "ive", "you're", "youre", "it's", "what", "why", "how", "when", "where", "who", "which", "do", "does", "did", "have", "has", "had", "will", "would", "should", "could", "can", "may", "might", "just", "still", "already", "again", "yet", "very", "so", "too", "really", "there", "here", "get", "got", "getting", "give", "keep", "kept", "since", "until", "then", "than", "some", "any", "all", "every", "please", "pls", "plz", "thanks", "thank", "thx", "guys", "hey", "hi", "hello", "anyone", "anything", "nothing", "something", "one", "two", "again", "never", "always", "ever", "wtf", "lol", "omg", "smh", "lmao", "idk", "tbh", "btw", "u", "r", "ya", "yall", "y'all", "gonna", "wanna", "gotta", "been", "being", "account", "money", "order", "help", "need", "want", "waiting", "waited", "hours", "days", "week", "today", "yesterday", "tomorrow", "now", "working", "work", "works", "broken", "down", "charged", "refund", "number", "support", "customer", "service", "delivery", "package", "flight", "ticket", "internet", "phone", "card", "bank", "app", "price", "cost", "free", "cheaper", "expensive", "why's", "what's", "where's", "who's", "that's", "there's", "let's"]
)
_ID = frozenset(
    ["yang", "dan", "di", "ke", "dari", "ini", "itu", "ada", "tidak", "tdk", "gak", "ga", "gk", "nggak", "ngga", "enggak", "engga", "udah", "sudah", "sdh", "belum", "blm", "bisa", "bs", "mau", "mo", "sih", "dong", "deh", "kok", "kan", "nih", "tuh", "aja", "saja", "juga", "jg", "lagi", "lg", "banget", "bgt", "sangat", "saya", "sy", "aku", "gue", "gw", "gua", "kamu", "km", "kalian", "anda", "kita", "kami", "mereka", "dia", "nya", "min", "admin", "kak", "mas", "mbak", "gan", "bang", "bro", "apa", "apakah", "kenapa", "knp", "mengapa", "gimana", "bagaimana", "gmn", "kapan", "dimana", "mana", "berapa", "brp", "siapa", "tolong", "mohon", "terima", "kasih", "makasih", "trims", "thx", "dgn", "dengan", "untuk", "utk", "buat", "sama", "karena", "krn", "tapi", "tp", "atau", "jadi", "jd", "kalau", "kalo", "klo", "sampai", "sampe", "masih", "msh", "terus", "trus", "padahal", "harus", "hrs", "pake", "pakai", "kenapa", "cuma", "cuman", "doang", "lama", "lemot", "sinyal", "pulsa", "kuota", "paket", "tagihan", "bayar", "sudah", "hari", "jam", "minggu", "bulan", "tahun", "kemarin", "kemaren", "besok", "sekarang", "skrg", "baru", "lah", "pun", "ya", "yg", "dr", "dlm", "dalam", "akan", "bakal", "pernah", "sering", "selalu", "nomor", "nomer", "pesanan", "barang", "kirim", "dikirim", "kurir", "ongkir", "harga", "mahal", "murah", "gratis", "diskon", "promo", "uang", "duit", "saldo", "transfer", "rekening", "akun", "aplikasi", "apk", "gangguan", "error", "eror", "parah", "kecewa", "mengecewakan", "tolol", "bego", "anjir", "anjing", "woy", "woi", "emang", "emg", "gitu", "gini", "begitu", "begini", "kayak", "kaya", "kyk", "pelayanan", "layanan", "tanya", "nanya", "mau", "nanya", "tiket", "penerbangan", "pesawat", "jaringan", "keluhan", "komplain", "cs", "hubungi", "dihubungi", "wkwk", "wkwkwk"]
)
# Words frequent in Indonesian posts yet English: they say nothing about en vs id.
_LOANS = frozenset(
    ["please", "thanks", "thank", "thx", "sorry", "admin", "login", "error", "app", "update", "customer", "service", "cs", "promo", "bro", "oke", "ok", "account", "order", "delivery", "refund", "internet", "phone", "card", "bank", "email", "wifi", "online", "offline"]
)
_RU_LATIN = frozenset(
    ["ne", "net", "da", "eto", "chto", "shto", "chego", "pochemu", "pochemy", "kogda", "gde", "kak", "kto", "tut", "uzhe", "uje", "esche", "eshe", "ochen", "spasibo", "pozhaluysta", "pojaluista", "privet", "zdravstvuyte", "rabotaet", "rabotayet", "rabotaete", "ne_rabotaet", "den'gi", "dengi", "zakaz", "dostavka", "internet", "svyaz'", "svyaz", "vashe", "vash", "vashi", "u", "menya", "mne", "menya", "moy", "moi", "blin", "blya", "pizdec", "voobshche", "voobshe", "skolko", "nado", "mozhno", "nelzya", "pochini", "kogda-nibud'", "segodnya", "vchera", "zavtra", "opyat'", "opyat", "snova", "slomalos'", "tupit", "podderzhka", "operator", "nomer", "karta"]
)
_ARABIZI = frozenset(
    ["ana", "enta", "enti", "inta", "inti", "ehna", "e7na", "howa", "heya", "homa", "msh", "mish", "mesh", "leh", "lesh", "lih", "ezay", "izay", "keda", "kda", "kaman", "bs", "bas", "ya", "yalla", "wallah", "walla", "inshallah", "insha2allah", "habibi", "habibti", "shokran", "shukran", "3ayez", "3ayza", "3awez", "3andi", "3ndy", "3ndi", "fe", "fi", "feh", "fih", "mafi", "mafeesh", "mafish", "el", "al", "ma7d", "ma7ad", "7ad", "ba2a", "tayeb", "tayb", "ahlan", "marhaba", "salam", "3aleykom", "alsalam", "sho", "shu", "lesh", "2eh", "eh", "wla", "wala"]
)
_OTHER_LATIN = frozenset(
    ["el", "los", "las", "una", "por", "para", "que", "con", "del", "est", "muy", "pero", "como", "gracias", "hola", "tengo", "tiene", "porque", "le", "les", "des", "est", "une", "avec", "pour", "pas", "mais", "vous", "nous", "je", "suis", "merci", "bonjour", "c'est", "n'est", "qui", "dans", "der", "die", "das", "und", "ist", "nicht", "ich", "sie", "wir", "mit", "auf", "für", "bitte", "danke", "ein", "eine", "kein", "warum", "não", "nao", "você", "voce", "obrigado", "obrigada", "muito", "está", "estou", "tem", "uma", "ele", "ela", "isso", "il", "della", "sono", "che", "non", "per", "grazie", "ciao", "perché", "bir", "ve", "bu", "için", "ne", "çok", "değil", "teşekkürler", "merhaba", "neden", "nasıl", "het", "een", "van", "niet", "ik", "je", "dat", "voor", "zijn", "maar", "och", "att", "det", "är", "inte", "jag"]
)


def detect_language(text: str, default: str = "en") -> tuple[str, float]:
    """(language, confidence) for en, ru, id, ar; other languages and empty posts give `default`."""
    body = strip_handles_and_urls(text)
    cyr = len(_CYRILLIC.findall(body))
    arb = len(_ARABIC.findall(body))
    lat = len(_LATIN.findall(body))
    oth = len(_OTHER_SCRIPT.findall(body))
    letters = cyr + arb + lat + oth
    if letters == 0:
        return default, 0.0
    if cyr >= max(arb, lat, oth) and cyr > 0:
        foreign = len(_NOT_RUSSIAN.findall(body.lower()))
        if foreign >= 2 or (foreign and cyr < 20):
            return default, 0.3
        return "ru", _script_confidence(cyr, letters)
    if arb >= max(lat, oth) and arb > 0:
        if len(_NOT_ARABIC.findall(body)) >= 2:
            return default, 0.3
        return "ar", _script_confidence(arb, letters)
    if oth > lat:
        return default, 0.2
    return _latin_language(body, default)


def _script_confidence(count: int, letters: int) -> float:
    share = count / letters
    return round(min(0.99, 0.5 + 0.5 * share) if count >= 3 else 0.6 * share, 3)


def _latin_language(body: str, default: str) -> tuple[str, float]:
    tokens = words(normalize(body))
    scores = {"en": 0.0, "id": 0.0, "ru": 0.0, "ar": 0.0, "other": 0.0}
    for token in tokens:
        if token in _LOANS:
            continue
        if token in _ID:
            scores["id"] += 1.0
        elif token.endswith(("nya", "kan", "lah")) and len(token) > 5:
            scores["id"] += 0.5
        if token in _EN:
            scores["en"] += 1.0
        elif token.endswith(("ing", "tion", "n't", "'s", "ed")) and len(token) > 4:
            scores["en"] += 0.5
        if token in _RU_LATIN:
            scores["ru"] += 1.0
        if token in _ARABIZI:
            scores["ar"] += 1.0
        elif _ARABIZI_WORD.match(token):
            scores["ar"] += 0.7
        if token in _OTHER_LATIN:
            scores["other"] += 1.0
    best = max(scores, key=lambda lang: (scores[lang], lang == default))
    total = sum(scores.values())
    if scores[best] == 0:
        return default, 0.3
    if best == "other":
        return default, 0.3
    # Both word lists share short words (a, di, ya...); demand a clear lead before leaving
    # the brand's default between the two Latin languages.
    if best in ("ru", "ar") and scores[best] < 2:
        best = max(("en", "id"), key=lambda lang: (scores[lang], lang == default))
        if scores[best] == 0:
            return default, 0.3
    confidence = scores[best] / total
    evidence = min(1.0, scores[best] / 3)
    return best, round(0.4 + 0.59 * confidence * evidence, 3)
