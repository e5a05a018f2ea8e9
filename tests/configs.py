"""Config factory: the carebot.yaml that tests write, built from the blocks they share.

Each account helper takes `None` for a key the test leaves out, so the parser's default applies
exactly as when the key was never written.
"""

from __future__ import annotations

from pathlib import Path

BRAND_YAML = """brand:
  name: Acme
  support_email: help@acme.example
  support_url: https://acme.example/help
"""

# The same brand without a help page: replies can only point at the e-mail address.
EMAIL_ONLY_BRAND_YAML = """brand:
  name: Acme
  support_email: help@acme.example
"""


# Each post its own case (a join window of a millisecond): for suites about answering posts one by one,
# where one customer posts several unrelated scenarios in a row. Following a case is tests/test_cases*.py.
SEPARATE_POSTS = "cases:\n  join_window: 1ms\n"


def _account(lines: dict[str, str | None], extra: str) -> str:
    written = [f"{key}: {value}" for key, value in lines.items() if value is not None]
    return "  - " + "\n    ".join(written) + "\n" + extra


def mastodon_account(
    base_url: str,
    *,
    name: str = "acme-mastodon",
    mode: str | None = "auto",
    token: str | None = "${BRAND_TOKEN}",
    poll_interval: str | None = "1s",
    timeout: str | None = "5s",
    extra: str = "",
) -> str:
    """One entry of `accounts:`; `extra` is more lines of it, indented four spaces, ending in a newline."""
    fields = {
        "name": name,
        "platform": "mastodon",
        "base_url": base_url,
        "access_token": token,
        "mode": mode,
        "poll_interval": poll_interval,
        "timeout": timeout,
    }
    return _account(fields, extra)


def x_account(
    base_url: str,
    *,
    name: str = "acme-x",
    mode: str | None = "auto",
    token: str | None = "${X_TOKEN}",
    tier: str = "pro",
    poll_interval: str | None = "1s",
    timeout: str | None = "5s",
    extra: str = "",
) -> str:
    """One entry of `accounts:`; `token` is the bearer token (None when `extra` gives OAuth 1.0a keys)."""
    fields = {
        "name": name,
        "platform": "x",
        "base_url": base_url,
        "bearer_token": token,
        "tier": tier,
        "mode": mode,
        "poll_interval": poll_interval,
        "timeout": timeout,
    }
    return _account(fields, extra)


def write_config(
    directory: Path,
    *,
    db_url: str,
    accounts: str | list[str],
    sections: str = "",
    brand: str = BRAND_YAML,
) -> Path:
    """Write `directory/carebot.yaml`; `sections` is more top-level YAML (a `daemon:` or `web:` block)."""
    entries = [accounts] if isinstance(accounts, str) else accounts
    path = directory / "carebot.yaml"
    path.write_text(
        f"{brand}storage:\n  url: {db_url}\n{sections}accounts:\n{''.join(entries)}",
        encoding="utf-8",
    )
    return path
