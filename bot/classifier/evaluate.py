"""`carebot eval`: accuracy, macro-F1, per-label scores, confusion matrix, language accuracy."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from bot.classifier.classify import Classification, Classifier
from bot.classifier.examples import Example
from bot.classifier.scores import LabelScores, confusion, label_scores, macro_f1
from bot.models import SITUATIONS

CUSTOMER_LABELS = ("complaint", "contact_request", "simple_question", "price_question")
CONFIDENCE_BINS = (0.0, 0.5, 0.7, 0.9)


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
    table = confusion(gold, predicted, SITUATIONS)
    scores = label_scores(table)
    labels = {k: LabelScores(_r(s.precision), _r(s.recall), _r(s.f1), s.support) for k, s in scores.items()}
    customers = [p for g, p in zip(gold, predicted, strict=True) if g in CUSTOMER_LABELS]
    with_lang = [(e.lang, r.lang) for e, r in pairs if e.lang]
    return Metrics(
        posts=len(pairs),
        accuracy=_r(sum(g == p for g, p in zip(gold, predicted, strict=True)) / len(pairs)) if pairs else 0.0,
        macro_f1=_r(macro_f1(scores)),
        labels=labels,
        confusion=table,
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
