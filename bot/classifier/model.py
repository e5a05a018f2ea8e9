"""The learned part: a logistic regression and a naive Bayes over the same features, in a binary file.

Each feature row holds the regression's weights (one per label) followed by the naive Bayes
log-likelihoods (one per label). The regression fits the wording of the examples closely; naive
Bayes, averaged over the post's known features, is blunter but degrades more gracefully on posts
unlike the examples. Their probabilities are mixed with a weight chosen by cross-validation, then
shifted per language by the calibration (`bias`, `temperature_by_lang`) chosen on measured posts.

The file (`model.bin`): a magic line, the header length (8 bytes, little-endian), a JSON header,
the feature names (UTF-8, one per line), padding, then the rows as little-endian float32. The rows
are memory-mapped: the operating system reads the pages a post touches, and processes share them.
"""

from __future__ import annotations

import json
import math
import mmap
import os
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.classifier.features import Features

if TYPE_CHECKING:
    import numpy as np

MODEL_PATH = Path(__file__).with_name("model.bin")
MAGIC = b"carebot-model\n"
FORMAT = 3
# The complaint weight of a model trained without cross-validation, or saved before it was learned.
DEFAULT_COMPLAINT_COST = 1.0
_ALIGN = 16


@dataclass(frozen=True)
class LinearModel:
    labels: tuple[str, ...]
    index: Mapping[str, int]  # feature name -> row
    rows: np.ndarray  # per feature: regression weight per label, then naive Bayes log-likelihood per label
    temperature: float = 1.0  # regression logits are divided by it
    nb_gain: float = 10.0  # mean naive Bayes log-likelihood is multiplied by it
    nb_mix: float = 0.0  # share of naive Bayes in the mixed probability
    complaint_cost: float = DEFAULT_COMPLAINT_COST  # the complaint probability is multiplied by it before deciding
    # Calibration on measured posts, per language: a log-prior shift per label, and a temperature for
    # the mixed log-probabilities. Missing languages are left as the examples taught.
    bias: Mapping[str, Sequence[float]] = field(default_factory=dict)
    temperature_by_lang: Mapping[str, float] = field(default_factory=dict)
    info: Mapping[str, Any] = field(default_factory=dict)

    def scores(self, features: Features) -> tuple[list[float], list[float]]:
        """(regression logits, naive Bayes mean log-likelihoods) of a post."""
        import numpy as np

        index = self.index
        found: list[int] = []
        starts: list[int] = []
        scales: list[float] = []
        for names, scale in features.groups:
            rows = [i for i in map(index.get, names) if i is not None]
            if rows:
                starts.append(len(found))
                scales.append(scale)
                found.extend(rows)
        n = len(self.labels)
        if not found:
            return [0.0] * n, [0.0] * n
        # One gather and one sum per group: numpy calls cost more than the arithmetic here.
        by_group = np.add.reduceat(np.take(self.rows, found, axis=0), starts, axis=0, dtype=np.float64)
        logits = np.asarray(scales) @ by_group[:, :n]
        likelihood = by_group[:, n:].sum(axis=0) / len(found)
        return logits.tolist(), likelihood.tolist()

    def raw_probabilities(self, features: Features) -> list[float]:
        """The mixed probabilities as the examples taught them, before any calibration."""
        logits, likelihood = self.scores(features)
        regression = softmax([x / self.temperature for x in logits])
        bayes = softmax([x * self.nb_gain for x in likelihood])
        return [(1 - self.nb_mix) * r + self.nb_mix * b for r, b in zip(regression, bayes, strict=True)]

    def probabilities(self, features: Features, lang: str = "", boost: Sequence[float] | None = None) -> list[float]:
        return self.calibrated(self.raw_probabilities(features), lang, boost)

    def calibrated(self, raw: Sequence[float], lang: str = "", boost: Sequence[float] | None = None) -> list[float]:
        bias = self.bias.get(lang)
        temperature = self.temperature_by_lang.get(lang, 1.0)
        if bias is None and boost is None and temperature == 1.0:
            return list(raw)
        logs = [math.log(max(p, 1e-12)) / temperature for p in raw]
        if bias is not None:
            logs = [x + b for x, b in zip(logs, bias, strict=True)]
        if boost is not None:
            logs = [x + b for x, b in zip(logs, boost, strict=True)]
        return softmax(logs)


def softmax(values: Sequence[float]) -> list[float]:
    top = max(values)
    exps = [math.exp(v - top) for v in values]
    total = sum(exps)
    return [e / total for e in exps]


def save_model(model: LinearModel, path: Path) -> None:
    """Write deterministically: same model, same bytes."""
    import numpy as np

    names = sorted(model.index, key=model.index.__getitem__)
    blob = "\n".join(names).encode("utf-8")
    rows = np.ascontiguousarray(np.asarray(model.rows)[[model.index[name] for name in names]], dtype="<f4")
    header = {
        "format": FORMAT,
        "labels": list(model.labels),
        "temperature": model.temperature,
        "nb_gain": model.nb_gain,
        "nb_mix": model.nb_mix,
        "complaint_cost": model.complaint_cost,
        "bias": {lang: [round(b, 4) for b in values] for lang, values in sorted(model.bias.items())},
        "temperature_by_lang": dict(sorted(model.temperature_by_lang.items())),
        "info": model.info,
        "features": len(names),
        "names_bytes": len(blob),
    }
    head = json.dumps(header, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
    start = len(MAGIC) + 8 + len(head)
    padding = b"\n" * ((-(start + len(blob))) % _ALIGN)
    # A new file renamed over the old one: a process that has the old one mapped keeps reading it whole.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(MAGIC + struct.pack("<Q", len(head)) + head + blob + padding + rows.tobytes())
    os.replace(temporary, path)


def load_model(path: Path = MODEL_PATH) -> LinearModel:
    """The model in `path`, read once per process while the file stays the same: the daemon, the
    web desk and every test build their own classifier, and they share one copy."""
    stat = path.stat()
    return _read_model(path.resolve(), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=4)
def _read_model(path: Path, _mtime_ns: int, _size: int) -> LinearModel:
    import numpy as np

    with open(path, "rb") as handle:
        if handle.read(len(MAGIC)) != MAGIC:
            raise ValueError(f"{path}: not a carebot model file; run `carebot train`")
        (head_length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(head_length))
        if header.get("format") != FORMAT:
            raise ValueError(f"{path}: unsupported model format {header.get('format')!r}; run `carebot train`")
        names = handle.read(header["names_bytes"]).decode("utf-8").split("\n") if header["features"] else []
        start = len(MAGIC) + 8 + head_length + header["names_bytes"]
        offset = start + (-start) % _ALIGN
        # Mapped, not read: the pages a post needs come in when touched. The map outlives the file
        # handle; a rewritten file (`carebot train`) is a new inode, so this map stays consistent.
        mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    labels = tuple(header["labels"])
    rows = np.frombuffer(mapped, dtype="<f4", count=len(names) * 2 * len(labels), offset=offset)
    return LinearModel(
        labels=labels,
        index=dict(zip(names, range(len(names)), strict=True)),
        rows=rows.reshape(len(names), 2 * len(labels)),
        temperature=float(header["temperature"]),
        nb_gain=float(header["nb_gain"]),
        nb_mix=float(header["nb_mix"]),
        complaint_cost=float(header.get("complaint_cost", DEFAULT_COMPLAINT_COST)),
        bias={lang: tuple(float(b) for b in values) for lang, values in header.get("bias", {}).items()},
        temperature_by_lang={lang: float(t) for lang, t in header.get("temperature_by_lang", {}).items()},
        info=header.get("info", {}),
    )
