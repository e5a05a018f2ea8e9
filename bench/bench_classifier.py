"""Classifier benchmark: throughput on one core, and the time and memory to load.

    python bench/bench_classifier.py [--file posts.jsonl] [--posts 20000] [--json]

Throughput runs in this process (one core, no threads); load is measured in fresh interpreters,
so imports and file parsing count, as they do when the daemon starts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

_LOAD_PROBE = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
from bot.classifier import Classifier
classifier = Classifier.load()
classifier.classify("warm-up: is everything ok?")
seconds = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"seconds": seconds, "rss_growth_mb": (rss - base) / 1024}}))
"""


def load_figures(runs: int) -> dict[str, float]:
    samples = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-c", _LOAD_PROBE.format(root=str(ROOT))],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
        samples.append(json.loads(done.stdout))
    return {
        "load_seconds_median": round(statistics.median(s["seconds"] for s in samples), 3),
        "load_seconds_max": round(max(s["seconds"] for s in samples), 3),
        "load_rss_growth_mb": round(max(s["rss_growth_mb"] for s in samples), 1),
    }


def read_texts(path: Path | None) -> list[str]:
    if path is not None:
        return [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    from bot.classifier.examples import load_training

    return [example.text for example in load_training()]


def throughput(texts: list[str], posts: int) -> dict[str, float]:
    from bot.classifier import Classifier

    classifier = Classifier.load()
    for text in texts[:200]:
        classifier.classify(text)
    rounds = []
    done = 0
    while done < posts:
        batch = texts[: posts - done] if posts - done < len(texts) else texts
        start = time.process_time()
        for text in batch:
            classifier.classify(text)
        rounds.append((len(batch), time.process_time() - start))
        done += len(batch)
    total_posts = sum(n for n, _ in rounds)
    total_seconds = sum(s for _, s in rounds)
    return {
        "posts": total_posts,
        "cpu_seconds": round(total_seconds, 3),
        "posts_per_second": round(total_posts / total_seconds),
        "mean_chars": round(statistics.mean(len(t) for t in texts), 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, help="JSON lines with `text` (default: the training examples)")
    parser.add_argument("--posts", type=int, default=20000, help="posts to classify for throughput")
    parser.add_argument("--load-runs", type=int, default=3, help="fresh interpreters to time the load in")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = {**load_figures(args.load_runs), **throughput(read_texts(args.file), args.posts)}
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(
            f"throughput: {figures['posts_per_second']} posts/s on one core "
            f"({figures['posts']} posts, mean {figures['mean_chars']} chars, {figures['cpu_seconds']} s CPU)\n"
            f"load: {figures['load_seconds_median']} s median, {figures['load_seconds_max']} s max "
            f"(fresh interpreter, imports included); memory: +{figures['load_rss_growth_mb']} MB peak RSS"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
