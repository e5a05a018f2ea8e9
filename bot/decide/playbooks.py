"""Load and check the playbooks: one YAML file per situation, words in data, actions from a closed set.

Every problem names the file, the line and the key path
(``playbooks/complaint.yaml:12: rules[0].action: ...``); all problems are collected and raised
once as `PlaybookError`. The schema is documented in docs/playbooks.md.
"""

from __future__ import annotations

import importlib.resources
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from bot.classifier.vocabulary import BrandVocabulary
from bot.decide.keywords import Keywords, phrase_problem
from bot.decide.render import template_problems, uses_link
from bot.models import LANGUAGES, SITUATIONS, Action
from bot.yamlfile import KeyPath, Problems, read_yaml
from connectors import platform_names

APPROVALS = ("auto", "required")
MIN_VARIANTS = 3  # per language: replies must not repeat word for word
MIN_LINKLESS_VARIANTS = 2  # X and brands without a help page still need some variety

_TOP_KEYS = (
    "situation",
    "urgent",
    "priority",
    "approval",
    "min_confidence",
    "classifier",
    "rules",
    "templates",
)
_RULE_KEYS = ("name", "when", "action", "template", "direct_template", "hands_off")
_CONDITION_KEYS = ("personal_data", "angry", "keywords", "platform")
_CLASSIFIER_KEYS = ("keywords", "examples")
_TEMPLATE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# Message playbooks (not situations): kind -> the signals (keyword lists) it may carry. Each has one
# template named like the kind, except "saved" (any names). A brand's directory may leave them out: the
# shipped ones are used.
MESSAGE_KINDS: Mapping[str, tuple[str, ...]] = {
    "holding": ("escalation", "resolved", "still_broken"),
    "check_back": (),
    "saved": (),  # the team's saved replies for the desk: any template names
    "incident": (),  # topics instead of signals: see below
}
_MESSAGE_KEYS = ("kind", "signals", "topics", "eta", "templates")
# Placeholders a message kind's templates may use beyond the brand's.
MESSAGE_PLACEHOLDERS: Mapping[str, frozenset[str]] = {"incident": frozenset({"topic", "eta"})}
REQUIRED_TEMPLATES: Mapping[str, tuple[str, ...]] = {"incident": ("incident", "fixed")}


class PlaybookError(Exception):
    """The playbooks cannot be used; `problems` holds one "file:line: key.path: what" per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Condition:
    """Every condition given must hold; None means "don't care"."""

    personal_data: bool | None = None
    angry: bool | None = None
    keywords: Keywords | None = None
    platform: str | None = None


@dataclass(frozen=True)
class Rule:
    name: str
    action: Action
    when: Condition | None = None
    template: str | None = None
    direct_template: str | None = None  # private follow-up, skipped where the platform forbids it
    # The reply hands the customer to a person ("DM us or email ..."): to a post that is already private
    # the holding acknowledgement goes instead, privately. On by default where there is a private follow-up.
    hands_off: bool = False


@dataclass(frozen=True)
class Playbook:
    situation: str
    rules: tuple[Rule, ...]
    templates: Mapping[str, Mapping[str, tuple[str, ...]]]  # name -> lang -> variants
    urgent: bool = False
    priority: int = 0
    approval_required: bool = False
    min_confidence: float | None = None  # None: the core's threshold
    keywords: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # for the classifier
    examples: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    source: str = ""


@dataclass(frozen=True)
class Topic:
    """A problem an incident can be about: its words in each language, and its public wording."""

    name: str
    label: Mapping[str, str]  # lang -> the words replies use for it ({topic})
    words: Keywords


@dataclass(frozen=True)
class MessagePlaybook:
    """What the bot says beyond a situation's answer: holding reply, check-back, incident, saved replies."""

    kind: str
    templates: Mapping[str, Mapping[str, tuple[str, ...]]]  # name -> lang -> variants
    signals: Mapping[str, Keywords] = field(default_factory=dict)  # e.g. "escalation" phrases
    source: str = ""
    topics: Mapping[str, Topic] = field(default_factory=dict)  # incident: the brand's problem words
    eta: Mapping[str, str] = field(default_factory=dict)  # incident: lang -> how "{eta}" reads, with {time}


