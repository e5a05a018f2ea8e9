"""`carebot eval`: how right the classifier is on labelled posts, and how safe its automatic answers are.

Per file and language: accuracy, macro-F1, per-label scores, the confusion matrix, language accuracy;
the mistakes that hurt most (complaints missed, other posts called complaints, customers called
trolls, trolls who would get a public reply); and, at the configured `min_confidence`, the share of
posts the bot would answer on its own and how many of those are right, with the expected calibration
error of the confidence it reports.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from bot.classifier.classify import Classification, Classifier, decides_alone
from bot.classifier.examples import Example
from bot.classifier.scores import LabelScores, confusion, label_scores, macro_f1
from bot.models import SITUATIONS

CUSTOMER_LABELS = ("complaint", "contact_request", "simple_question", "price_question")
CONFIDENCE_BINS = (0.0, 0.5, 0.7, 0.9)
ECE_BINS = 10
DEFAULT_MIN_CONFIDENCE = 0.55  # the config's default (bot.config.ClassifierConfig.min_confidence)


@dataclass(frozen=True)
class Metrics:
    posts: int
    accuracy: float
    macro_f1: float
    labels: dict[str, LabelScores]
    confusion: dict[str, dict[str, int]]  # gold -> predicted -> count
    customer_as_trolling: float  # share of customer posts (complaint, contact, questions) called trolling
    other_as_complaint: float  # share of `other` posts (praise, chatter) called complaints
    trolling_answered: float  # share of trolling posts that would get an automatic public reply
    language_accuracy: float | None  # where the file gives `lang`
    language_posts: int
    min_confidence: float
    automatic_share: float  # share of posts the bot would answer on its own
    automatic_accuracy: float  # share of those with the right situation
    ece: float  # expected calibration error of the reported confidence
    calibration: list[dict[str, float]]  # per confidence bin: posts and accuracy


@dataclass(frozen=True)
class EvalReport:
    overall: Metrics
    by_language: dict[str, Metrics]


def evaluate(
    classifier: Classifier,
    examples: Sequence[Example],
    default_lang: str = "en",
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
) -> EvalReport:
    results = [classifier.classify(e.text, default_lang) for e in examples]
    return report_of(list(zip(examples, results, strict=True)), min_confidence)


def report_of(pairs: Sequence[tuple[Example, Classification]], min_confidence: float) -> EvalReport:
    groups: dict[str, list[tuple[Example, Classification]]] = {}
    for example, result in pairs:
        groups.setdefault(example.lang or result.lang, []).append((example, result))
    return EvalReport(
        overall=metrics(pairs, min_confidence),
        by_language={lang: metrics(group, min_confidence) for lang, group in sorted(groups.items())},
    )


def metrics(pairs: Sequence[tuple[Example, Classification]], min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> Metrics:
    gold = [e.label for e, _ in pairs]
    predicted = [r.situation for _, r in pairs]
    table = confusion(gold, predicted, SITUATIONS)
    scores = label_scores(table)
    labels = {k: LabelScores(_r(s.precision), _r(s.recall), _r(s.f1), s.support) for k, s in scores.items()}
    customers = [p for g, p in zip(gold, predicted, strict=True) if g in CUSTOMER_LABELS]
    others = [p for g, p in zip(gold, predicted, strict=True) if g == "other"]
    # A troll gets a public reply when the bot answers alone with anything but the trolling playbook
    # (which records and says nothing); `other` counts as a reply, since praise is thanked.
    trolls = [decides_alone(r, min_confidence) and r.situation != "trolling" for e, r in pairs if e.label == "trolling"]
    alone = [e.label == r.situation for e, r in pairs if decides_alone(r, min_confidence)]
    with_lang = [(e.lang, r.lang) for e, r in pairs if e.lang]
    return Metrics(
        posts=len(pairs),
        accuracy=_share(g == p for g, p in zip(gold, predicted, strict=True)),
        macro_f1=_r(macro_f1(scores)),
        labels=labels,
        confusion=table,
        customer_as_trolling=_share(p == "trolling" for p in customers),
        other_as_complaint=_share(p == "complaint" for p in others),
        trolling_answered=_share(trolls),
        language_accuracy=_share(a == b for a, b in with_lang) if with_lang else None,
        language_posts=len(with_lang),
        min_confidence=min_confidence,
        automatic_share=_r(len(alone) / len(pairs)) if pairs else 0.0,
        automatic_accuracy=_share(alone),
        ece=_ece([(r.confidence, e.label == r.situation) for e, r in pairs]),
        calibration=_calibration((r.confidence, e.label == r.situation) for e, r in pairs),
    )


def _ece(points: Sequence[tuple[float, bool]]) -> float:
    """Sum over equal-width confidence bins of |accuracy - mean confidence|, weighted by the bin's share."""
    bins: list[list[tuple[float, bool]]] = [[] for _ in range(ECE_BINS)]
    for confidence, correct in points:
        bins[min(int(confidence * ECE_BINS), ECE_BINS - 1)].append((confidence, correct))
    total = sum(abs(sum(c for _, c in b) - sum(p for p, _ in b)) for b in bins)  # per bin: n * |acc - conf|
    return _r(total / len(points)) if points else 0.0


