"""CLI subcommands `classify`, `eval`, `train` and `calibrate`; bot.cli calls register().

`eval --decisions` and `train --with-decisions` read the team's decisions of a deployment through
`bot.run.decisions.labelled_decisions(config)` (the config from --config, $CAREBOT_CONFIG or
./carebot.yaml): labelled real posts as `bot.classifier.examples.Example`s.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bot.cli.common import NO_SECRETS, add_config_option, load
from bot.models import LANGUAGES


def register(subparsers: Any) -> None:
    classify = subparsers.add_parser("classify", help="classify one post, or JSON lines with a `text` field")
    classify.add_argument("text", nargs="?", help="the post to classify")
    classify.add_argument("--jsonl", metavar="FILE", help="read JSON lines with `text` (- for stdin)")
    classify.add_argument("--json", action="store_true", help="print JSON instead of a readable line")
    _common(classify)
    classify.set_defaults(func=run_classify)

    evaluate = subparsers.add_parser("eval", help="measure the classifier on labelled JSON lines")
    evaluate.add_argument(
        "files",
        nargs="*",
        metavar="FILE",
        help="JSON lines with `text`, `label`, optional `lang` and `id` (- for stdin)",
    )
    evaluate.add_argument("--decisions", action="store_true", help="also measure on the team's decisions (--config)")
    evaluate.add_argument(
        "--min-confidence",
        type=float,
        help="answered automatically from this confidence (default: the config's classifier.min_confidence, 0.55)",
    )
    evaluate.add_argument("--json", action="store_true", help="print one JSON document")
    _common(evaluate)
    add_config_option(evaluate)
    evaluate.set_defaults(func=run_eval)

    train = subparsers.add_parser("train", help="rebuild the classifier model from the examples")
    train.add_argument(
        "--out",
        "--output",
        type=Path,
        help="where to write the model (default: the shipped model, from the project's examples only)",
    )
    train.add_argument("--playbooks", type=Path, help="directory of playbook YAML whose `classifier:` examples to add")
    train.add_argument("--data", type=Path, help="directory of train-<lang>.jsonl (default: the project's)")
    train.add_argument("--folds", type=int, default=5, help="cross-validation folds for calibration (0: none)")
    train.add_argument(
        "--with-decisions",
        dest="decisions",
        action="store_true",
        help="add the team's decisions in the desk and CLI (--config)",
    )
    train.add_argument("--decision-weight", type=float, help="weight of one decision against one example (default 3)")
    train.add_argument(
        "--replace-shipped", action="store_true", help="allow --out to be the shipped model with a brand's data"
    )
    add_config_option(train)
    train.set_defaults(func=run_train)

    calibrate = subparsers.add_parser(
        "calibrate", help="choose the per-language calibration on labelled real posts (never trained on)"
    )
    calibrate.add_argument("files", nargs="+", metavar="FILE", help="labelled JSON lines, as for eval")
    calibrate.add_argument("--model", type=Path, help="model file (default: the shipped model)")
    calibrate.add_argument(
        "--write", action="store_true", help="save it (data/calibration.json for the shipped model) and apply it"
    )
    calibrate.set_defaults(func=run_calibrate)


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
    return _loaded(_vocabulary(args.playbooks), args.model)


def _loaded(vocabulary: Any, path: Path | None) -> Any:
    """The classifier with the model in `path` (None: the shipped one); _Refused, saying why, if it cannot
    be read."""
    from bot.classifier import Classifier

    try:
        return Classifier.load(vocabulary, model_path=path)
    except FileNotFoundError as error:
        raise _Refused(f"{path}: no such model file") from error
    except (OSError, ValueError) as error:  # not a model file, or one of another format: it says which
        raise _Refused(str(error)) from error


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


def _team_decisions(args: argparse.Namespace, command: str) -> list[Any] | str:
    """The team's decisions as labelled examples, or why they cannot be had."""
    config = load(args, needs=NO_SECRETS)
    if config is None:
        return f"{command}: the team's decisions need a usable config (--config)"
    from bot.run.decisions import labelled_decisions  # opens the database: only when asked

    return labelled_decisions(config)


def _min_confidence(args: argparse.Namespace) -> float:
    from bot.classifier.evaluate import DEFAULT_MIN_CONFIDENCE

    if args.min_confidence is not None:
        return float(args.min_confidence)
    if getattr(args, "config", None) is not None:
        config = load(args, needs=NO_SECRETS)
        if config is not None:
            return float(config.classifier.min_confidence)
    return DEFAULT_MIN_CONFIDENCE


def run_eval(args: argparse.Namespace) -> int:
    from bot.classifier.evaluate import as_json, format_report, report_of
    from bot.classifier.examples import InputError, load_labelled

    if not args.files and not args.decisions:
        return _fail("eval: give labelled FILEs, --decisions, or both")
    sets: dict[str, list[Any]] = {}
    try:
        for name in args.files:
            sets[name] = load_labelled(name)
    except InputError as error:
        return _fail(str(error))
    if args.decisions:
        decided = _team_decisions(args, "eval")
        if isinstance(decided, str):
            return _fail(decided)
        sets["team decisions"] = decided
    empty = [name for name, examples in sets.items() if not examples]
    if empty:
        return _fail(f"eval: {', '.join(empty)} holds no posts")
    try:
        classifier = _classifier(args)
    except _Refused as error:
        return _fail(f"eval: {error}")
    threshold = _min_confidence(args)
    pairs = {
        name: [(e, classifier.classify(e.text, args.default_lang)) for e in examples] for name, examples in sets.items()
    }
    reports = {name: report_of(found, threshold) for name, found in pairs.items()}
    together = report_of([p for found in pairs.values() for p in found], threshold) if len(reports) > 1 else None
    if args.json:
        if together is None:
            document: dict[str, Any] = as_json(next(iter(reports.values())))
        else:
            document = {"files": {k: as_json(v) for k, v in reports.items()}, "together": as_json(together)}
        print(json.dumps(document, ensure_ascii=False, indent=2))
        return 0
    texts = [format_report(report, name) for name, report in reports.items()]
    if together is not None:
        texts.append(format_report(together, "all files together"))
    print("\n\n".join(texts))
    return 0


