"""carebot's classifier: language, situation and confidence, personal data and signals.

Use: `Classifier.load(vocabulary).classify(text, default_lang="en")` -> Classification. Training is
`bot.classifier.train.train` (not re-exported here: the module and its function share the name).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.classifier.classify import Classification, Classifier
    from bot.classifier.language import detect_language
    from bot.classifier.personal_data import PersonalData, find_personal_data, mask_personal_data
    from bot.classifier.vocabulary import BrandVocabulary

# Each name is imported from its module when first used: masking a post (the queue, the desk) must not load
# numpy and the model's code, a third of a command's start-up.
_HOMES = {
    "Classification": "classify",
    "Classifier": "classify",
    "detect_language": "language",
    "PersonalData": "personal_data",
    "find_personal_data": "personal_data",
    "mask_personal_data": "personal_data",
    "BrandVocabulary": "vocabulary",
}


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)


__all__ = [
    "BrandVocabulary",
    "Classification",
    "Classifier",
    "PersonalData",
    "detect_language",
    "find_personal_data",
    "mask_personal_data",
]
