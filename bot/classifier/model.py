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
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from bot.classifier.features import Features

MODEL_PATH = Path(__file__).with_name("model.json")
FORMAT = 2
# The complaint weight of a model trained without cross-validation, or saved before it was learned.
DEFAULT_COMPLAINT_COST = 1.5


@dataclass(frozen=True)
class LinearModel:
    labels: tuple[str, ...]
    index: Mapping[str, int]  # feature name -> row
    rows: np.ndarray  # per feature: regression weight per label, then naive Bayes log-likelihood per label
    temperature: float = 1.0  # regression logits are divided by it
    nb_gain: float = 10.0  # mean naive Bayes log-likelihood is multiplied by it
    nb_mix: float = 0.0  # share of naive Bayes in the mixed probability
    complaint_cost: float = DEFAULT_COMPLAINT_COST  # the complaint probability is multiplied by it before deciding
    info: Mapping[str, Any] = field(default_factory=dict)

    def scores(self, features: Features) -> tuple[list[float], list[float]]:
        """(regression logits, naive Bayes mean log-likelihoods) of a post."""
        index = self.index
        found: list[int] = []
        starts: list[int] = []
        scales: list[float] = []
        for names, scale in features.groups:
            rows = [i for i in map(index.get, names) if i is not None]
            if rows:
                starts.append(len(found))
                scales.append(scale)
                found.extend(rows)
        n = len(self.labels)
        if not found:
            return [0.0] * n, [0.0] * n
        # One gather and one sum per group: numpy calls cost more than the arithmetic here.
        by_group = np.add.reduceat(np.take(self.rows, found, axis=0), starts, axis=0)
        logits = np.asarray(scales) @ by_group[:, :n]
        likelihood = by_group[:, n:].sum(axis=0) / len(found)
        return logits.tolist(), likelihood.tolist()

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
        "complaint_cost": model.complaint_cost,
        "info": model.info,
        "features": names,
        "weights": [[round(w, 4) for w in model.rows[model.index[name]].tolist()] for name in names],
    }
    text = json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    path.write_text(text + "\n", encoding="utf-8")


def load_model(path: Path = MODEL_PATH) -> LinearModel:
    """The model in `path`, parsed once per process while the file stays the same: the daemon, the
    web desk and every test build their own classifier, and parsing takes most of a second."""
    stat = path.stat()
    return _parse_model(path.resolve(), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=4)
def _parse_model(path: Path, _mtime_ns: int, _size: int) -> LinearModel:
    document = json.loads(path.read_text(encoding="utf-8"))
    if document.get("format") != FORMAT:
        raise ValueError(f"{path}: unsupported model format {document.get('format')!r}; run `carebot train`")
    names = document["features"]
    rows = np.array(document["weights"], dtype=np.float64).reshape(len(names), 2 * len(document["labels"]))
    rows.flags.writeable = False  # shared by every classifier built from this file
    return LinearModel(
        labels=tuple(document["labels"]),
        index={name: i for i, name in enumerate(names)},
        rows=rows,
        temperature=float(document["temperature"]),
        nb_gain=float(document["nb_gain"]),
        nb_mix=float(document["nb_mix"]),
        complaint_cost=float(document.get("complaint_cost", DEFAULT_COMPLAINT_COST)),
        info=document.get("info", {}),
    )
