"""The command line as a person on the team types it, in-process: `carebot ARGS --config CONFIG`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bot.cli import main as cli


def terminal(config: Path, capsys: pytest.CaptureFixture[str]) -> Callable[..., str]:
    """A function that runs one command with `config`, checks that it succeeded, and returns what it printed."""

    def carebot(*args: str) -> str:
        capsys.readouterr()
        assert cli([*args, "--config", str(config)]) == 0
        return capsys.readouterr().out

    return carebot
