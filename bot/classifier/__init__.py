"""carebot's classifier: language, situation and confidence, personal data and signals.

Use: `Classifier.load(vocabulary).classify(text, default_lang="en")` -> Classification.
"""

from __future__ import annotations

from bot.classifier.classify import Classification, Classifier
from bot.classifier.language import detect_language
from bot.classifier.personal_data import PersonalData, find_personal_data, mask_personal_data
from bot.classifier.train import TrainReport, train
from bot.classifier.vocabulary import BrandVocabulary

__all__ = [
    "BrandVocabulary",
    "Classification",
    "Classifier",
    "PersonalData",
    "TrainReport",
    "detect_language",
    "find_personal_data",
    "mask_personal_data",
    "train",
]
