"""The learned part, stored as JSON: a logistic regression and a naive Bayes over the same features.

Each feature row holds the regression's weights (one per label) followed by the naive Bayes
log-likelihoods (one per label). The regression fits the wording of the examples closely; naive
Bayes, averaged over the post's known features, is blunter but degrades more gracefully on posts
unlike the examples. Their probabilities are mixed with a weight chosen by cross-validation.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.classifier.features import Features

MODEL_PATH = Path(__file__).with_name("model.json")
FORMAT = 2


@dataclass(frozen=True)
class LinearModel:
    labels: tuple[str, ...]
    index: Mapping[str, int]  # feature name -> row
    rows: Sequence[tuple[float, ...]]  # regression weight per label, then naive Bayes log-likelihood per label
    temperature: float = 1.0  # regression logits are divided by it
    nb_gain: float = 10.0  # mean naive Bayes log-likelihood is multiplied by it
    nb_mix: float = 0.0  # share of naive Bayes in the mixed probability
    info: Mapping[str, Any] = field(default_factory=dict)

    def scores(self, features: Features) -> tuple[list[float], list[float]]:
        """(regression logits, naive Bayes mean log-likelihoods) of a post."""
        n = len(self.labels)
        index = self.index
        rows = self.rows
        logits = [0.0] * n
        likelihood = [0.0] * n
        known = 0
        for names, scale in features.groups:
            hit = [rows[i] for i in map(index.get, names) if i is not None]
            if hit:
                known += len(hit)
                sums = [sum(column) for column in zip(*hit)]  # noqa: B905 - rows all have 2n columns
                logits = [total + scale * value for total, value in zip(logits, sums[:n], strict=True)]
                likelihood = [total + value for total, value in zip(likelihood, sums[n:], strict=True)]
        if known:
            likelihood = [value / known for value in likelihood]
        return logits, likelihood

    def probabilities(self, features: Features, boost: Sequence[float] | None = None) -> list[float]:
        logits, likelihood = self.scores(features)
        regression = softmax([x / self.temperature for x in logits])
        bayes = softmax([x * self.nb_gain for x in likelihood])
        mixed = [(1 - self.nb_mix) * r + self.nb_mix * b for r, b in zip(regression, bayes, strict=True)]
        if boost is not None:
            mixed = [p * math.exp(b) for p, b in zip(mixed, boost, strict=True)]
            total = sum(mixed)
            mixed = [p / total for p in mixed]
        return mixed


def softmax(values: Sequence[float]) -> list[float]:
    top = max(values)
    exps = [math.exp(v - top) for v in values]
    total = sum(exps)
    return [e / total for e in exps]


def save_model(model: LinearModel, path: Path) -> None:
    """Write deterministically: same model, same bytes."""
    names = sorted(model.index, key=model.index.__getitem__)
    document = {
        "format": FORMAT,
        "labels": list(model.labels),
        "temperature": model.temperature,
        "nb_gain": model.nb_gain,
        "nb_mix": model.nb_mix,
        "info": model.info,
        "features": names,
        "weights": [[round(w, 4) for w in model.rows[model.index[name]]] for name in names],
    }
    text = json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    path.write_text(text + "\n", encoding="utf-8")


def load_model(path: Path = MODEL_PATH) -> LinearModel:
    document = json.loads(path.read_text(encoding="utf-8"))
    if document.get("format") != FORMAT:
        raise ValueError(f"{path}: unsupported model format {document.get('format')!r}; run `carebot train`")
    names = document["features"]
    return LinearModel(
        labels=tuple(document["labels"]),
        index={name: i for i, name in enumerate(names)},
        rows=[tuple(row) for row in document["weights"]],
        temperature=float(document["temperature"]),
        nb_gain=float(document["nb_gain"]),
        nb_mix=float(document["nb_mix"]),
        info=document.get("info", {}),
    )
