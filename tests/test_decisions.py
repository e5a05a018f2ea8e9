"""The team's decisions as training examples: merged, masked, folded into `carebot train`, measured by eval.

The decisions are made as a team makes them: re-routing in the desk, approving and rejecting with the CLI.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from bot.classifier import Classifier
from bot.classifier.decisions import CONFIRMED, CORRECTED, REJECTED, merge_decisions
from bot.classifier.examples import Example
from bot.classifier.model import MODEL_PATH
from bot.cli import main as cli
from bot.cli.classify import main
from bot.config import load_config
from bot.decide.playbooks import Playbooks, load_playbooks, vocabulary
from bot.run.decisions import labelled_decisions
from bot.storage import Storage
from bot.web.asgi import create_app
from tests import test_web as web


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


# What people decide in the desk and with `carebot queue`: the bot calls questions about the brand's
# Zorblax pass simple questions; the team re-routes two of them to price_question in the desk, approves
# a price reply as it is with the CLI, and rejects a "zorblax" joke as trolling.
RE_ROUTED = (
    "@brand does the zorblax pass include the weekend?",
    "@brand can I use the zorblax pass on two devices?",
)
APPROVED = "@brand how much is the zorblax pass per month?"
TROLLING = "@brand great job on the zorblax pass, said no one ever"


@pytest.fixture(scope="module")
def brains() -> tuple[Classifier, Playbooks]:
    playbooks = load_playbooks()
    return Classifier.load(vocabulary(playbooks)), playbooks


@pytest.fixture()
def decided(tmp_path: Path, brains: tuple[Classifier, Playbooks], monkeypatch: pytest.MonkeyPatch) -> Path:
    """A deployment whose team made its decisions through the desk and the CLI; its config's path."""
    config_path = web.write_config(tmp_path, f"sqlite:///{tmp_path / 'desk.db'}")
    for name, value in web.ENV.items():
        monkeypatch.setenv(name, value)
    config = load_config(config_path, web.ENV)
    storage = Storage.open(config.storage.url)
    try:
        seeded = {text: web.seed(storage, *brains, config, text, author=f"u{n}") for n, text in enumerate(
            (*RE_ROUTED, APPROVED, TROLLING)
        )}  # fmt: skip
        with TestClient(create_app(config, storage, *brains), follow_redirects=False) as client:
            csrf = web.log_in(client)
            for text in RE_ROUTED:
                reply_id = seeded[text]
                answer = client.post(
                    f"/replies/{reply_id}/situation",
                    data={"csrf": csrf, "situation": "price_question", "shown": storage.replies.get(reply_id).text},
                )
                assert answer.status_code == 303, answer.text
        assert cli(["queue", "approve", str(seeded[APPROVED]), "--config", str(config_path)]) == 0
        assert cli(["queue", "reject", str(seeded[TROLLING]), "--trolling", "--config", str(config_path)]) == 0
    finally:
        storage.close()
    return config_path


def test_decisions_made_in_the_desk_and_the_cli_are_kept_masked(decided: Path) -> None:
    examples = labelled_decisions(load_config(decided, web.ENV))
    by_text = {e.text: (e.label, e.source) for e in examples}
    assert by_text[RE_ROUTED[0]] == ("price_question", CORRECTED)
    assert by_text[RE_ROUTED[1]] == ("price_question", CORRECTED)
    assert by_text[TROLLING] == ("trolling", REJECTED)
    assert by_text[APPROVED][1] == CONFIRMED


def test_train_with_decisions_changes_the_answer_on_a_post_like_them(
    decided: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = decided
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
    decided: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = decided
    labelled = tmp_path / "posts.jsonl"
    labelled.write_text(json.dumps({"text": "@Acme my internet is down", "label": "complaint"}) + "\n")
    assert main(["eval", str(labelled), "--decisions", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert f"## {labelled}" in out and "## team decisions" in out and "## all files together" in out
    assert "== overall: 4 posts" in out and "== overall: 5 posts" in out


def test_train_never_overwrites_the_shipped_model_with_a_deployments_data(
    decided: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = decided
    shipped = MODEL_PATH.read_bytes()
    assert main(["train", "--with-decisions", "--config", str(config)]) == 2
    assert "give --out FILE" in capsys.readouterr().err
    assert main(["train", "--with-decisions", "--config", str(config), "--out", str(MODEL_PATH)]) == 2
    assert "--replace-shipped" in capsys.readouterr().err
    assert MODEL_PATH.read_bytes() == shipped
