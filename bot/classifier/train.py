"""`carebot train`: rebuild the model from the project's examples plus a brand's, reproducibly.

Same examples in, same bytes out: the fit is full-batch and the folds come from a fixed seed.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bot.classifier.calibration import CALIBRATION_PATH, Calibration, read_calibration
from bot.classifier.cues import default_cues
from bot.classifier.decisions import merge_decisions
from bot.classifier.examples import DATA_DIR, Example, brand_examples, load_training
from bot.classifier.features import Features, extract
from bot.classifier.language import detect_language
from bot.classifier.model import DEFAULT_COMPLAINT_COST, MODEL_PATH, LinearModel, save_model
from bot.classifier.scores import confusion, label_scores, macro_f1
from bot.classifier.vocabulary import BrandVocabulary
from bot.models import SITUATIONS

if TYPE_CHECKING:
    import numpy as np

    from bot.classifier.fit import SparseRows

SEED = 7
L2 = 2e-4
ITERATIONS = 300
FOLDS = 5
MIN_DOCUMENTS = 2  # a feature seen in one post only is noise, not a pattern
BRAND_WEIGHT = 2.0  # a brand's own examples count double: they describe its real posts
# A team's decision is a real post of this brand's own audience, labelled by a person: it counts
# more than a written example, but not so much that a few hundred drown out the other thousands.
EXTRA_WEIGHT = 3.0
NB_ALPHA = 0.3
TEMPERATURES = tuple(round(0.5 + 0.1 * i, 1) for i in range(46))
NB_GAINS = (5.0, 10.0, 20.0, 40.0)
NB_MIXES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)


class TrainingError(RuntimeError):
    pass


@dataclass(frozen=True)
class TrainReport:
    path: Path
    examples: int
    brand_examples: int
    extra_examples: int
    by_lang: dict[str, int]
    by_label: dict[str, int]
    features: int
    temperature: float
    nb_mix: float
    complaint_cost: float
    cv_accuracy: float | None  # cross-validated on the examples themselves: optimistic for real posts
    cv_macro_f1: float | None
    inputs_sha256: str


def train(
    out_path: Path | str | None = None,
    vocabulary: BrandVocabulary | None = None,
    *,
    data_dir: Path = DATA_DIR,
    folds: int = FOLDS,
    extra: Sequence[Example] = (),
    extra_weight: float = EXTRA_WEIGHT,
    calibration: Calibration | None = None,
) -> TrainReport:
    """Train on data_dir/train-*.jsonl, the vocabulary's examples and `extra` labelled real posts (a
    team's decisions: merged by normalised text, masked, weighed by extra_weight); write to out_path.

    The calibration (per-language shifts chosen on measured posts) is `calibration`, else the
    project's data/calibration.json when training from the project's data, else none.
    """
    import numpy as np

    from bot.classifier.fit import SparseRows, fit_naive_bayes, fit_softmax

    path = Path(out_path) if out_path is not None else MODEL_PATH
    if calibration is None and data_dir == DATA_DIR:
        calibration = read_calibration(CALIBRATION_PATH)
    project = _unique(load_training(data_dir))
    brand = _unique(brand_examples(vocabulary))
    decided = merge_decisions(extra)
    examples = project + brand + decided
    labels = SITUATIONS
    counts = Counter(e.label for e in examples)
    if any(counts[label] < 2 for label in labels):
        raise TrainingError(f"need at least 2 examples of every situation, have {dict(counts)}")
    cues = default_cues()
    features = [extract(e.text, detect_language(e.text, e.lang or "en")[0], cues) for e in examples]
    index = _feature_index(features)
    rows = SparseRows.build([_row(f, index) for f in features], len(index))
    y = np.array([labels.index(e.label) for e in examples])
    weight = np.array([len(examples) / (len(labels) * counts[e.label]) for e in examples])
    weight[len(project) : len(project) + len(brand)] *= BRAND_WEIGHT
    weight[len(project) + len(brand) :] *= extra_weight

    cv_accuracy = cv_macro_f1 = None
    temperature, nb_gain, nb_mix = 1.0, NB_GAINS[1], 0.0
    if folds > 1:
        logits, likelihood = _out_of_fold_scores(rows, y, weight, len(labels), folds)
        temperature, nb_gain, nb_mix, probabilities = _calibrate(logits, likelihood, y)
        predicted = probabilities.argmax(axis=1)
        cv_accuracy = round(float((predicted == y).mean()), 4)
        gold, guessed = [labels[i] for i in y], [labels[i] for i in predicted]
        cv_macro_f1 = round(macro_f1(label_scores(confusion(gold, guessed, labels))), 4)
    weights = fit_softmax(rows, y, len(labels), weight, l2=L2, iterations=ITERATIONS)
    log_likelihood = fit_naive_bayes(rows, y, len(labels), alpha=NB_ALPHA)

    names = sorted(index)
    digest = _digest(examples)
    by_lang = dict(sorted(Counter(e.lang or "?" for e in examples).items()))
    by_label = {label: counts[label] for label in labels}
    info = {
        "examples": len(examples),
        "brand_examples": len(brand),
        "extra_examples": len(decided),
        "by_lang": by_lang,
        "by_label": by_label,
        "cv_accuracy": cv_accuracy,
        "cv_macro_f1": cv_macro_f1,
        "settings": {
            "l2": L2,
            "iterations": ITERATIONS,
            "folds": folds,
            "min_documents": MIN_DOCUMENTS,
            "nb_alpha": NB_ALPHA,
            "extra_weight": extra_weight,
        },
        "inputs_sha256": digest,
    }
    model = LinearModel(
        labels=labels,
        index={name: n for n, name in enumerate(names)},
        rows=np.hstack([weights, log_likelihood])[[index[n] for n in names]],
        temperature=temperature,
        nb_gain=nb_gain,
        nb_mix=nb_mix,
        complaint_cost=calibration.complaint_cost if calibration else DEFAULT_COMPLAINT_COST,
        bias=calibration.bias if calibration else {},
        temperature_by_lang=calibration.temperature if calibration else {},
        info={**info, "calibration": calibration.source if calibration else None},
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    save_model(model, path)
    return TrainReport(
        path=path,
        examples=len(examples),
        brand_examples=len(brand),
        extra_examples=len(decided),
        by_lang=by_lang,
        by_label=by_label,
        features=len(names),
        temperature=temperature,
        nb_mix=nb_mix,
        complaint_cost=model.complaint_cost,
        cv_accuracy=cv_accuracy,
        cv_macro_f1=cv_macro_f1,
        inputs_sha256=digest,
    )


def _unique(examples: list[Example]) -> list[Example]:
    seen: set[tuple[str, str]] = set()
    result = []
    for example in examples:
        key = (example.text.strip(), example.label)
        if key not in seen:
            seen.add(key)
            result.append(example)
    return result


def _feature_index(features: Sequence[Features]) -> dict[str, int]:
    documents: Counter[str] = Counter()
    always: set[str] = set()
    for item in features:
        for group, (names, _scale) in enumerate(item.groups):
            if group == len(item.groups) - 1:
                always.update(names)
            else:
                documents.update(set(names))
    kept = sorted(always | {name for name, n in documents.items() if n >= MIN_DOCUMENTS})
    return {name: i for i, name in enumerate(kept)}


def _row(features: Features, index: dict[str, int]) -> list[tuple[int, float]]:
    merged: dict[int, float] = {}
    for names, scale in features.groups:
        for name in names:
            column = index.get(name)
            if column is not None:
                merged[column] = merged.get(column, 0.0) + scale
    return sorted(merged.items())


def _folds(y: np.ndarray, folds: int) -> np.ndarray:
    import numpy as np

    rng = np.random.default_rng(SEED)
    assignment = np.zeros(len(y), dtype=np.int64)
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        assignment[rng.permutation(members)] = np.arange(len(members)) % folds
    return assignment


def _out_of_fold_scores(
    rows: SparseRows, y: np.ndarray, weight: np.ndarray, n: int, folds: int
) -> tuple[np.ndarray, np.ndarray]:
    """Regression logits and naive Bayes mean log-likelihoods per example, from models not trained on it."""
    import numpy as np

    from bot.classifier.fit import fit_naive_bayes, fit_softmax, mean_likelihood

    assignment = _folds(y, folds)
    logits = np.zeros((len(y), n))
    likelihood = np.zeros((len(y), n))
    for fold in range(folds):
        test = np.flatnonzero(assignment == fold)
        fit = np.flatnonzero(assignment != fold)
        train_rows, test_rows = rows.take(fit), rows.take(test)
        weights = fit_softmax(train_rows, y[fit], n, weight[fit], l2=L2, iterations=ITERATIONS)
        logits[test] = test_rows.matmul(weights)
        log_likelihood = fit_naive_bayes(train_rows, y[fit], n, alpha=NB_ALPHA)
        likelihood[test] = mean_likelihood(test_rows, log_likelihood)
    return logits, likelihood


def _calibrate(logits: np.ndarray, likelihood: np.ndarray, y: np.ndarray) -> tuple[float, float, float, np.ndarray]:
    """Temperature, naive Bayes gain and mix with the lowest log-loss on out-of-fold scores."""
    import numpy as np

    from bot.classifier.fit import softmax_rows

    def loss(probabilities: np.ndarray) -> float:
        return float(-np.log(np.maximum(probabilities[np.arange(len(y)), y], 1e-12)).mean())

    temperature = min(TEMPERATURES, key=lambda t: loss(softmax_rows(logits / t)))
    regression = softmax_rows(logits / temperature)
    best = (loss(regression), NB_GAINS[1], 0.0, regression)
    for gain in NB_GAINS:
        bayes = softmax_rows(likelihood * gain)
        for mix in NB_MIXES[1:]:
            mixed = (1 - mix) * regression + mix * bayes
            candidate = loss(mixed)
            if candidate < best[0] - 1e-9:
                best = (candidate, gain, mix, mixed)
    return temperature, best[1], best[2], best[3]


def _digest(examples: Sequence[Example]) -> str:
    hasher = hashlib.sha256()
    for example in examples:
        hasher.update(f"{example.lang}\t{example.label}\t{example.text}\n".encode())
    return hasher.hexdigest()
