"""Classifier: language, situation with a confidence, personal data and signals for one post."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bot.classifier.cues import CueSet, compile_cues, default_cues
from bot.classifier.features import extract_normalized
from bot.classifier.language import detect_language
from bot.classifier.model import MODEL_PATH, LinearModel, load_model
from bot.classifier.personal_data import PersonalData, find_personal_data
from bot.classifier.signals import is_angry, is_bot_like, is_opt_out, is_sarcastic
from bot.classifier.text import normalize
from bot.classifier.vocabulary import BrandVocabulary
from bot.models import LANGUAGES, SITUATIONS

# A brand keyword is strong evidence: the brand wrote it for exactly this situation.
KEYWORD_BOOST = 2.0
# Cues that mean a real customer issue: such a post is never called trolling.
_CUSTOMER_CUES = ("failure", "contact")
# Cues of something that went wrong: a sarcastic "thank you" with one of these is a complaint.
_FAILURE_CUES = ("failure", "waited", "negative")
# A post not called a complaint whose complaint probability is still this high may be a complaint
# said in an unusual way: a person decides (chosen on tune-posts, see bench/README.md).
COMPLAINT_DOUBT = 0.3
# Ties go to the higher-priority situation (the labelling rule's order).
PRIORITY = ("complaint", "price_question", "contact_request", "simple_question", "trolling", "other")


@dataclass(frozen=True)
class Classification:
    lang: str
    lang_confidence: float
    situation: str
    confidence: float
    scores: dict[str, float]
    personal_data: tuple[PersonalData, ...]
    angry: bool
    opt_out: bool
    bot_like: bool
    sarcastic: bool = False  # praise with irony markers: never thanked automatically
    doubt: str | None = None  # why a person should decide, whatever the confidence


def decides_alone(result: Classification, min_confidence: float) -> bool:
    """Whether the bot acts on this post without a person (the router's rule, for measuring it)."""
    return result.doubt is None and result.confidence >= min_confidence


class Classifier:
    def __init__(self, model: LinearModel, cues: CueSet, vocabulary: BrandVocabulary | None = None) -> None:
        missing = set(SITUATIONS) - set(model.labels)
        if missing:
            raise ValueError(f"model lacks situations: {sorted(missing)}")
        self._model = model
        self._cues = cues
        self._labels = model.labels
        self._brand = _brand_cues(vocabulary)

    @classmethod
    def load(cls, vocabulary: BrandVocabulary | None = None, model_path: Path | None = None) -> Classifier:
        return cls(load_model(model_path or MODEL_PATH), default_cues(), vocabulary)

    @property
    def model_info(self) -> Mapping[str, object]:
        return self._model.info

    def classify(self, text: str, default_lang: str = "en") -> Classification:
        if default_lang not in LANGUAGES:
            raise ValueError(f"default_lang must be one of {LANGUAGES}, not {default_lang!r}")
        norm = normalize(text)
        lang, lang_confidence = detect_language(text, default_lang, norm)
        cue_counts = self._cues.counts(norm)
        features = extract_normalized(text, norm, lang, cue_counts)
        probabilities = self._model.probabilities(features, lang, self._boost(norm))
        scores = dict(zip(self._labels, probabilities, strict=True))
        sarcastic = is_sarcastic(text, cue_counts)
        situation = self._decide(scores, cue_counts, sarcastic)
        return Classification(
            doubt=_doubt(situation, scores, sarcastic),
            lang=lang,
            lang_confidence=lang_confidence,
            situation=situation,
            confidence=round(scores[situation], 4),
            scores={label: round(scores[label], 4) for label in SITUATIONS},
            personal_data=find_personal_data(text),
            angry=is_angry(text, cue_counts),
            opt_out=is_opt_out(text, norm),
            bot_like=is_bot_like(text, cue_counts),
            sarcastic=sarcastic,
        )

    def raw_probabilities(self, text: str, default_lang: str = "en") -> tuple[str, list[float]]:
        """(language, probabilities per model label) as the examples taught them, before calibration."""
        norm = normalize(text)
        lang, _ = detect_language(text, default_lang, norm)
        features = extract_normalized(text, norm, lang, self._cues.counts(norm))
        return lang, self._model.raw_probabilities(features)

    def _boost(self, norm: str) -> list[float] | None:
        if self._brand is None:
            return None
        counts = self._brand.counts(norm)
        if not counts:
            return None
        return [KEYWORD_BOOST if label in counts else 0.0 for label in self._labels]

    def _decide(self, scores: Mapping[str, float], cue_counts: Mapping[str, int], sarcastic: bool) -> str:
        # Calling a customer a troll is the worst mistake a care bot can make: a post that names a
        # failure or asks for a contact is never trolling, whatever the model says.
        weighted = dict(scores)
        # Missing a complaint costs more than any other mistake: a Bayes decision with unequal
        # costs, the cost chosen on measured posts (bot.classifier.calibration).
        weighted["complaint"] *= self._model.complaint_cost
        if any(cue_counts.get(cue) for cue in _CUSTOMER_CUES):
            weighted["trolling"] = 0.0
        best = max(PRIORITY, key=lambda label: (weighted[label], -PRIORITY.index(label)))
        # "Thanks for the fast delivery... after a month": the thanks is sarcasm about a failure.
        if best == "other" and sarcastic and any(cue_counts.get(cue) for cue in _FAILURE_CUES):
            return "complaint"
        return best


def _doubt(situation: str, scores: Mapping[str, float], sarcastic: bool) -> str | None:
    if sarcastic and situation == "other":
        return "praise with irony markers (sarcasm?): a person checks before anyone is thanked"
    if situation != "complaint" and scores["complaint"] >= COMPLAINT_DOUBT:
        return f"complaint probability {scores['complaint']:.2f}: a person checks it is not a complaint"
    return None


def _brand_cues(vocabulary: BrandVocabulary | None) -> CueSet | None:
    if vocabulary is None or not vocabulary.keywords:
        return None
    lists = {
        situation: [p for phrases in by_lang.values() for p in phrases]
        for situation, by_lang in vocabulary.keywords.items()
        if situation in SITUATIONS
    }
    return compile_cues({k: v for k, v in lists.items() if v}) if any(lists.values()) else None
