"""Calibration on measured real posts: per-language label shifts and temperatures, and the complaint cost.

The examples are written by us and are easier than real posts, and each language's real posts lean
differently (Russian bank chatter, Indonesian telecom complaints...). So after training, a few numbers
per language are chosen on labelled real posts that are never trained on (`carebot calibrate FILE`):
a temperature and a shift of each label's log-probability (the log-loss optimum, held near zero by a
penalty so thin cells cannot swing it), then the complaint cost with the best macro-F1 on those posts.
(A cost that buys complaint recall on real posts calls a third of the praise and chatter complaints:
complaints the model is unsure of go to a person instead, see classify.COMPLAINT_DOUBT.) Only these
numbers are kept (data/calibration.json), never the posts, so `carebot train` rebuilds the same model
without them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bot.classifier.examples import DATA_DIR

if TYPE_CHECKING:
    import numpy as np

CALIBRATION_PATH = DATA_DIR / "calibration.json"
COMPLAINT_COSTS = tuple(round(1.0 + 0.1 * i, 1) for i in range(11))
BIAS_PENALTY = 2.0  # per post-count: a language with few posts stays near the examples' view
TEMPERATURES = tuple(round(0.6 + 0.05 * i, 2) for i in range(29))


@dataclass(frozen=True)
class Calibration:
    bias: Mapping[str, tuple[float, ...]]  # lang -> shift per label (the model's label order)
    temperature: Mapping[str, float]  # lang -> divisor of the log-probabilities
    complaint_cost: float
    source: str  # what it was chosen on


def read_calibration(path: Path = CALIBRATION_PATH) -> Calibration | None:
    if not path.exists():
        return None
    document = json.loads(path.read_text(encoding="utf-8"))
    return Calibration(
        bias={lang: tuple(float(b) for b in values) for lang, values in document["bias"].items()},
        temperature={lang: float(t) for lang, t in document["temperature"].items()},
        complaint_cost=float(document["complaint_cost"]),
        source=str(document["source"]),
    )


def write_calibration(calibration: Calibration, path: Path = CALIBRATION_PATH) -> None:
    document = {
        "source": calibration.source,
        "complaint_cost": calibration.complaint_cost,
        "temperature": dict(sorted(calibration.temperature.items())),
        "bias": {lang: list(values) for lang, values in sorted(calibration.bias.items())},
    }
    path.write_text(json.dumps(document, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def fit_calibration(
    raw: np.ndarray, gold: Sequence[int], langs: Sequence[str], complaint: int, source: str
) -> Calibration:
    """Per language: the temperature and shifts with the lowest penalised log-loss; then the cost."""
    import numpy as np

    y = np.asarray(gold)
    lang_of = np.asarray(langs)
    logs = np.log(np.maximum(raw, 1e-12))
    bias: dict[str, tuple[float, ...]] = {}
    temperature: dict[str, float] = {}
    for lang in sorted(set(langs)):
        members = lang_of == lang
        best = min(
            ((t, *_shift(logs[members] / t, y[members])) for t in TEMPERATURES),
            key=lambda candidate: candidate[2],
        )
        temperature[lang] = best[0]
        bias[lang] = tuple(round(float(b), 4) for b in best[1])
    calibrated = np.vstack([_apply(logs[i], temperature[lang], bias[lang]) for i, lang in enumerate(langs)])
    return Calibration(bias, temperature, complaint_cost(calibrated, y, complaint), source)


def complaint_cost(probabilities: np.ndarray, y: np.ndarray, complaint: int) -> float:
    """The cost in COMPLAINT_COSTS with the best macro-F1 (the smallest among equals)."""
    from bot.classifier.scores import confusion, label_scores, macro_f1

    labels = [str(k) for k in range(probabilities.shape[1])]
    gold = [str(k) for k in y]

    def score(cost: float) -> float:
        weighted = probabilities.copy()
        weighted[:, complaint] *= cost
        predicted = [str(k) for k in weighted.argmax(axis=1)]
        return round(macro_f1(label_scores(confusion(gold, predicted, labels))), 6)

    return max(COMPLAINT_COSTS, key=lambda cost: (score(cost), -cost))


def _shift(logs: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Label shifts minimising mean log-loss + BIAS_PENALTY/n * |shift|^2 (Newton-free gradient descent)."""
    import numpy as np

    n, k = logs.shape
    targets = np.eye(k)[y]
    shift = np.zeros(k)
    penalty = BIAS_PENALTY / n
    for _ in range(300):
        probabilities = _softmax(logs + shift)
        shift -= 0.5 * ((probabilities - targets).mean(axis=0) + 2 * penalty * shift)
    probabilities = _softmax(logs + shift)
    loss = float(-np.log(np.maximum(probabilities[np.arange(n), y], 1e-12)).mean() + penalty * (shift**2).sum())
    return shift, loss


def _apply(logs: np.ndarray, temperature: float, shift: Sequence[float]) -> np.ndarray:
    import numpy as np

    result: np.ndarray = _softmax((logs / temperature + np.asarray(shift))[None, :])[0]
    return result


def _softmax(z: np.ndarray) -> np.ndarray:
    import numpy as np

    e = np.exp(z - z.max(axis=1, keepdims=True))
    result: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return result
