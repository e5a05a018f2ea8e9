"""Checks for setting values: each turns a value as read into the value kept, or says what is expected."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from enum import Enum
from typing import Any

from bot.clock import parse_duration
from bot.models import LANGUAGES

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

__all__ = [
    "addresses",
    "concurrency",
    "duration",
    "email",
    "fraction",
    "handles",
    "language",
    "log_level",
    "one_line",
    "one_of",
    "port",
    "positive",
    "url",
]


def duration(value: Any) -> float:
    return parse_duration(value)


def fraction(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"expected a number from 0 to 1, got {value!r}")
    return float(value)


def _from_text(value: Any) -> Any:
    """A whole number written as text is that number: `${METRICS_PORT}` gives text, and two workers on one
    host share a config file only if their ports can come from the environment."""
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    return value


def positive(value: Any) -> int:
    value = _from_text(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"expected a whole number of at least 1, got {value!r}")
    return value


MAX_CONCURRENCY = 16


def concurrency(value: Any) -> int:
    value = _from_text(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CONCURRENCY:
        raise ValueError(f"expected a whole number from 1 to {MAX_CONCURRENCY}, got {value!r}")
    return value


def port(value: Any) -> int:
    value = _from_text(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise ValueError(f"expected a port number (1-65535), got {value!r}")
    return value


def email(value: Any) -> str:
    if not isinstance(value, str) or not _EMAIL.match(value):
        raise ValueError(f"expected an email address, got {value!r}")
    return value


def one_line(value: Any) -> str:
    """A name for logs and for the database's keys: some text, on one line."""
    if not isinstance(value, str) or not value.strip() or any(c in value for c in "\r\n"):
        raise ValueError(f"expected a name on one line, got {value!r}")
    return value


def url(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
    return value


def language(value: Any) -> str:
    if value not in LANGUAGES:
        raise ValueError(f"expected one of {', '.join(LANGUAGES)}, got {value!r}")
    return str(value)


def log_level(value: Any) -> str:
    levels = ("DEBUG", "INFO", "WARNING", "ERROR")
    if not isinstance(value, str) or value.upper() not in levels:
        raise ValueError(f"expected one of {', '.join(levels)}, got {value!r}")
    return value.upper()


def one_of(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
        return str(value)

    return check


def member_of(kind: type[Enum]) -> Callable[[Any], Enum]:
    def check(value: Any) -> Enum:
        try:
            return kind(value)
        except ValueError:
            raise ValueError(f"expected one of {', '.join(str(m.value) for m in kind)}, got {value!r}") from None

    return check


def addresses(value: Any) -> tuple[str, ...]:
    """IP addresses or networks (CIDR), e.g. 10.0.0.5 or 10.0.0.0/8."""
    found = []
    for item in value:
        try:
            found.append(str(ipaddress.ip_network(str(item), strict=False)))
        except ValueError:
            raise ValueError(f"expected IP addresses or networks like 10.0.0.5 or 10.0.0.0/8, got {item!r}") from None
    return tuple(found)


def handles(value: Any) -> tuple[str, ...]:
    """The brand's handles, lower-case and without "@"."""
    return tuple(str(h).lstrip("@").lower() for h in value)
