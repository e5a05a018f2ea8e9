"""The learned part: a multinomial logistic regression over sparse features, stored as JSON."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.classifier.features import Features

MODEL_PATH = Path(__file__).with_name("model.json")
FORMAT = 1


@dataclass(frozen=True)
class LinearModel:
    labels: tuple[str, ...]
    index: Mapping[str, int]  # feature name -> row
    rows: Sequence[tuple[float, ...]]  # one weight per label
    temperature: float = 1.0
    info: Mapping[str, Any] = field(default_factory=dict)

    def logits(self, features: Features) -> list[float]:
        index = self.index
        rows = self.rows
        totals = [0.0] * len(self.labels)
        for names, scale in features.groups:
            hit = [rows[i] for i in map(index.get, names) if i is not None]
            if hit:
                for k, column in enumerate(zip(*hit, strict=True)):
                    totals[k] += scale * sum(column)
        return totals

    def probabilities(self, features: Features, boost: Sequence[float] | None = None) -> list[float]:
        logits = self.logits(features)
        if boost is not None:
            logits = [a + b for a, b in zip(logits, boost, strict=True)]
        return softmax([x / self.temperature for x in logits])


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
        "temperature": round(model.temperature, 4),
        "info": model.info,
        "features": names,
        "weights": [[round(w, 4) for w in model.rows[model.index[name]]] for name in names],
    }
    text = json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    path.write_text(text + "\n", encoding="utf-8")


def load_model(path: Path = MODEL_PATH) -> LinearModel:
    document = json.loads(path.read_text(encoding="utf-8"))
    if document.get("format") != FORMAT:
        raise ValueError(f"{path}: unsupported model format {document.get('format')!r}")
    names = document["features"]
    return LinearModel(
        labels=tuple(document["labels"]),
        index={name: i for i, name in enumerate(names)},
        rows=[tuple(row) for row in document["weights"]],
        temperature=float(document["temperature"]),
        info=document.get("info", {}),
    )
