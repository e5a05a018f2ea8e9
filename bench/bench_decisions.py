"""Replay of the team's decisions: part of a labelled file plays the team, the rest measures the result.

    python bench/bench_decisions.py [--file ../shared/data/tune-posts.jsonl] [--check ../shared/data/dev-posts.jsonl]

The posts of the file are split by `source` (the dataset each came from), per language, alternating
from the largest source: one half are the "team's decisions" (a post the shipped model got right is
approved unchanged, one it got wrong is re-routed to its label), the other half never reach training.
The model is retrained with those decisions (`train(extra=...)`, as `carebot train --with-decisions`)
and both models are measured on the held-out half, and on --check if given. Splitting by source means
the measured posts come from other collections than the decisions, which is the honest, harder case.
Skips (exit 0, with the reason) when the file is absent: the measuring files are not in the repository.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.classifier import Classifier  # noqa: E402
from bot.classifier.decisions import CONFIRMED, CORRECTED, REJECTED  # noqa: E402
from bot.classifier.evaluate import format_summary, report_of  # noqa: E402
from bot.classifier.examples import Example, load_labelled, read_jsonl  # noqa: E402
from bot.classifier.train import train  # noqa: E402

DEFAULT_FILE = ROOT.parent / "shared" / "data" / "tune-posts.jsonl"


def split_by_source(path: Path) -> tuple[list[Example], list[Example], dict[str, list[str]]]:
    examples = load_labelled(path)
    sources = [str(item.get("source", "")) for _, item in read_jsonl(path, require=("text", "label"))]
    by_lang: dict[str, Counter[str]] = {}
    for example, source in zip(examples, sources, strict=True):
        by_lang.setdefault(example.lang or "?", Counter())[source] += 1
    team_sources: dict[str, list[str]] = {}
    for lang, counts in sorted(by_lang.items()):
        ordered = sorted(counts, key=lambda s: (-counts[s], s))
        team_sources[lang] = ordered[0::2]
    team, held = [], []
    for example, source in zip(examples, sources, strict=True):
        (team if source in team_sources[example.lang or "?"] else held).append(example)
    return team, held, team_sources


def as_decisions(classifier: Classifier, posts: list[Example]) -> list[Example]:
    decided = []
    for post in posts:
        said = classifier.classify(post.text).situation
        kind = CONFIRMED if said == post.label else (REJECTED if post.label == "trolling" else CORRECTED)
        decided.append(Example(post.text, post.label, post.lang, post.id, kind))
    return decided


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE, help="labelled JSON lines with `source`")
    parser.add_argument("--check", type=Path, help="another labelled file to measure both models on")
    parser.add_argument("--weight", type=float, help="weight of one decision (default: train's EXTRA_WEIGHT)")
    args = parser.parse_args()
    if not args.file.exists():
        print(f"skipped: {args.file} is absent (the measuring files live outside the repository)")
        return 0
    shipped = Classifier.load()
    team, held, sources = split_by_source(args.file)
    decisions = as_decisions(shipped, team)
    kinds = Counter(d.source for d in decisions)
    print(f"team's decisions: {len(team)} posts from {sources}; {dict(kinds)}")
    print(f"measured on: {len(held)} posts from the other sources")
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory) / "model.bin"
        extra = {"extra_weight": args.weight} if args.weight is not None else {}
        report = train(out, extra=decisions, **extra)
        retrained = Classifier.load(model_path=out)
        print(f"retrained with {report.extra_examples} decisions ({report.examples} examples in all)\n")
        sets = [("held-out part of " + args.file.name, held)]
        if args.check is not None and args.check.exists():
            sets.append((args.check.name, load_labelled(args.check)))
        for name, examples in sets:
            for title, model in (("before", shipped), ("after", retrained)):
                pairs = [(e, model.classify(e.text)) for e in examples]
                print(format_summary(report_of(pairs, 0.55), f"{name}, {title}"))
                print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