@dataclass(frozen=True)
class Playbooks:
    by_situation: Mapping[str, Playbook]
    messages: Mapping[str, MessagePlaybook] = field(default_factory=dict)

    def __getitem__(self, situation: str) -> Playbook:
        return self.by_situation[situation]


def load_playbooks(directory: Path | None = None) -> Playbooks:
    """The six playbooks from `directory`, or the shipped ones; raises PlaybookError listing every problem."""
    problems: list[str] = []
    sources: list[tuple[str, str, str]] = []  # (label for messages, file stem, text)
    if directory is None:
        package = importlib.resources.files("playbooks")
        for entry in sorted(package.iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".yaml"):
                sources.append((f"playbooks/{entry.name}", entry.name[: -len(".yaml")], entry.read_text("utf-8")))
        where = "playbooks/"
    else:
        directory = Path(directory)
        where = f"{directory}/"
        if not directory.is_dir():
            raise PlaybookError([f"{directory}: not a directory of playbooks"])
        for path in sorted(directory.iterdir()):
            if path.suffix == ".yml":
                problems.append(f"{path}:1: playbooks end in .yaml, this file would be ignored")
            elif path.suffix == ".yaml":
                try:
                    sources.append((str(path), path.stem, path.read_text("utf-8")))
                except (OSError, UnicodeDecodeError) as exc:
                    problems.append(f"{path}:1: cannot read: {exc}")
    found: dict[str, Playbook] = {}
    messages: dict[str, MessagePlaybook] = {}
    for label, stem, text in sources:
        if stem in MESSAGE_KINDS:
            message = _read_message(label, stem, text, problems)
            if message is not None:
                messages[stem] = message
            continue
        if stem not in SITUATIONS:
            problems.append(f"{label}:1: no situation is called {stem!r} (one of: {', '.join(SITUATIONS)})")
            continue
        playbook = _read(label, stem, text, problems)
        if playbook is not None:
            found[stem] = playbook
    missing = [s for s in SITUATIONS if s not in found and not any(stem == s for _, stem, _ in sources)]
    problems.extend(f"{where}{s}.yaml: missing: every situation needs a playbook" for s in missing)
    if problems:
        raise PlaybookError(problems)
    if directory is not None and set(messages) != set(MESSAGE_KINDS):
        shipped = load_playbooks().messages
        messages = {kind: messages.get(kind) or shipped[kind] for kind in MESSAGE_KINDS}
    return Playbooks(MappingProxyType({s: found[s] for s in SITUATIONS}), MappingProxyType(messages))


def vocabulary(playbooks: Playbooks) -> BrandVocabulary:
    """The brand's keywords and example posts from the playbooks' `classifier:` keys."""
    keywords = {s: dict(p.keywords) for s, p in playbooks.by_situation.items() if p.keywords}
    examples = {s: dict(p.examples) for s, p in playbooks.by_situation.items() if p.examples}
    return BrandVocabulary(keywords=keywords, examples=examples)


def _read(label: str, stem: str, text: str, problems: list[str]) -> Playbook | None:
    data, found = read_yaml(text, label)
    checker = _Checker(found)
    playbook = checker.playbook(stem, data) if data is not None or not found else None
    problems.extend(found.found)
    return playbook


def _read_message(label: str, stem: str, text: str, problems: list[str]) -> MessagePlaybook | None:
    data, found = read_yaml(text, label)
    message = _Checker(found).message(stem, data) if data is not None or not found else None
    problems.extend(found.found)
    return message


