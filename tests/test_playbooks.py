from __future__ import annotations

import dataclasses
import importlib.resources
from pathlib import Path

import pytest

from bot.decide.playbooks import MIN_VARIANTS, PlaybookError, load_playbooks, vocabulary
from bot.models import LANGUAGES, SITUATIONS, Action


def copy_shipped(tmp_path: Path) -> Path:
    target = tmp_path / "playbooks"
    target.mkdir()
    for entry in importlib.resources.files("playbooks").iterdir():
        if entry.name.endswith(".yaml"):
            (target / entry.name).write_text(entry.read_text("utf-8"), "utf-8")
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text("utf-8")
    assert text.count(old) == 1, f"{old!r} must occur once in {path.name}"
    path.write_text(text.replace(old, new), "utf-8")


def line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


def problems_of(directory: Path) -> list[str]:
    with pytest.raises(PlaybookError) as caught:
        load_playbooks(directory)
    assert str(caught.value) == "\n".join(caught.value.problems)
    return caught.value.problems


def test_the_shipped_playbooks_load_and_cover_every_situation() -> None:
    playbooks = load_playbooks()
    assert tuple(playbooks.by_situation) == SITUATIONS
    for situation, playbook in playbooks.by_situation.items():
        assert playbook.situation == situation
        assert playbook.rules[-1].when is None
        for rule in playbook.rules:
            for name in (rule.template, rule.direct_template):
                if name is not None:
                    assert set(playbook.templates[name]) == set(LANGUAGES)
                    assert all(len(v) >= MIN_VARIANTS for v in playbook.templates[name].values())
    assert playbooks["complaint"].urgent
    assert playbooks["complaint"].priority == max(p.priority for p in playbooks.by_situation.values())
    assert {r.action for r in playbooks["trolling"].rules} == {Action.RECORD}
    assert not playbooks["trolling"].templates


def test_a_copy_of_the_shipped_playbooks_loads_from_a_directory(tmp_path: Path) -> None:
    directory = copy_shipped(tmp_path)
    copied, shipped = load_playbooks(directory), load_playbooks()
    for situation in SITUATIONS:
        assert copied[situation].source == str(directory / f"{situation}.yaml")
        assert copied[situation] == dataclasses.replace(shipped[situation], source=copied[situation].source)


@pytest.mark.parametrize(
    ("file", "old", "new", "needle", "key", "words"),
    [
        (
            "complaint.yaml",
            "priority: 100\n",
            "priority: 100\ncolour: red\n",
            "colour: red",
            "colour",
            "unknown key",
        ),
        ("complaint.yaml", "urgent: true", "urgent: very", "urgent: very", "urgent", "must be true or false"),
        ("complaint.yaml", "priority: 100", "priority: high", "priority: high", "priority", "whole number"),
        ("contact_request.yaml", "approval: auto", "approval: sometimes", "approval:", "approval", "one of"),
        (
            "trolling.yaml",
            "    action: record",
            "    action: delete_post",
            "delete_post",
            "rules[0].action",
            "must be one of reply, record, ignore",
        ),
        (
            "complaint.yaml",
            "      - \"Sorry about this. We'd like",
            "      - \"Sorry about this, {name}. We'd like",
            "{name}",
            "templates.ack.en[3]",
            "unknown placeholder {name}",
        ),
        (
            "price_question.yaml",
            '      - "Thanks for asking. Our current prices',
            '      - "Thanks for asking @you. Our current prices',
            "@you",
            "templates.pricing.en[0]",
            "no handles, links or addresses",
        ),
        (
            "complaint.yaml",
            "      - \"I'm sorry this isn't working for you.",
            "      - \"We apologise for any inconvenience. I'm sorry this isn't working for you.",
            "apologise for any",
            "templates.ack.en[0]",
            "stock phrase",
        ),
        (
            "contact_request.yaml",
            "    template: channels",
            "    template: channel_list",
            "channel_list",
            "rules[0].template",
            "no template called 'channel_list'",
        ),
        (
            "complaint.yaml",
            "    when: {personal_data: true}",
            "    when: {personal_data: true, sentiment: negative}",
            "sentiment",
            "rules[0].when.sentiment",
            "unknown key (allowed: personal_data, angry, keywords, platform)",
        ),
        (
            "complaint.yaml",
            "    when: {angry: true}",
            "    when: {angry: true, platform: facebook}",
            "facebook",
            "rules[1].when.platform",
            "must be one of mastodon, x",
        ),
        (
            "trolling.yaml",
            "  - name: default\n    action: record",
            "  - name: default\n    when: {angry: true}\n    action: record",
            "when: {angry",
            "rules[0].when",
            "the last rule must have no `when`",
        ),
        (
            "other.yaml",
            'suggest*"',
            'sug*gest"',
            "sug*gest",
            "rules[0].when.keywords.en[7]",
            "`*` may only end a word",
        ),
        (
            "trolling.yaml",
            "situation: trolling",
            "situation: complaint",
            "situation:",
            "situation",
            "file's name",
        ),
        (
            "trolling.yaml",
            "    action: record",
            "    action: record\n    template: pricing",
            "template: pricing",
            "rules[0].template",
            "only a reply has a template",
        ),
        (
            "complaint.yaml",
            "urgent: true\n",
            "urgent: true\nurgent: false\n",
            "urgent: false",
            "urgent",
            "given twice",
        ),
        (
            "complaint.yaml",
            "  keywords:\n    en:",
            '  keywords:\n    fr: ["en panne"]\n    en:',
            "en panne",
            "classifier.keywords.fr",
            "unknown key (allowed: en, ru, id, ar)",
        ),
    ],
)
def test_a_bad_playbook_names_file_line_and_key(
    tmp_path: Path, file: str, old: str, new: str, needle: str, key: str, words: str
) -> None:
    directory = copy_shipped(tmp_path)
    edit(directory / file, old, new)
    problems = problems_of(directory)
    prefix = f"{directory / file}:{line_of(directory / file, needle)}: {key}: "
    assert any(p.startswith(prefix) and words in p for p in problems), problems


