"""carebot's configuration: find the file, read it, check every key, and say exactly what is wrong.

Every problem names the file, the line and the key path (``carebot.yaml:12: accounts[0].mode: ...``);
all problems are collected and raised once as `ConfigError`, which the CLI turns into exit status 2.
The keys themselves, with their defaults and docs, are in `bot/config/settings.py`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from bot.clock import parse_duration
from bot.config.read import ConfigError, parse_config
from bot.config.settings import (
    AccountConfig,
    Brand,
    ClassifierConfig,
    Config,
    DaemonConfig,
    MetricsConfig,
    NotifyConfig,
    StorageConfig,
    WebConfig,
)

DEFAULT_PATH = Path("carebot.yaml")
ENV_VAR = "CAREBOT_CONFIG"

__all__ = [
    "DEFAULT_PATH",
    "ENV_VAR",
    "EXAMPLE",
    "AccountConfig",
    "Brand",
    "ClassifierConfig",
    "Config",
    "ConfigError",
    "DaemonConfig",
    "MetricsConfig",
    "NotifyConfig",
    "StorageConfig",
    "WebConfig",
    "find_config_path",
    "load_config",
    "parse_config",
    "parse_duration",
]

EXAMPLE = Path(__file__).with_name("example.yaml")  # config.example.yaml (a link to it; the wheel has a copy)


def find_config_path(explicit: str | None) -> Path:
    """--config PATH, then $CAREBOT_CONFIG, then ./carebot.yaml."""
    if explicit:
        return Path(explicit)
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    return DEFAULT_PATH


def load_config(path: Path, environ: Mapping[str, str] | None = None, needs: frozenset[str] | None = None) -> Config:
    """Read and check the config at `path`; `needs`: the sections whose secrets must resolve (None: all)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(
            [
                f"{path}: no config file there (carebot looks at --config PATH, then ${ENV_VAR}, then "
                "./carebot.yaml). Make one with `carebot init`, which writes the documented example to "
                "./carebot.yaml, then fill in your brand and accounts."
            ]
        ) from exc
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read the config file: {exc.strerror or exc}"]) from exc
    return parse_config(text, path, os.environ if environ is None else environ, needs)