def run_train(args: argparse.Namespace) -> int:
    from bot.classifier.examples import InputError
    from bot.classifier.model import MODEL_PATH
    from bot.classifier.train import EXTRA_WEIGHT, TrainingError, train

    deployment = [
        flag
        for flag, given in (
            ("--playbooks", args.playbooks),
            ("--data", args.data),
            ("--with-decisions", args.decisions),
        )
        if given
    ]
    if deployment and args.out is None:
        return _fail(
            f"train: with {', '.join(deployment)} give --out FILE; the shipped model is built from the "
            "project's examples alone"
        )
    if deployment and args.out.resolve() == MODEL_PATH.resolve() and not args.replace_shipped:
        return _fail(f"train: --out is the shipped model; add --replace-shipped to overwrite it with {deployment[0]}")
    try:
        vocabulary = _vocabulary(args.playbooks)
    except _Refused as error:
        return _fail(f"train: {error}")
    if args.data is not None and not args.data.is_dir():
        return _fail(f"train: no data directory {args.data}")
    extra: Sequence[Any] = ()
    if args.decisions:
        decided = _team_decisions(args, "train")
        if isinstance(decided, str):
            return _fail(decided)
        extra = decided
    weight = EXTRA_WEIGHT if args.decision_weight is None else args.decision_weight
    try:
        report = train(
            args.out,
            vocabulary,
            **({"data_dir": args.data} if args.data else {}),
            folds=args.folds,
            extra=extra,
            extra_weight=weight,
        )
    except (InputError, TrainingError) as error:
        return _fail(f"train: {error}")
    print(
        f"wrote {report.path}: {report.examples} examples ({report.brand_examples} from the brand, "
        f"{report.extra_examples} from the team's decisions), {report.features} features, temperature "
        f"{report.temperature}, naive Bayes share {report.nb_mix}, complaint cost {report.complaint_cost}"
    )
    print(f"  by language: {report.by_lang}")
    print(f"  by label: {report.by_label}")
    if report.cv_macro_f1 is not None:
        print(f"  cross-validated on the examples: accuracy {report.cv_accuracy}, macro-F1 {report.cv_macro_f1}")
    return 0


def run_calibrate(args: argparse.Namespace) -> int:
    import dataclasses
    import hashlib

    import numpy as np

    from bot.classifier.calibration import CALIBRATION_PATH, fit_calibration, write_calibration
    from bot.classifier.examples import InputError, load_labelled
    from bot.classifier.model import MODEL_PATH, load_model, save_model

    try:
        examples = [e for name in args.files for e in load_labelled(name)]
    except InputError as error:
        return _fail(str(error))
    if not examples:
        return _fail("calibrate: the files hold no posts")
    path = args.model or MODEL_PATH
    try:
        classifier = _loaded(None, path)
    except _Refused as error:
        return _fail(f"calibrate: {error}")
    model = load_model(path)
    raw, langs = [], []
    for example in examples:
        lang, probabilities = classifier.raw_probabilities(example.text)
        raw.append(probabilities)
        langs.append(example.lang or lang)
    digest = hashlib.sha256("".join(f"{e.lang}\t{e.label}\t{e.text}\n" for e in examples).encode()).hexdigest()
    source = f"{', '.join(Path(name).name for name in args.files)}: {len(examples)} posts, sha256 {digest[:16]}"
    gold = [model.labels.index(e.label) for e in examples]
    calibration = fit_calibration(np.asarray(raw), gold, langs, model.labels.index("complaint"), source)
    print(f"calibration on {source}")
    print(f"  complaint cost {calibration.complaint_cost}")
    for lang in sorted(calibration.bias):
        shifts = "  ".join(f"{label} {b:+.2f}" for label, b in zip(model.labels, calibration.bias[lang], strict=True))
        print(f"  {lang}: temperature {calibration.temperature[lang]}  {shifts}")
    if args.write:
        if path.resolve() == MODEL_PATH.resolve():
            write_calibration(calibration)
            print(f"wrote {CALIBRATION_PATH}")
        calibrated = dataclasses.replace(
            model,
            bias=calibration.bias,
            temperature_by_lang=calibration.temperature,
            complaint_cost=calibration.complaint_cost,
            info={**model.info, "calibration": calibration.source},
        )
        save_model(calibrated, path)
        print(f"wrote {path}")
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
        "sarcastic": result.sarcastic,
    }


def _readable(result: Any) -> str:
    kinds = ",".join(sorted({p.kind for p in result.personal_data})) or "none"
    flags = [name for name in ("angry", "sarcastic", "opt_out", "bot_like") if getattr(result, name)]
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
