"""What a brand adds to the classifier without code: keywords and example posts per situation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bot.models import LANGUAGES, SITUATIONS


@dataclass(frozen=True)
class BrandVocabulary:
    keywords: Mapping[str, Mapping[str, Sequence[str]]] = field(default_factory=dict)  # situation -> lang -> phrases
    examples: Mapping[str, Mapping[str, Sequence[str]]] = field(default_factory=dict)  # situation -> lang -> posts

    def is_empty(self) -> bool:
        return not any(_phrases(self.keywords)) and not any(_phrases(self.examples))


def _phrases(table: Mapping[str, Mapping[str, Sequence[str]]]) -> list[str]:
    return [p for by_lang in table.values() for phrases in by_lang.values() for p in phrases]


def vocabulary_from_playbooks(directory: Path) -> BrandVocabulary:
    """Read the `classifier:` key of each playbooks/*.yaml; the situation is the `situation:` key.

    Only what the classifier needs is read here; validating playbooks is bot.playbooks' job,
    so malformed entries are skipped rather than reported twice.
    """
    keywords: dict[str, dict[str, list[str]]] = {}
    examples: dict[str, dict[str, list[str]]] = {}
    for path in sorted(directory.glob("*.yaml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(document, dict):
            continue
        situation = document.get("situation", path.stem)
        section = document.get("classifier")
        if situation not in SITUATIONS or not isinstance(section, dict):
            continue
        for key, target in (("keywords", keywords), ("examples", examples)):
            by_lang = section.get(key) or {}
            if not isinstance(by_lang, dict):
                continue
            for lang, phrases in sorted(by_lang.items()):
                if lang in LANGUAGES and isinstance(phrases, list):
                    bucket = target.setdefault(situation, {}).setdefault(lang, [])
                    bucket.extend(str(p) for p in phrases if isinstance(p, str | int | float) and str(p).strip())
    return BrandVocabulary(keywords=keywords, examples=examples)
