"""How right the classifier is on labelled posts: per-label precision, recall and F1, and macro-F1.

One definition everywhere (`carebot eval`, training's cross-validation): macro-F1 is the mean F1 over the
labels that occur in the gold labels, so a label a file never uses does not count as a zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class LabelScores:
    precision: float
    recall: float
    f1: float
    support: int


def confusion(gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> dict[str, dict[str, int]]:
    """gold -> predicted -> count."""
    table = {g: {p: 0 for p in labels} for g in labels}
    for g, p in zip(gold, predicted, strict=True):
        table[g][p] += 1
    return table


def label_scores(table: dict[str, dict[str, int]]) -> dict[str, LabelScores]:
    labels = list(table)
    scores = {}
    for label in labels:
        tp = table[label][label]
        predicted_n = sum(table[g][label] for g in labels)
        support = sum(table[label].values())
        precision = tp / predicted_n if predicted_n else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        scores[label] = LabelScores(precision, recall, f1, support)
    return scores


def macro_f1(scores: dict[str, LabelScores]) -> float:
    present = [s.f1 for s in scores.values() if s.support]
    return sum(present) / len(present) if present else 0.0
