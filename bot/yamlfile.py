"""YAML that remembers where each value came from, for messages like ``carebot.yaml:12: accounts[0].mode: ...``.

The config and the playbooks are both read through `read_yaml`: plain data (dicts, lists, scalars as
YAML's safe loader types them), the line of every key path, and a `Problems` list that formats each
problem as ``file:line: key.path: message``. A key given twice is a problem, not a silent overwrite.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

KeyPath = tuple[str | int, ...]


def show_path(path: KeyPath) -> str:
    """("accounts", 0, "mode") -> "accounts[0].mode"."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


@dataclass
class Problems:
    """Every problem found in one file, each with its line; raise them all at once at the end."""

    label: str  # the file, as messages name it
    lines: dict[KeyPath, int] = field(default_factory=dict)  # the line of each key (or list item)
    starts: dict[KeyPath, int] = field(default_factory=dict)  # where a mapping or list value begins
    found: list[str] = field(default_factory=list)

    def line_of(self, path: KeyPath) -> int:
        """The line of `path`, or of its nearest ancestor that has one (1 for the top)."""
        return next((self.lines[path[:n]] for n in range(len(path), 0, -1) if path[:n] in self.lines), 1)

    def start_of(self, path: KeyPath) -> int:
        """Where the value at `path` begins: for a mapping, its first key (what it lacks is reported there)."""
        return self.starts.get(path) or self.line_of(path)

    def add(self, path: KeyPath, message: str, line: int | None = None) -> None:
        where = self.line_of(path) if line is None else line
        self.found.append(f"{self.label}:{where}: {show_path(path) or '(top)'}: {message}")

    def add_plain(self, message: str, line: int | None = None) -> None:
        """A problem of the file itself, not of a key."""
        self.found.append(f"{self.label}:{line}: {message}" if line is not None else f"{self.label}: {message}")

    def __bool__(self) -> bool:
        return bool(self.found)


def read_yaml(text: str, label: str) -> tuple[Any, Problems]:
    """The document's data and the problems found so far (invalid YAML, keys given twice).

    Invalid YAML gives `None` data and one problem naming the line.
    """
    problems = Problems(label)
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        problems.add_plain(f"not valid YAML: {plain_words(exc)}", line)
        return None, problems
    finally:
        loader.dispose()
    if root is not None:
        problems.starts[()] = root.start_mark.line + 1
        _index(root, (), problems)
    return data, problems


def plain_words(exc: yaml.YAMLError) -> str:
    """What PyYAML's message means, for a person editing the file."""
    problem = str(getattr(exc, "problem", None) or exc)
    context = str(getattr(exc, "context", None) or "")
    if "'\\t'" in problem or "\t" in problem:
        return "a tab indents this line: YAML is indented with spaces only"
    if problem.startswith("found character") and "cannot start any token" in problem:
        char = problem.split("'")[1] if "'" in problem else "?"
        return f"a value cannot start with {char!r}: put the value in quotes"
    if "mapping values are not allowed here" in problem:
        return "a ':' where it cannot be: put a value holding ': ' in quotes, or check that 'key: value' is one line"
    if "quoted scalar" in context:
        return "a quote is opened and never closed"
    if "flow sequence" in context:
        return "a list in [...] is not closed with ']' (or lacks a ',' between items)"
    if "flow mapping" in context:
        return "a mapping in {...} is not closed with '}' (or lacks a ',' between items)"
    if "block mapping" in context or "block collection" in context:
        return "this line is not indented like the keys around it (or mixes '- item' with 'key: value')"
    if "undefined alias" in problem:
        return f"{problem} ('*' starts an alias: put the value in quotes)"
    if "could not find expected ':'" in problem:
        return "a line has a key without ':' (write 'key: value')"
    return problem


def _index(node: yaml.Node, path: KeyPath, problems: Problems) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = str(key.value)
            line = key.start_mark.line + 1
            problems.lines.setdefault((*path, name), line)
            if name in seen:
                problems.add((*path, name), "given twice", line=line)
            seen.add(name)
            if isinstance(value, yaml.MappingNode | yaml.SequenceNode):
                problems.starts.setdefault((*path, name), value.start_mark.line + 1)
            _index(value, (*path, name), problems)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            problems.lines[(*path, i)] = item.start_mark.line + 1
            _index(item, (*path, i), problems)
