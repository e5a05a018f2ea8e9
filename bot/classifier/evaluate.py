"""`carebot eval`: accuracy, macro-F1, per-label scores, confusion matrix, language accuracy."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from bot.classifier.classify import Classification, Classifier
from bot.classifier.examples import Example
from bot.models import SITUATIONS

CUSTOMER_LABELS = ("complaint", "contact_request", "simple_question", "price_question")
CONFIDENCE_BINS = (0.0, 0.5, 0.7, 0.9)


@dataclass(frozen=True)
class LabelScores:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Metrics:
    posts: int
    accuracy: float
    macro_f1: float
    labels: dict[str, LabelScores]
    confusion: dict[str, dict[str, int]]  # gold -> predicted -> count
    customer_as_trolling: float  # share of customer posts (complaint, contact, questions) called trolling
    language_accuracy: float | None  # where the file gives `lang`
    language_posts: int
    calibration: list[dict[str, float]]  # per confidence bin: posts and accuracy


@dataclass(frozen=True)
class EvalReport:
    overall: Metrics
    by_language: dict[str, Metrics]


def evaluate(classifier: Classifier, examples: Sequence[Example], default_lang: str = "en") -> EvalReport:
    results = [classifier.classify(e.text, default_lang) for e in examples]
    pairs = list(zip(examples, results, strict=True))
    groups: dict[str, list[tuple[Example, Classification]]] = {}
    for example, result in pairs:
        groups.setdefault(example.lang or result.lang, []).append((example, result))
    return EvalReport(
        overall=metrics(pairs),
        by_language={lang: metrics(group) for lang, group in sorted(groups.items())},
    )


def metrics(pairs: Sequence[tuple[Example, Classification]]) -> Metrics:
    gold = [e.label for e, _ in pairs]
    predicted = [r.situation for _, r in pairs]
    confusion = {g: {p: 0 for p in SITUATIONS} for g in SITUATIONS}
    for g, p in zip(gold, predicted, strict=True):
        confusion[g][p] += 1
    labels = {}
    for label in SITUATIONS:
        tp = confusion[label][label]
        predicted_n = sum(confusion[g][label] for g in SITUATIONS)
        support = sum(confusion[label].values())
        precision = tp / predicted_n if predicted_n else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        labels[label] = LabelScores(_r(precision), _r(recall), _r(f1), support)
    present = [s for s in labels.values() if s.support]
    customers = [p for g, p in zip(gold, predicted, strict=True) if g in CUSTOMER_LABELS]
    with_lang = [(e.lang, r.lang) for e, r in pairs if e.lang]
    return Metrics(
        posts=len(pairs),
        accuracy=_r(sum(g == p for g, p in zip(gold, predicted, strict=True)) / len(pairs)) if pairs else 0.0,
        macro_f1=_r(sum(s.f1 for s in present) / len(present)) if present else 0.0,
        labels=labels,
        confusion=confusion,
        customer_as_trolling=_r(customers.count("trolling") / len(customers)) if customers else 0.0,
        language_accuracy=_r(sum(a == b for a, b in with_lang) / len(with_lang)) if with_lang else None,
        language_posts=len(with_lang),
        calibration=_calibration((r.confidence, e.label == r.situation) for e, r in pairs),
    )


def _calibration(points: Iterable[tuple[float, bool]]) -> list[dict[str, float]]:
    bins: list[list[bool]] = [[] for _ in CONFIDENCE_BINS]
    for confidence, correct in points:
        slot = max(i for i, low in enumerate(CONFIDENCE_BINS) if confidence >= low)
        bins[slot].append(correct)
    return [
        {"from": low, "posts": len(b), "accuracy": _r(sum(b) / len(b)) if b else 0.0}
        for low, b in zip(CONFIDENCE_BINS, bins, strict=True)
    ]


def _r(value: float) -> float:
    return round(value, 4)


def as_json(report: EvalReport) -> dict[str, Any]:
    return {
        "overall": asdict(report.overall),
        "by_language": {k: asdict(v) for k, v in report.by_language.items()},
    }


def format_report(report: EvalReport) -> str:
    lines = [_format_metrics("overall", report.overall)]
    lines.extend(_format_metrics(lang, m) for lang, m in report.by_language.items())
    return "\n\n".join(lines)


def _format_metrics(title: str, m: Metrics) -> str:
    short = {s: s.replace("_request", "").replace("_question", "_q").replace("simple_q", "simple") for s in SITUATIONS}
    head = f"== {title}: {m.posts} posts  accuracy {m.accuracy:.3f}  macro-F1 {m.macro_f1:.3f}"
    lang = f"  language {m.language_accuracy:.3f} ({m.language_posts})" if m.language_accuracy is not None else ""
    lines = [
        head + lang,
        f"   complaint recall {m.labels['complaint'].recall:.3f}  customer posts called trolling "
        f"{m.customer_as_trolling:.1%}",
        f"   {'label':<16}{'prec':>6}{'recall':>8}{'f1':>6}{'n':>5}",
    ]
    for label, s in m.labels.items():
        lines.append(f"   {label:<16}{s.precision:>6.2f}{s.recall:>8.2f}{s.f1:>6.2f}{s.support:>5}")
    lines.append("   confusion (rows gold, columns predicted):")
    lines.append("   " + " " * 16 + "".join(f"{short[s]:>10}" for s in SITUATIONS))
    for gold in SITUATIONS:
        lines.append(f"   {gold:<16}" + "".join(f"{m.confusion[gold][p]:>10}" for p in SITUATIONS))
    lines.append(
        "   accuracy by confidence: "
        + "  ".join(f">={b['from']:.1f}: {b['accuracy']:.2f} ({b['posts']})" for b in m.calibration)
    )
    return "\n".join(lines)
