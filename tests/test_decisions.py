"""The team's decisions as training examples: merged, masked, folded into `carebot train`, measured by eval.

The storage side (`bot.run.decisions.labelled_decisions(config)`) belongs to the daemon; here it is a
stub that returns what the desk and the CLI would have recorded.
"""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.classifier import Classifier
from bot.classifier.decisions import CONFIRMED, CORRECTED, REJECTED, merge_decisions
from bot.classifier.examples import Example
from bot.classifier.model import MODEL_PATH
from bot.cli.classify import DECISIONS_MODULE, main
from tests import configs


def test_one_example_per_post_the_correction_and_the_latest_win() -> None:
    decisions = [
        Example("@Acme is the Zorblax pass 5 dollars?", "simple_question", "en", "1", CONFIRMED),
        Example("@acme  is the zorblax pass 5 dollars?", "price_question", "en", "2", CORRECTED),
        Example("@Acme is the Zorblax pass 5 dollars?", "simple_question", "en", "3", CONFIRMED),  # later, weaker
        Example("@Acme clowns", "other", "en", "4", CORRECTED),
        Example("@Acme clowns", "trolling", "en", "5", REJECTED),  # the latest correction wins
        Example("@Acme thanks!", "other", "en", "6", CONFIRMED),
    ]
    merged = merge_decisions(decisions)
    assert [(e.id, e.label) for e in merged] == [("2", "price_question"), ("5", "trolling"), ("6", "other")]


def test_personal_data_is_masked_before_training() -> None:
    merged = merge_decisions([Example("@Acme call me 415-867-5309 or jane@example.com", "contact_request", "en")])
    assert merged[0].text == "@Acme call me [phone] or [email]"


def _tiny_data(directory: Path) -> Path:
    posts = {
        "complaint": ["my internet is down", "app crashed again", "charged twice, refund me", "parcel never came"],
        "simple_question": ["how do I change my pin?", "do you open on sunday?", "where is the settings menu?"],
        "price_question": ["how much is the plan?", "any student discount?", "why so expensive?"],
        "contact_request": ["dm me please", "what is your support email?", "call me back please"],
        "trolling": ["your brand is trash lol", "who even uses this garbage", "clowns"],
        "other": ["love the new logo", "thanks, great service!", "happy friday everyone"],
    }
    data = directory / "data"
    data.mkdir()
    lines = [json.dumps({"text": t, "label": label}) for label, texts in posts.items() for t in texts]
    (data / "train-en.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return data


# What people decided in the desk and with `carebot queue`: the bot kept calling questions about the
# brand's Zorblax pass simple questions; the team re-routed them to price_question, approved one
# price reply as it was, and rejected a "zorblax" joke as trolling.
TEAM = [
    Example("@Acme is the zorblax pass worth it for a family?", "price_question", "en", "10", CORRECTED),
    Example("@Acme zorblax pass for the weekend, what does it come to?", "price_question", "en", "11", CORRECTED),
    Example("@Acme does the zorblax pass cover two people?", "price_question", "en", "12", CONFIRMED),
    Example("@Acme zorblax pass more like zorblax scam lol", "trolling", "en", "13", REJECTED),
]


@pytest.fixture()
def decisions(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[[list[Example]], Path]:
    """Install a stub `labelled_decisions` returning the given decisions; return a usable --config path."""

    def install(examples: list[Example]) -> Path:
        module = types.ModuleType(DECISIONS_MODULE)
        module.labelled_decisions = lambda config: list(examples)  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, DECISIONS_MODULE, module)
        account = configs.mastodon_account("http://127.0.0.1:9", token="t")
        return configs.write_config(tmp_path, db_url=f"sqlite:///{tmp_path / 'c.db'}", accounts=account)

    return install


def test_train_with_decisions_changes_the_answer_on_a_post_like_them(
    decisions: Callable[[list[Example]], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = decisions(TEAM)
    data = _tiny_data(tmp_path)
    before, after = tmp_path / "before.bin", tmp_path / "after.bin"
    assert main(["train", "--data", str(data), "--out", str(before), "--folds", "0"]) == 0
    assert main(["train", "--data", str(data), "--out", str(after), "--folds", "0", "--with-decisions",
                 "--config", str(config)]) == 0  # fmt: skip
    assert "4 from the team's decisions" in capsys.readouterr().out
    post = "@Acme how about the zorblax pass for my kids?"
    assert Classifier.load(model_path=before).classify(post).situation != "price_question"
    assert Classifier.load(model_path=after).classify(post).situation == "price_question"


def test_eval_measures_the_model_on_the_decisions(
    decisions: Callable[[list[Example]], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = decisions(TEAM)
    labelled = tmp_path / "posts.jsonl"
    labelled.write_text(json.dumps({"text": "@Acme my internet is down", "label": "complaint"}) + "\n")
    assert main(["eval", str(labelled), "--decisions", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert f"## {labelled}" in out and "## team decisions" in out and "## all files together" in out
    assert "== overall: 4 posts" in out and "== overall: 5 posts" in out


def test_train_never_overwrites_the_shipped_model_with_a_deployments_data(
    decisions: Callable[[list[Example]], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config = decisions(TEAM)
    shipped = MODEL_PATH.read_bytes()
    assert main(["train", "--with-decisions", "--config", str(config)]) == 2
    assert "give --out FILE" in capsys.readouterr().err
    assert main(["train", "--with-decisions", "--config", str(config), "--out", str(MODEL_PATH)]) == 2
    assert "--replace-shipped" in capsys.readouterr().err
    assert MODEL_PATH.read_bytes() == shipped


def test_without_a_decisions_store_the_flags_say_why(
    monkeypatch: pytest.MonkeyPatch, decisions: Callable[[list[Example]], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config = decisions([])
    monkeypatch.setitem(sys.modules, DECISIONS_MODULE, None)  # type: ignore[arg-type]
    assert main(["eval", "--decisions", "--config", str(config)]) == 2
    assert "keeps no team decisions" in capsys.readouterr().err