class _Checker:
    """Walks one file's data, recording problems with the line each key path came from."""

    def __init__(self, problems: Problems) -> None:
        self.problems = problems
        self.extra_placeholders: frozenset[str] = frozenset()

    @property
    def failed(self) -> bool:
        return bool(self.problems)

    def problem(self, path: KeyPath, what: str, line: int | None = None) -> None:
        self.problems.add(path, what, line)

    def mapping(self, value: Any, path: KeyPath, allowed: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.problem(path, f"must be a mapping, not {_kind(value)}")
            return {}
        for key in value:
            if str(key) not in allowed:
                self.problem((*path, str(key)), f"unknown key (allowed: {', '.join(allowed)})")
        return {str(k): v for k, v in value.items() if str(k) in allowed}

    def typed(self, value: Any, path: KeyPath, kind: type, what: str) -> Any:
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if kind is float:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok:
            self.problem(path, f"must be {what}, not {_kind(value)}")
            return None
        return value

    def choice(self, value: Any, path: KeyPath, choices: tuple[str, ...]) -> str | None:
        if value not in choices:
            self.problem(path, f"must be one of {', '.join(choices)}, not {value!r}")
            return None
        return str(value)

    def strings(self, value: Any, path: KeyPath, what: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not value:
            self.problem(path, f"must be a non-empty list of {what}, not {_kind(value)}")
            return ()
        items = []
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                self.problem((*path, i), f"must be a non-empty string, not {_kind(item)}")
            else:
                items.append(item.strip())
        return tuple(items)

    def by_language(self, value: Any, path: KeyPath, what: str) -> dict[str, tuple[str, ...]]:
        out: dict[str, tuple[str, ...]] = {}
        for lang, items in self.mapping(value, path, LANGUAGES).items():
            out[lang] = self.strings(items, (*path, lang), what)
        return out

    def playbook(self, stem: str, data: Any) -> Playbook | None:
        top = self.mapping(data, (), _TOP_KEYS)
        if not top:
            if isinstance(data, dict):
                self.problem((), "empty playbook")
            return None
        for key in ("situation", "rules"):
            if key not in top:
                self.problem((), f"missing key {key!r}")
        if "situation" in top and top["situation"] != stem:
            self.problem(("situation",), f"must be {stem!r}, the file's name, not {top['situation']!r}")
        urgent = self.typed(top.get("urgent", False), ("urgent",), bool, "true or false")
        priority = self.typed(top.get("priority", 0), ("priority",), int, "a whole number")
        approval = self.choice(top.get("approval", "auto"), ("approval",), APPROVALS)
        min_confidence = None
        if top.get("min_confidence") is not None:
            min_confidence = self.typed(top["min_confidence"], ("min_confidence",), float, "a number")
            if min_confidence is not None and not 0 <= min_confidence <= 1:
                self.problem(("min_confidence",), f"must be between 0 and 1, not {min_confidence}")
        keywords: dict[str, tuple[str, ...]] = {}
        examples: dict[str, tuple[str, ...]] = {}
        if "classifier" in top:
            section = self.mapping(top["classifier"], ("classifier",), _CLASSIFIER_KEYS)
            if "keywords" in section:
                keywords = self.by_language(section["keywords"], ("classifier", "keywords"), "phrases")
                for lang, phrases in keywords.items():
                    for i, phrase in enumerate(phrases):
                        if "*" in phrase:
                            self.problem(("classifier", "keywords", lang, i), "`*` works only in rules' keywords")
            if "examples" in section:
                examples = self.by_language(section["examples"], ("classifier", "examples"), "example posts")
        templates = self.templates(top.get("templates", {}))
        rules = self.rules(top.get("rules"), templates) if "rules" in top else ()
        if self.failed:
            return None
        return Playbook(
            situation=stem,
            rules=rules,
            templates=MappingProxyType(templates),
            urgent=urgent,
            priority=priority,
            approval_required=approval == "required",
            min_confidence=float(min_confidence) if min_confidence is not None else None,
            keywords=MappingProxyType(keywords),
            examples=MappingProxyType(examples),
            source=self.problems.label,
        )

    def message(self, kind: str, data: Any) -> MessagePlaybook | None:
        top = self.mapping(data, (), _MESSAGE_KEYS)
        if not top:
            if isinstance(data, dict):
                self.problem((), "empty playbook")
            return None
        if top.get("kind") != kind:
            self.problem(("kind",), f"must be {kind!r}, the file's name, not {top.get('kind')!r}")
        signals: dict[str, Keywords] = {}
        if "signals" in top:
            allowed = MESSAGE_KINDS[kind]
            for name, phrases in self.mapping(top["signals"], ("signals",), allowed).items():
                by_lang = self.by_language(phrases, ("signals", name), "phrases")
                for lang, items in by_lang.items():
                    for i, phrase in enumerate(items):
                        problem = phrase_problem(phrase)
                        if problem:
                            self.problem(("signals", name, lang, i), problem)
                signals[name] = Keywords.of(by_lang)
        topics: dict[str, Topic] = {}
        if "topics" in top:
            if kind != "incident":
                self.problem(("topics",), "only the incident playbook has topics")
            else:
                topics = self.topics(top["topics"])
        eta: dict[str, str] = {}
        if "eta" in top:
            for lang, phrase in self.mapping(top["eta"], ("eta",), LANGUAGES).items():
                if not isinstance(phrase, str) or "{time}" not in phrase:
                    self.problem(("eta", lang), "must be text with {time} in it")
                else:
                    eta[lang] = phrase
        self.extra_placeholders = MESSAGE_PLACEHOLDERS.get(kind, frozenset())
        templates = self.templates(top.get("templates", {}))
        for name in REQUIRED_TEMPLATES.get(kind, () if kind == "saved" else (kind,)):
            if name not in templates:
                self.problem(("templates",), f"needs a template called {name!r}")
        if self.failed:
            return None
        return MessagePlaybook(
            kind,
            MappingProxyType(templates),
            MappingProxyType(signals),
            self.problems.label,
            MappingProxyType(topics),
            MappingProxyType(eta),
        )

    def topics(self, value: Any) -> dict[str, Topic]:
        topics: dict[str, Topic] = {}
        if not isinstance(value, dict) or not value:
            self.problem(("topics",), f"must be a mapping of topic names, not {_kind(value)}")
            return topics
        for name, spec in value.items():
            path: KeyPath = ("topics", str(name))
            if not _TEMPLATE_NAME.match(str(name)):
                self.problem(path, "topic names use a-z, 0-9 and _ and start with a letter")
            fields = self.mapping(spec, path, ("label", "words"))
            labels: dict[str, str] = {}
            for lang, label in self.mapping(fields.get("label"), (*path, "label"), LANGUAGES).items():
                if isinstance(label, str) and label.strip():
                    labels[lang] = label.strip()
                else:
                    self.problem((*path, "label", lang), f"must be text, not {_kind(label)}")
            for lang in LANGUAGES:
                if lang not in labels and isinstance(fields.get("label"), dict) and lang not in fields["label"]:
                    self.problem((*path, "label"), f"missing language {lang!r}")
            words = self.by_language(fields.get("words"), (*path, "words"), "phrases")
            for lang, items in words.items():
                for i, phrase in enumerate(items):
                    problem = phrase_problem(phrase)
                    if problem:
                        self.problem((*path, "words", lang, i), problem)
            topics[str(name)] = Topic(str(name), MappingProxyType(labels), Keywords.of(words))
        return topics

    def templates(self, value: Any) -> dict[str, Mapping[str, tuple[str, ...]]]:
        if value is None:
            return {}
        out: dict[str, Mapping[str, tuple[str, ...]]] = {}
        if not isinstance(value, dict):
            self.problem(("templates",), f"must be a mapping of template names, not {_kind(value)}")
            return out
        for name, langs in value.items():
            path: KeyPath = ("templates", str(name))
            if not _TEMPLATE_NAME.match(str(name)):
                self.problem(path, "template names use a-z, 0-9 and _ and start with a letter")
            by_lang = self.by_language(langs, path, "variants")
            for lang in LANGUAGES:
                if lang not in by_lang and isinstance(langs, dict) and lang not in langs:
                    self.problem(path, f"missing language {lang!r}: every template needs {', '.join(LANGUAGES)}")
            for lang, variants in by_lang.items():
                self.variants(variants, (*path, lang))
            out[str(name)] = MappingProxyType(by_lang)
        return out

    def variants(self, variants: tuple[str, ...], path: KeyPath) -> None:
        if variants and len(variants) < MIN_VARIANTS:
            self.problem(path, f"needs at least {MIN_VARIANTS} variants so replies do not repeat, has {len(variants)}")
        if variants and sum(not uses_link(v) for v in variants) < MIN_LINKLESS_VARIANTS:
            self.problem(path, f"needs at least {MIN_LINKLESS_VARIANTS} variants without {{support_url}} (for X)")
        if len(set(variants)) < len(variants):
            self.problem(path, "has the same variant twice")
        for i, variant in enumerate(variants):
            for what in template_problems(variant, self.extra_placeholders):
                self.problem((*path, i), what)

    def rules(self, value: Any, templates: Mapping[str, Any]) -> tuple[Rule, ...]:
        if not isinstance(value, list) or not value:
            self.problem(("rules",), f"must be a non-empty list of rules, not {_kind(value)}")
            return ()
        rules: list[Rule] = []
        names: set[str] = set()
        for i, raw in enumerate(value):
            path: KeyPath = ("rules", i)
            fields = self.mapping(raw, path, _RULE_KEYS)
            if not fields:
                continue
            name = self.typed(fields.get("name"), (*path, "name"), str, "a name")
            if name in names:
                self.problem((*path, "name"), f"two rules are called {name!r}")
            names.add(str(name))
            action = None
            if "action" not in fields:
                self.problem(path, "missing key 'action'")
            else:
                chosen = self.choice(fields["action"], (*path, "action"), tuple(a.value for a in Action))
                action = Action(chosen) if chosen else None
            when = self.condition(fields["when"], (*path, "when")) if "when" in fields else None
            last = i == len(value) - 1
            if last and "when" in fields:
                self.problem((*path, "when"), "the last rule must have no `when`, so every post gets an answer")
            if not last and "when" not in fields:
                self.problem(path, "only the last rule may leave out `when`: the rules after it are never reached")
            template = self.template_ref(fields, "template", path, templates, action)
            direct = self.template_ref(fields, "direct_template", path, templates, action)
            if action is Action.REPLY and "template" not in fields:
                self.problem(path, "a reply needs a `template`")
            hands_off = direct is not None
            if "hands_off" in fields:
                hands_off = bool(self.typed(fields["hands_off"], (*path, "hands_off"), bool, "true or false"))
            if action is not None and name is not None:
                rules.append(Rule(str(name), action, when, template, direct, hands_off))
        return tuple(rules)

    def template_ref(
        self,
        fields: dict[str, Any],
        key: str,
        path: KeyPath,
        templates: Mapping[str, Any],
        action: Action | None,
    ) -> str | None:
        if fields.get(key) is None:
            return None
        if action is not None and action is not Action.REPLY:
            self.problem((*path, key), f"only a reply has a template (this rule's action is {action.value})")
            return None
        ref = self.typed(fields[key], (*path, key), str, "a template name")
        if ref is not None and ref not in templates:
            self.problem((*path, key), f"no template called {ref!r} under `templates`")
        return str(ref) if ref is not None else None

    def condition(self, value: Any, path: KeyPath) -> Condition | None:
        fields = self.mapping(value, path, _CONDITION_KEYS)
        if isinstance(value, dict) and not value:
            self.problem(path, "empty: leave `when` out instead")
        flags = {
            key: self.typed(fields[key], (*path, key), bool, "true or false") if key in fields else None
            for key in ("personal_data", "angry")
        }
        platform = None
        if "platform" in fields:
            platform = self.choice(fields["platform"], (*path, "platform"), tuple(platform_names()))
        keywords = None
        if "keywords" in fields:
            phrases = self.by_language(fields["keywords"], (*path, "keywords"), "phrases")
            for lang, items in phrases.items():
                for i, phrase in enumerate(items):
                    problem = phrase_problem(phrase)
                    if problem:
                        self.problem((*path, "keywords", lang, i), problem)
            keywords = Keywords.of(phrases)
        return Condition(flags["personal_data"], flags["angry"], keywords, platform)


_KINDS = {
    bool: "true/false",
    int: "a number",
    float: "a number",
    str: "text",
    list: "a list",
    dict: "a mapping",
}


def _kind(value: Any) -> str:
    return "nothing" if value is None else _KINDS.get(type(value), type(value).__name__)
