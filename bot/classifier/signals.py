"""Signals read from the text alone: anger/urgency, sarcasm, "stop replying to me", automated posts."""

from __future__ import annotations

import re
from collections.abc import Mapping

from bot.classifier.text import case_counts, normalize, strip_handles_and_urls

_ANGRY_EMOJI = re.compile("[😡🤬👿💢😤🖕]")
_CAPS_WORD = re.compile(r"\b[A-ZА-ЯЁ]{3,}\b")
_HASHTAG = re.compile(r"(?<!\w)#\w+")
_HANDLE = re.compile(r"(?<![\w@])@\w+")

# A bare command, once handles, links, punctuation and emoji are gone.
_STOP_ALONE = re.compile(
    r"(?:please |pls |plz )?(?:stop|stop it|stop please|stop pls|unsubscribe|opt out|stop replying|"
    r"стоп|хватит|отписка|отпишите|berhenti|stop min|stop dong|توقف|وقف|بس|خلاص)(?: please| pls| plz)?"
)
_STOP_PHRASE = re.compile(
    r"\b(?:stop|quit|cease) (?:replying|responding|answering|messaging|texting|tagging|mentioning|spamming|"
    r"sending|dming|contacting|bothering)\b"
    r"|\b(?:don'?t|do not|never) (?:reply|respond|answer|message|text|tag|dm|contact) (?:to )?(?:me|us)\b"
    r"|\bno more (?:automated |automatic |auto |bot )?(?:replies|messages|responses|dms|tags)\b"
    r"|\b(?:stop|shut (?:down|off)) (?:the|your|this) bot\b|\bstop bot\b|\bleave me alone\b|\bunsubscribe\b"
    r"|\bopt[ -]?out\b"
    r"|не (?:пишите|отвечайте|присылайте|тегайте|отмечайте) мне|"
    r"(?:хватит|перестаньте|прекратите|перестань|прекрати) (?:мне )?(?:писать|отвечать|спамить|присылать|"
    r"тегать|отмечать)|\bотстаньте\b|\bотпишите\b|\bотписаться\b|\bне беспокойте\b"
    r"|\bjangan (?:balas|bales|dibalas|membalas|kirim|kirimi|hubungi|tag|mention|ngetag|spam)\b"
    r"|\b(?:berhenti|stop|udah(?:an)?|gak usah|ga usah|nggak usah|tidak usah) "
    r"(?:membalas|balas|bales|kirim|mengirim|spam|ngespam|ngetag|tag|mention|hubungi)\b"
    r"|توقف(?:وا)? عن (?:الرد|مراسلتي|الارسال|ارسال|الرسايل|الرسائل|ازعاجي)"
    r"|(?:لا|ما) (?:ترد|تردوا|تردون|ترسل|ترسلوا|ترسلون|تراسلني|تراسلوني|تكلموني) ?(?:علي|عليا)?(?:$|\s)"
    r"|بطلوا (?:ترسلوا|رسايل|ازعاج)|اتركوني|سيبوني"
)
_COMMAND_NOISE = re.compile(r"[^\w\s']+")
# A word or three in quotes: «быстрая», "fast", “next day” — the quotes say "so-called".
_IRONIC_QUOTES = re.compile(r"[«“\"'‘]\s?[^\W\d_][^«»“”\"\n]{0,24}?\s?[»”\"'’]")


def is_angry(text: str, cue_counts: Mapping[str, int]) -> bool:
    """Strong anger or urgency: swearing, caps, !!!, threats to leave or escalate, angry emoji."""
    body = strip_handles_and_urls(text)
    score = 2 * cue_counts.get("swear", 0) + cue_counts.get("leave", 0) + cue_counts.get("urgent", 0)
    score += 2 * len(_ANGRY_EMOJI.findall(body))
    upper, cased = case_counts(body)
    if cased >= 12 and upper / cased > 0.6:
        score += 2
    elif len(_CAPS_WORD.findall(body)) >= 2:
        score += 1
    if "!!!" in body or "?!" in body or "!?" in body:
        score += 1
    return score >= 2


def is_sarcastic(text: str, cue_counts: Mapping[str, int]) -> bool:
    """Praise or thanks said with a sign that it means the opposite: an irony marker ("yeah right",
    «ага», "makasih lho", يا سلام, 🙄 😒), a so-called in quotes, a failure, or how long it took.
    Such a post is never thanked automatically: it is a complaint, or a person reads it."""
    positive = cue_counts.get("praise", 0) + cue_counts.get("irony", 0)
    if not positive:
        return False
    if cue_counts.get("irony", 0) or cue_counts.get("waited", 0) or cue_counts.get("failure", 0):
        return True
    return _IRONIC_QUOTES.search(strip_handles_and_urls(text)) is not None


def is_opt_out(text: str, normalized: str | None = None) -> bool:
    """The author asks for no more (automated) replies, as a command: "stop", not "my app stopped"."""
    norm = normalize(text) if normalized is None else normalized
    bare = " ".join(_COMMAND_NOISE.sub(" ", norm).split())
    return bool(_STOP_ALONE.fullmatch(bare) or _STOP_PHRASE.search(norm))


def is_bot_like(text: str, cue_counts: Mapping[str, int]) -> bool:
    """Auto-reply or spam boilerplate; the core adds what metadata says (bot accounts)."""
    if cue_counts.get("automated", 0):
        return True
    return len(_HASHTAG.findall(text)) >= 6 or len(_HANDLE.findall(text)) >= 6
