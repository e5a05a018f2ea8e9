"""What a brand adds to the classifier without code: keywords and example posts per situation.

The playbooks carry them (`classifier:` in each playbook); `bot.decide.playbooks.vocabulary` reads them out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class BrandVocabulary:
    keywords: Mapping[str, Mapping[str, Sequence[str]]] = field(default_factory=dict)  # situation -> lang -> phrases
    examples: Mapping[str, Mapping[str, Sequence[str]]] = field(default_factory=dict)  # situation -> lang -> posts

    def is_empty(self) -> bool:
        return not any(_phrases(self.keywords)) and not any(_phrases(self.examples))


def _phrases(table: Mapping[str, Mapping[str, Sequence[str]]]) -> list[str]:
    return [p for by_lang in table.values() for phrases in by_lang.values() for p in phrases]