def _calibration(points: Iterable[tuple[float, bool]]) -> list[dict[str, float]]:
    bins: list[list[bool]] = [[] for _ in CONFIDENCE_BINS]
    for confidence, correct in points:
        slot = max(i for i, low in enumerate(CONFIDENCE_BINS) if confidence >= low)
        bins[slot].append(correct)
    return [
        {"from": low, "posts": len(b), "accuracy": _r(sum(b) / len(b)) if b else 0.0}
        for low, b in zip(CONFIDENCE_BINS, bins, strict=True)
    ]


def _share(flags: Iterable[bool]) -> float:
    values = list(flags)
    return _r(sum(values) / len(values)) if values else 0.0


def _r(value: float) -> float:
    return round(value, 4)


def as_json(report: EvalReport) -> dict[str, Any]:
    return {
        "overall": asdict(report.overall),
        "by_language": {k: asdict(v) for k, v in report.by_language.items()},
    }


def format_report(report: EvalReport, title: str = "") -> str:
    lines = [format_summary(report, title)]
    lines.append(_format_metrics("overall", report.overall))
    lines.extend(_format_metrics(lang, m) for lang, m in report.by_language.items())
    return "\n\n".join(lines)


# (heading, Metrics field, format): the figures the targets are set on, one line per language.
SUMMARY_COLUMNS = (
    ("posts", "posts", "{:>6}"),
    ("macroF1", "macro_f1", "{:>8.3f}"),
    ("c-recall", "complaint_recall", "{:>9.3f}"),
    ("other>c", "other_as_complaint", "{:>8.1%}"),
    ("troll-auto", "trolling_answered", "{:>11.1%}"),
    ("cust>troll", "customer_as_trolling", "{:>11.1%}"),
    ("auto-acc", "automatic_accuracy", "{:>9.1%}"),
    ("auto-share", "automatic_share", "{:>11.1%}"),
    ("ECE", "ece", "{:>7.3f}"),
    ("lang", "language_accuracy", "{:>7.1%}"),
)


def format_summary(report: EvalReport, title: str = "") -> str:
    widths = [len(fmt.format(0)) for _, _, fmt in SUMMARY_COLUMNS]
    lines = [
        f"## {title or 'summary'}: answered automatically = confidence >= {report.overall.min_confidence:.2f} "
        "and no sarcasm doubt",
        "   " + " " * 6 + "".join(f"{name:>{w}}" for (name, _, _), w in zip(SUMMARY_COLUMNS, widths, strict=True)),
    ]
    for name, m in [("all", report.overall), *report.by_language.items()]:
        values = {**asdict(m), "complaint_recall": m.labels["complaint"].recall}
        cells = [
            fmt.format(values[key]) if values[key] is not None else "-".rjust(w)
            for (_, key, fmt), w in zip(SUMMARY_COLUMNS, widths, strict=True)
        ]
        lines.append(f"   {name:<6}" + "".join(cells))
    return "\n".join(lines)


def _format_metrics(title: str, m: Metrics) -> str:
    short = {s: s.replace("_request", "").replace("_question", "_q").replace("simple_q", "simple") for s in SITUATIONS}
    head = f"== {title}: {m.posts} posts  accuracy {m.accuracy:.3f}  macro-F1 {m.macro_f1:.3f}"
    lang = f"  language {m.language_accuracy:.3f} ({m.language_posts})" if m.language_accuracy is not None else ""
    lines = [
        head + lang,
        f"   complaint recall {m.labels['complaint'].recall:.3f}  other called complaint {m.other_as_complaint:.1%}  "
        f"customer posts called trolling {m.customer_as_trolling:.1%}  trolling answered automatically "
        f"{m.trolling_answered:.1%}",
        f"   answered automatically (confidence >= {m.min_confidence:.2f}): {m.automatic_share:.1%} of posts, "
        f"{m.automatic_accuracy:.1%} of them right; expected calibration error {m.ece:.3f}",
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
