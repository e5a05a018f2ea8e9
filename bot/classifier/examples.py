"""Labelled posts: the project's training files, a brand's examples, and files given to eval."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.classifier.vocabulary import BrandVocabulary
from bot.models import LANGUAGES, SITUATIONS

DATA_DIR = Path(__file__).with_name("data")


class InputError(ValueError):
    """A file given by the user cannot be read; the message names the file and line."""


@dataclass(frozen=True)
class Example:
    text: str
    label: str
    lang: str | None = None
    id: str | None = None
    source: str = ""


def read_jsonl(path: Path | str, *, require: tuple[str, ...] = ("text",)) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; "-" reads standard input."""
    import sys

    name = "<stdin>" if str(path) == "-" else str(path)
    try:
        stream = sys.stdin if str(path) == "-" else open(path, encoding="utf-8")  # noqa: SIM115
    except OSError as error:
        raise InputError(f"{name}: cannot open: {error.strerror or error}") from error
    try:
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as error:
                raise InputError(f"{name}:{number}: not valid JSON ({error.msg})") from error
            if not isinstance(item, dict):
                raise InputError(f"{name}:{number}: expected a JSON object")
            for key in require:
                if not isinstance(item.get(key), str):
                    raise InputError(f"{name}:{number}: missing string field {key!r}")
            yield number, item
    except UnicodeDecodeError as error:
        raise InputError(f"{name}: not UTF-8 text") from error
    finally:
        if stream is not sys.stdin:
            stream.close()


def load_labelled(path: Path | str) -> list[Example]:
    """A labelled file for eval: `text`, `label`, optional `lang` and `id`."""
    examples = []
    for number, item in read_jsonl(path, require=("text", "label")):
        if item["label"] not in SITUATIONS:
            raise InputError(f"{path}:{number}: unknown label {item['label']!r}")
        lang = item.get("lang")
        examples.append(
            Example(
                text=item["text"],
                label=item["label"],
                lang=lang if isinstance(lang, str) else None,
                id=str(item["id"]) if "id" in item else None,
                source=f"{path}:{number}",
            )
        )
    return examples


def load_training(data_dir: Path = DATA_DIR) -> list[Example]:
    """Every train-<lang>.jsonl present, in a fixed order; the language comes from the file name."""
    examples: list[Example] = []
    for path in sorted(data_dir.glob("train-*.jsonl")):
        lang = path.stem.removeprefix("train-")
        if lang not in LANGUAGES:
            continue
        examples.extend(Example(text=e.text, label=e.label, lang=lang, source=e.source) for e in load_labelled(path))
    return examples


def brand_examples(vocabulary: BrandVocabulary | None) -> list[Example]:
    if vocabulary is None:
        return []
    return [
        Example(text=text, label=situation, lang=lang, source="brand")
        for situation, by_lang in sorted(vocabulary.examples.items())
        for lang, texts in sorted(by_lang.items())
        for text in texts
    ]