def test_a_template_missing_a_language_is_named_with_its_line(tmp_path: Path) -> None:
    directory = copy_shipped(tmp_path)
    path = directory / "other.yaml"
    text = path.read_text("utf-8")
    start = text.index("  idea_thanks:")
    ar = text.index("    ar:", start)
    path.write_text(text[:ar], "utf-8")  # the file ends before idea_thanks' Arabic variants
    problems = problems_of(directory)
    assert f"{path}:{line_of(path, 'idea_thanks:')}: templates.idea_thanks: missing language 'ar'" in "\n".join(
        problems
    )


def test_too_few_variants_are_an_error(tmp_path: Path) -> None:
    directory = copy_shipped(tmp_path)
    path = directory / "other.yaml"
    edit(path, '      - "That\'s lovely to hear, thank you for taking the time to tell us!"\n', "")
    problems = problems_of(directory)
    assert any(
        p.startswith(f"{path}:{line_of(path, 'praise_thanks:') + 1}: templates.praise_thanks.en: needs at least 3")
        for p in problems
    ), problems


def test_every_problem_in_every_file_is_reported_at_once(tmp_path: Path) -> None:
    directory = copy_shipped(tmp_path)
    edit(directory / "trolling.yaml", "    action: record", "    action: shout")
    edit(directory / "complaint.yaml", "approval: auto", "approval: maybe")
    (directory / "price_question.yaml").unlink()
    (directory / "refunds.yaml").write_text("situation: refunds\n", "utf-8")
    problems = problems_of(directory)
    assert len(problems) == 4, problems
    joined = "\n".join(problems)
    assert "trolling.yaml:" in joined and "complaint.yaml:" in joined
    assert f"{directory}/price_question.yaml: missing" in joined
    assert f"{directory / 'refunds.yaml'}:1: no situation is called 'refunds'" in joined


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    directory = copy_shipped(tmp_path)
    edit(directory / "trolling.yaml", "priority: 0", "priority: [0")
    problems = problems_of(directory)
    assert len(problems) == 1 and problems[0].startswith(f"{directory / 'trolling.yaml'}:")
    assert "not valid YAML" in problems[0]


def test_a_missing_directory_is_one_clear_problem(tmp_path: Path) -> None:
    assert problems_of(tmp_path / "nowhere") == [f"{tmp_path / 'nowhere'}: not a directory of playbooks"]


def test_vocabulary_carries_the_brand_keywords_and_examples() -> None:
    pytest.importorskip("bot.classifier", reason="the classifier package is not there yet")
    playbooks = load_playbooks()
    words = vocabulary(playbooks)
    assert "charged twice" in words.keywords["complaint"]["en"]
    assert set(words.examples["contact_request"]) == set(LANGUAGES)
    assert "other" not in words.keywords  # other.yaml gives the classifier nothing
