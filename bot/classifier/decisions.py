"""A team's decisions as training examples: one per post, the person's last word, personal data masked.

`bot.run.decisions.labelled_decisions(config)` reads them from the deployment's database, oldest
first, as `Example`s whose `source` says how the label was given:

- `decision:confirmed` — a person approved the reply as it was: the classifier's situation was right;
- `decision:corrected` — a person re-routed the post to another situation;
- `decision:rejected` — a person rejected the reply as trolling (a correction to `trolling`).

A post decided more than once (two people, or a change of mind) keeps one label: a correction wins
over a confirmation, and among equals the latest decision wins.
"""

from __future__ import annotations

from collections.abc import Iterable

from bot.classifier.examples import Example
from bot.classifier.personal_data import mask_personal_data
from bot.classifier.text import normalize

CONFIRMED, CORRECTED, REJECTED = "decision:confirmed", "decision:corrected", "decision:rejected"
_STRENGTH = {CONFIRMED: 0, CORRECTED: 1, REJECTED: 1}


def merge_decisions(decisions: Iterable[Example]) -> list[Example]:
    """One masked example per normalised text, in the order each text was first decided."""
    kept: dict[str, Example] = {}
    for decision in decisions:
        text = mask_personal_data(decision.text).strip()
        key = normalize(text)
        if not key:
            continue
        example = Example(text=text, label=decision.label, lang=decision.lang, id=decision.id, source=decision.source)
        earlier = kept.get(key)
        if earlier is None or _STRENGTH.get(example.source, 0) >= _STRENGTH.get(earlier.source, 0):
            kept[key] = example
    return list(kept.values())
