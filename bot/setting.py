"""How a setting is declared: a dataclass field that carries its doc and its check.

The config reader (`bot.config.read`) walks such dataclasses, so each key's name, type, default, doc and
validation are written once, where the setting is used. Connectors declare their own account options
the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, field
from typing import Any

Check = Callable[[Any], Any]  # value as read -> value to keep; ValueError("what is expected") otherwise


def setting(
    default: Any = MISSING,
    *,
    doc: str,
    check: Check | None = None,
    factory: Callable[[], Any] | None = None,
    secret: bool = False,
    read: Callable[..., Any] | None = None,
    shown: bool = True,
) -> Any:
    """A dataclass field for one config key.

    - `check` turns the value as read into the value kept, or raises ValueError saying what is expected;
    - `secret`: the value may also come from `<key>_file`, and is never echoed or shown in a repr;
    - `read(reader, value, path)` replaces the generic reading for keys with a shape of their own;
    - `shown=False` keeps a value that is not a secret but is sensitive (password hashes) out of reprs;
    - no default (and no factory) means the key is required.
    """
    metadata = {"doc": doc, "check": check, "secret": secret, "read": read}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata, repr=shown and not secret)
    return field(default=default, metadata=metadata, repr=shown and not secret)


def internal(default: Any = MISSING, *, factory: Callable[[], Any] | None = None, repr: bool = True) -> Any:
    """A field that is not a config key (set by the reader itself, like the config file's path)."""
    metadata = {"internal": True}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata, repr=repr)
    return field(default=default, metadata=metadata, repr=repr)
