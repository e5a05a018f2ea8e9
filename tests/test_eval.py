"""`carebot eval`, `classify` and `train` from the command line, and the metrics they print."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.classifier import Classification
from bot.classifier.evaluate import metrics
from bot.classifier.examples import Example
from bot.cli.classify import main

POSTS = [
    {"id": 1, "lang": "en", "text": "@AcmeTel my internet is down since yesterday, fix it", "label": "complaint"},
    {"id": 2, "lang": "en", "text": "@AcmeTel how much is the unlimited plan per month?", "label": "price_question"},
    {"id": 3, "lang": "ru", "text": "@AcmeTel интернет не работает третий день", "label": "complaint"},
    {"id": 4, "lang": "ru", "text": "@AcmeTel спасибо, всё отлично!", "label": "other"},
    {"id": 5, "lang": "id", "text": "@AcmeTel sinyal ilang terus dari kemarin min", "label": "complaint"},
    {"id": 6, "lang": "ar", "text": "@AcmeTel كم سعر الباقة الشهرية؟", "label": "price_question"},
]


def _result(situation: str, lang: str = "en", confidence: float = 0.9) -> Classification:
    return Classification(lang, 0.9, situation, confidence, {situation: confidence}, (), False, False, False)


def test_metrics_are_computed_per_label() -> None:
    pairs = [
        (Example("a", "complaint", "en"), _result("complaint")),
        (Example("b", "complaint", "en"), _result("complaint")),
        (Example("c", "complaint", "en"), _result("trolling", confidence=0.4)),
        (Example("d", "other", "en"), _result("complaint", confidence=0.6)),
        (Example("e", "price_question", "ru"), _result("price_question", lang="en")),
    ]
    m = metrics(pairs)
    assert m.posts == 5
    assert m.accuracy == 0.6
    complaint = m.labels["complaint"]
    assert (complaint.precision, complaint.recall, complaint.support) == (0.6667, 0.6667, 3)
    assert m.labels["price_question"].f1 == 1.0
    assert m.labels["other"].f1 == 0.0
    # macro-F1 over the labels present in the file: complaint, price_question, other
    assert m.macro_f1 == round((0.6667 + 1.0 + 0.0) / 3, 4)
    assert m.confusion["complaint"]["trolling"] == 1
    assert m.confusion["other"]["complaint"] == 1
    assert m.customer_as_trolling == 0.25  # 1 of 4 customer posts
    assert m.language_accuracy == 0.8
    assert [b["posts"] for b in m.calibration] == [1, 1, 0, 3]


@pytest.fixture()
def labelled(tmp_path: Path) -> Path:
    path = tmp_path / "posts.jsonl"
    path.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in POSTS), encoding="utf-8")
    return path


def test_eval_prints_overall_and_per_language(labelled: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(labelled)]) == 0
    out = capsys.readouterr().out
    for section in ("== overall: 6 posts", "== en: 2 posts", "== ru: 2 posts", "== id: 1 posts", "== ar: 1 posts"):
        assert section in out
    assert "macro-F1" in out and "language 1.000 (6)" in out
    assert "confusion (rows gold, columns predicted)" in out
    assert "complaint recall" in out


def test_eval_json_is_one_document(labelled: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(labelled), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["overall"]["posts"] == 6
    assert set(report["by_language"]) == {"en", "ru", "id", "ar"}
    assert 0.0 <= report["overall"]["macro_f1"] <= 1.0
    assert report["overall"]["labels"]["complaint"]["support"] == 3
    assert sum(sum(row.values()) for row in report["overall"]["confusion"].values()) == 6


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"text": "ok", "label": "other"}\nnot json\n', ":2: not valid JSON"),
        ('{"text": "ok"}\n', ":1: missing string field 'label'"),
        ('{"label": "other"}\n', ":1: missing string field 'text'"),
        ('{"text": "ok", "label": "praise"}\n', ":1: unknown label 'praise'"),
        ("[1, 2]\n", ":1: expected a JSON object"),
    ],
)
def test_eval_names_the_bad_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    assert main(["eval", str(path)]) == 2
    assert f"{path}{message}" in capsys.readouterr().err


def test_eval_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(tmp_path / "nope.jsonl")]) == 2
    assert "nope.jsonl: cannot open" in capsys.readouterr().err


def test_classify_one_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["classify", "@AcmeTel WTF my internet is down AGAIN!!! call me +44 7700 900123"]) == 0
    line = capsys.readouterr().out
    assert line.startswith("complaint (")
    assert "lang en" in line and "personal data: phone" in line and "angry" in line


def test_classify_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["classify", "--json", "--default-lang", "ru", "bonjour"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["lang"] == "ru"
    assert {"situation", "confidence", "scores", "personal_data", "angry", "opt_out", "bot_like"} <= set(result)


def test_classify_jsonl_passes_fields_through(labelled: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["classify", "--jsonl", str(labelled)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["id"] for line in lines] == [1, 2, 3, 4, 5, 6]
    assert all({"lang", "situation", "confidence", "label", "text"} <= set(line) for line in lines)


def test_classify_jsonl_stops_at_a_bad_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"text": "hello"}\n\n{"txt": "oops"}\n', encoding="utf-8")
    assert main(["classify", "--jsonl", str(path)]) == 2
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 1
    assert f"{path}:3: missing string field 'text'" in captured.err


def test_classify_needs_text_or_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["classify"]) == 2
    assert "give either a TEXT or --jsonl FILE" in capsys.readouterr().err


def test_train_writes_a_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    data.mkdir()
    labels = ["complaint", "simple_question", "price_question", "contact_request", "trolling", "other"]
    texts = ["it is broken", "how do i log in", "how much is it", "dm me", "you suck lol", "nice logo"]
    pairs = list(zip(texts, labels, strict=True))
    lines = [json.dumps({"text": f"{t} {n}", "label": label}) for n in range(3) for t, label in pairs]
    (data / "train-en.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "model.bin"
    assert main(["train", "--data", str(data), "--out", str(out), "--folds", "0"]) == 0
    assert f"wrote {out}: 18 examples (0 from the brand, 0 from the team's decisions)" in capsys.readouterr().out
    assert main(["classify", "--model", str(out), "--json", "how much is it"]) == 0
    assert json.loads(capsys.readouterr().out)["situation"] == "price_question"


def test_train_refuses_too_few_examples(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "train-en.jsonl").write_text('{"text": "broken", "label": "complaint"}\n', encoding="utf-8")
    assert main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "m.json")]) == 2
    assert "need at least 2 examples of every situation" in capsys.readouterr().err


def test_the_mistakes_that_hurt_and_the_automatic_answers_are_measured() -> None:
    sarcasm = Classification("en", 0.9, "other", 0.95, {"other": 0.95}, (), False, False, False, True, "sarcasm?")
    pairs = [
        (Example("a", "other", "en"), _result("complaint", confidence=0.6)),  # praise called a complaint
        (Example("b", "other", "en"), _result("other", confidence=0.9)),
        (Example("c", "trolling", "en"), _result("complaint", confidence=0.8)),  # a troll would get an apology
        (Example("d", "trolling", "en"), _result("trolling", confidence=0.9)),
        (Example("e", "trolling", "en"), _result("price_question", confidence=0.3)),  # a person sees it first
        (Example("f", "complaint", "en"), sarcasm),  # a doubt: a person decides whatever the confidence
    ]
    m = metrics(pairs, min_confidence=0.55)
    assert m.other_as_complaint == 0.5
    assert m.trolling_answered == round(1 / 3, 4)
    assert m.automatic_share == round(4 / 6, 4)  # a, b, c, d: confident and no doubt
    assert m.automatic_accuracy == 0.5  # b and d are right
    # ECE over tenths: 0.3, 0.6 and 0.8 alone and wrong; 0.9, 0.9 and 0.95 together, two right of three.
    assert m.ece == round((0.3 + 0.6 + 0.8 + abs(2 - (0.9 + 0.9 + 0.95))) / 6, 4)


def test_eval_prints_each_file_and_all_together(
    labelled: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    second = tmp_path / "second.jsonl"
    second.write_bytes(labelled.read_bytes())
    assert main(["eval", str(labelled), str(second), "--min-confidence", "0.7"]) == 0
    out = capsys.readouterr().out
    assert f"## {labelled}" in out and f"## {second}" in out and "## all files together" in out
    assert "== overall: 12 posts" in out and "confidence >= 0.70" in out
    for column in ("macroF1", "c-recall", "other>c", "troll-auto", "cust>troll", "auto-acc", "auto-share", "ECE"):
        assert column in out
    assert main(["eval", str(labelled), str(second), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["together"]["overall"]["posts"] == 12 and len(document["files"]) == 2


def test_calibrate_writes_the_named_model_and_leaves_the_shipped_one_alone(
    labelled: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import hashlib
    import shutil

    from bot.classifier.calibration import CALIBRATION_PATH
    from bot.classifier.model import MODEL_PATH, load_model

    def digest(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()

    shipped = (digest(MODEL_PATH), digest(CALIBRATION_PATH))
    model = tmp_path / "model.bin"
    shutil.copy(MODEL_PATH, model)
    assert main(["calibrate", str(labelled), "--model", str(model)]) == 0  # only says what it would choose
    said = capsys.readouterr().out
    assert "calibration on posts.jsonl: 6 posts, sha256 " in said and "  ru: temperature " in said
    assert digest(model) == digest(MODEL_PATH)

    assert main(["calibrate", str(labelled), "--model", str(model), "--write"]) == 0
    assert load_model(model).info["calibration"].startswith("posts.jsonl: 6 posts, sha256 ")
    assert (digest(MODEL_PATH), digest(CALIBRATION_PATH)) == shipped
    assert main(["classify", "--model", str(model), "--json", "@AcmeTel интернет не работает"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["lang"] == "ru"

    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    assert main(["calibrate", str(empty), "--model", str(model)]) == 2
    assert "the files hold no posts" in capsys.readouterr().err
