"""CLI subcommands `classify`, `eval` and `train`; bot.cli calls register()."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bot.models import LANGUAGES


def register(subparsers: Any) -> None:
    classify = subparsers.add_parser("classify", help="classify one post, or JSON lines with a `text` field")
    classify.add_argument("text", nargs="?", help="the post to classify")
    classify.add_argument("--jsonl", metavar="FILE", help="read JSON lines with `text` (- for stdin)")
    classify.add_argument("--json", action="store_true", help="print JSON instead of a readable line")
    _common(classify)
    classify.set_defaults(func=run_classify)

    evaluate = subparsers.add_parser("eval", help="measure the classifier on labelled JSON lines")
    evaluate.add_argument("file", help="JSON lines with `text`, `label`, optional `lang` and `id` (- for stdin)")
    evaluate.add_argument("--json", action="store_true", help="print one JSON document")
    _common(evaluate)
    evaluate.set_defaults(func=run_eval)

    train = subparsers.add_parser("train", help="rebuild the classifier model from the examples")
    train.add_argument("--out", "--output", type=Path, help="where to write the model (default: the shipped model)")
    train.add_argument("--playbooks", type=Path, help="directory of playbook YAML whose `classifier:` examples to add")
    train.add_argument("--data", type=Path, help="directory of train-<lang>.jsonl (default: the project's)")
    train.add_argument("--folds", type=int, default=5, help="cross-validation folds for calibration (0: none)")
    train.set_defaults(func=run_train)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--default-lang", choices=LANGUAGES, default="en", help="language for other languages")
    parser.add_argument("--model", type=Path, help="model file (default: the shipped model)")
    parser.add_argument("--playbooks", type=Path, help="directory of playbook YAML (brand keywords)")


class _Refused(Exception):
    """The playbooks named on the command line cannot be used; the message lists why."""


def _vocabulary(directory: Path | None) -> Any:
    """The brand vocabulary of a playbook directory, checked as strictly as the daemon checks it."""
    if directory is None:
        return None
    from bot.decide.playbooks import PlaybookError, load_playbooks, vocabulary

    try:
        return vocabulary(load_playbooks(directory))
    except PlaybookError as error:
        raise _Refused("\n".join(error.problems)) from error


def _classifier(args: argparse.Namespace) -> Any:
    from bot.classifier import Classifier

    return Classifier.load(_vocabulary(args.playbooks), model_path=args.model)


def _fail(message: str) -> int:
    print(f"carebot: {message}", file=sys.stderr)
    return 2


def run_classify(args: argparse.Namespace) -> int:
    from bot.classifier.examples import InputError, read_jsonl

    if (args.text is None) == (args.jsonl is None):
        return _fail("classify: give either a TEXT or --jsonl FILE")
    try:
        classifier = _classifier(args)
    except _Refused as error:
        return _fail(f"classify: {error}")
    if args.text is not None:
        result = classifier.classify(args.text, args.default_lang)
        print(json.dumps(_as_dict(result), ensure_ascii=False) if args.json else _readable(result))
        return 0
    try:
        for _number, item in read_jsonl(args.jsonl):
            result = classifier.classify(item["text"], args.default_lang)
            print(json.dumps({**item, **_as_dict(result)}, ensure_ascii=False), flush=False)
    except InputError as error:
        return _fail(str(error))
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from bot.classifier.evaluate import as_json, evaluate, format_report
    from bot.classifier.examples import InputError, load_labelled

    try:
        examples = load_labelled(args.file)
    except InputError as error:
        return _fail(str(error))
    if not examples:
        return _fail(f"eval: {args.file} holds no posts")
    try:
        classifier = _classifier(args)
    except _Refused as error:
        return _fail(f"eval: {error}")
    report = evaluate(classifier, examples, args.default_lang)
    if args.json:
        print(json.dumps(as_json(report), ensure_ascii=False, indent=2))
    else:
        print(format_report(report))
    return 0


def run_train(args: argparse.Namespace) -> int:
    from bot.classifier import train
    from bot.classifier.examples import InputError
    from bot.classifier.train import TrainingError

    try:
        vocabulary = _vocabulary(args.playbooks)
    except _Refused as error:
        return _fail(f"train: {error}")
    if args.data is not None and not args.data.is_dir():
        return _fail(f"train: no data directory {args.data}")
    try:
        report = train(args.out, vocabulary, **({"data_dir": args.data} if args.data else {}), folds=args.folds)
    except (InputError, TrainingError) as error:
        return _fail(f"train: {error}")
    print(
        f"wrote {report.path}: {report.examples} examples ({report.brand_examples} from the brand), "
        f"{report.features} features, temperature {report.temperature}, naive Bayes share {report.nb_mix}, "
        f"complaint cost {report.complaint_cost}"
    )
    print(f"  by language: {report.by_lang}")
    print(f"  by label: {report.by_label}")
    if report.cv_macro_f1 is not None:
        print(f"  cross-validated on the examples: accuracy {report.cv_accuracy}, macro-F1 {report.cv_macro_f1}")
    return 0


def _as_dict(result: Any) -> dict[str, Any]:
    return {
        "lang": result.lang,
        "lang_confidence": result.lang_confidence,
        "situation": result.situation,
        "confidence": result.confidence,
        "scores": result.scores,
        "personal_data": [{"kind": p.kind, "start": p.start, "end": p.end} for p in result.personal_data],
        "angry": result.angry,
        "opt_out": result.opt_out,
        "bot_like": result.bot_like,
    }


def _readable(result: Any) -> str:
    kinds = ",".join(sorted({p.kind for p in result.personal_data})) or "none"
    flags = [name for name in ("angry", "opt_out", "bot_like") if getattr(result, name)]
    return (
        f"{result.situation} ({result.confidence:.2f})  lang {result.lang} ({result.lang_confidence:.2f})  "
        f"personal data: {kinds}" + (f"  signals: {', '.join(flags)}" if flags else "")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="carebot")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
