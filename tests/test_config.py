"""The config: what a good one gives, and the one line per problem a bad one gets."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import ConfigError, find_config_path, load_config, parse_duration
from bot.models import Mode

ROOT = Path(__file__).resolve().parents[1]

GOOD = """\
brand:
  name: Acme
  support_email: help@acme.example
  support_url: https://acme.example/help
storage:
  url: sqlite:///carebot.db
accounts:
  - name: acme-mastodon
    platform: mastodon
    base_url: https://mastodon.example
    access_token: ${MASTODON_TOKEN}
    mode: approve
    poll_interval: 2m
"""


def write(tmp_path: Path, text: str, name: str = "carebot.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        config_from(path, environ)
    return caught.value.problems


def config_from(path: Path, environ: dict[str, str] | None = None):
    return load_config(path, environ if environ is not None else {"MASTODON_TOKEN": "tok-123456"})


def test_good_config_is_read_with_defaults(tmp_path: Path) -> None:
    config = config_from(write(tmp_path, GOOD))
    assert config.brand.name == "Acme"
    assert config.brand.support_url == "https://acme.example/help"
    assert config.storage.url == f"sqlite:///{tmp_path / 'carebot.db'}"  # relative to the config file
    account = config.accounts[0]
    assert account.platform == "mastodon"
    assert account.mode is Mode.APPROVE
    assert account.poll_interval == 120.0
    assert account.secrets == {"access_token": "tok-123456"}
    assert "tok-123456" not in repr(account)
    assert config.classifier.min_confidence == 0.55


def test_streaming_is_asked_for_per_mastodon_account(tmp_path: Path) -> None:
    assert config_from(write(tmp_path, GOOD)).accounts[0].options.get("stream") is False  # polling only
    config = config_from(write(tmp_path, GOOD + "    stream: true\n"))
    assert config.accounts[0].options["stream"] is True


def test_an_x_account_cannot_ask_for_a_stream(tmp_path: Path) -> None:
    from tests import configs

    path = configs.write_config(
        tmp_path, db_url="sqlite:///x.db", accounts=configs.x_account("https://x.example", extra="    stream: true\n")
    )
    problems = problems_of(path, {"X_TOKEN": "tok-123456"})
    assert any(":16: accounts[0].stream: unknown key" in p for p in problems), problems  # X is polled only


def test_the_example_config_is_valid(tmp_path: Path) -> None:
    config = load_config(ROOT / "config.example.yaml", {"MASTODON_TOKEN": "t0ken", "X_BEARER_TOKEN": "t0ken"})
    assert {a.platform for a in config.accounts} >= {"mastodon"}


def test_secret_from_a_file_next_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "token.txt").write_text("from-file-token\n", encoding="utf-8")
    text = GOOD.replace("access_token: ${MASTODON_TOKEN}", "access_token_file: token.txt")
    config = config_from(write(tmp_path, text), environ={})
    assert config.accounts[0].secrets["access_token"] == "from-file-token"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("mode: approve", "mode: sometimes"),
            ":12: accounts[0].mode: expected one of auto, approve, dry-run",
        ),
        (("poll_interval: 2m", "poll_interval: soon"), ":13: accounts[0].poll_interval: expected a duration"),
        (("  name: Acme\n", "  name: Acme\n  colour: red\n"), ":3: brand.colour: unknown key"),
        (("  support_email: help@acme.example\n", ""), ":2: brand.support_email: missing (required)"),
        (("platform: mastodon", "platform: myspace"), ":9: accounts[0].platform: unknown platform 'myspace'"),
        (("url: sqlite:///carebot.db", "url: mysql://x"), ":6: storage.url: expected sqlite:///FILE"),
        (
            ("access_token: ${MASTODON_TOKEN}", "access_token: ${NOT_SET_ANYWHERE}"),
            ":11: accounts[0].access_token: environment variable NOT_SET_ANYWHERE is not set",
        ),
        (
            ("access_token: ${MASTODON_TOKEN}", "access_token_file: missing.txt"),
            ":11: accounts[0].access_token_file: cannot read",
        ),
        (("    base_url: https://mastodon.example\n", ""), ":8: accounts[0].base_url: missing"),
        (
            ("poll_interval: 2m", "poll_interval: 2m\n    stream: sometimes"),
            ":14: accounts[0].stream: expected true or false",
        ),
        (
            ("poll_interval: 2m", "poll_interval: [1, 2]"),
            ":13: accounts[0].poll_interval: expected a single value",
        ),
        (
            ("  - name: acme-mastodon", '  - name: "acme\\nstream"'),
            ":8: accounts[0].name: expected a name on one line",
        ),
        (
            ("accounts:\n", "daemon:\n  send_concurrency: 0\naccounts:\n"),
            ":8: daemon.send_concurrency: expected a whole number from 1 to 16, got 0",
        ),
        (
            ("accounts:\n", "daemon:\n  send_concurrency: 40\naccounts:\n"),
            ":8: daemon.send_concurrency: expected a whole number from 1 to 16, got 40",
        ),
    ],
)
def test_each_problem_names_file_line_and_key(tmp_path: Path, change: tuple[str, str], expected: str) -> None:
    path = write(tmp_path, GOOD.replace(*change))
    problems = problems_of(path)
    assert any(expected in p for p in problems), problems
    assert all(p.startswith(str(path)) for p in problems)


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    text = GOOD.replace("mode: approve", "mode: loud").replace("name: Acme", "name: Acme\n  typo: 1")
    problems = problems_of(write(tmp_path, text))
    assert len(problems) == 2


def test_invalid_yaml_and_missing_file(tmp_path: Path) -> None:
    problems = problems_of(write(tmp_path, "brand: [unclosed\n"))
    assert "not valid YAML" in problems[0]
    problems = problems_of(tmp_path / "nope.yaml")
    assert "no config file there" in problems[0] and "carebot init" in problems[0]
    assert "$CAREBOT_CONFIG" in problems[0]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("  name: Acme\n", "  name: Acme: the best\n"), ":2: not valid YAML: a ':' where it cannot be"),
        (("    mode: approve\n", "\tmode: approve\n"), ":12: not valid YAML: a tab indents this line"),
        (("  name: Acme\n", "  name: 'Acme\n"), "not valid YAML: a quote is opened and never closed"),
        (("    mode: approve\n", "   mode: approve\n"), ":12: not valid YAML: this line is not indented like"),
        (("  name: Acme\n", "  name: @acme\n"), ":2: not valid YAML: a value cannot start with '@'"),
    ],
)
def test_yaml_mistakes_are_told_in_plain_words(tmp_path: Path, change: tuple[str, str], expected: str) -> None:
    text = GOOD.replace(*change)
    assert text != GOOD
    (problem,) = problems_of(write(tmp_path, text))
    assert expected in problem, problem
    assert problem.startswith(f"{tmp_path / 'carebot.yaml'}:")


def test_every_unset_variable_of_an_account_is_named_at_once(tmp_path: Path) -> None:
    """The token's variable was named only once the base_url's was set: one fix, one run, one more problem."""
    text = GOOD.replace("base_url: https://mastodon.example", "base_url: ${MASTODON_BASE_URL}")
    everything = "\n".join(problems_of(write(tmp_path, text), {}))
    assert "accounts[0].base_url: environment variable MASTODON_BASE_URL is not set" in everything
    assert "accounts[0].access_token: environment variable MASTODON_TOKEN is not set" in everything


def test_ports_and_counts_may_come_from_the_environment(tmp_path: Path) -> None:
    """Two workers on one host need two metrics ports: `port: ${METRICS_PORT}` was refused ("expected a port
    number, got '19471'"), so they needed two config files."""
    text = GOOD + "metrics:\n  port: ${METRICS_PORT}\n"
    config = config_from(write(tmp_path, text), {"MASTODON_TOKEN": "tok-123456", "METRICS_PORT": "19471"})
    assert config.metrics.port == 19471
    wrong = "\n".join(problems_of(write(tmp_path, text), {"MASTODON_TOKEN": "tok-123456", "METRICS_PORT": "http"}))
    assert "metrics.port: expected a port number (1-65535), got 'http'" in wrong


def test_a_secret_written_in_the_file_is_accepted_with_a_warning(tmp_path: Path) -> None:
    config = config_from(write(tmp_path, GOOD.replace("${MASTODON_TOKEN}", "tok-inline-1234")))
    assert config.accounts[0].secrets["access_token"] == "tok-inline-1234"
    (warning,) = config.warnings
    assert ":11: accounts[0].access_token: a secret written in the config file" in warning
    assert "tok-inline-1234" not in warning
    assert config_from(write(tmp_path, GOOD)).warnings == ()


def test_each_command_needs_only_the_secrets_it_uses(tmp_path: Path) -> None:
    text = GOOD + "web:\n  admin_token: ${DESK_TOKEN}\nnotify:\n  webhook_url: ${HOOK}\n"
    path = write(tmp_path, text)
    everything = "\n".join(problems_of(path, {}))
    for name in ("MASTODON_TOKEN", "DESK_TOKEN", "HOOK"):
        assert f"environment variable {name} is not set" in everything
    listing = load_config(path, {}, needs=frozenset())
    assert listing.accounts[0].secrets == {} and listing.web.admin_token is None
    desk = "\n".join(problems_of_needs(path, frozenset({"web"})))
    assert "DESK_TOKEN" in desk and "MASTODON_TOKEN" not in desk and "HOOK" not in desk
    # A problem that is not about a missing secret is still a problem.
    bad = write(tmp_path, text.replace("mode: approve", "mode: loud"), "bad.yaml")
    assert any("mode" in p for p in problems_of_needs(bad, frozenset()))


def problems_of_needs(path: Path, needs: frozenset[str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path, {}, needs=needs)
    return caught.value.problems


def test_base_url_with_the_api_path_says_what_to_write(tmp_path: Path) -> None:
    text = GOOD.replace("https://mastodon.example", "https://mastodon.example/api/v1/")
    (problem,) = problems_of(write(tmp_path, text))
    assert ":10: accounts[0].base_url: the server's address, without /api/v1: https://mastodon.example" in problem


def test_classifier_model_backfill_and_metrics(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"")
    text = GOOD.replace("poll_interval: 2m", "poll_interval: 2m\n    backfill: 24h")
    text += "classifier:\n  model: model.bin\nmetrics:\n  host: 0.0.0.0\n  port: 9464\n"
    config = config_from(write(tmp_path, text))
    assert config.classifier.model == tmp_path / "model.bin"
    assert config.accounts[0].backfill == 86400.0
    assert (config.metrics.host, config.metrics.port, config.metrics.stale_after) == ("0.0.0.0", 9464, 600.0)
    assert config_from(write(tmp_path, GOOD)).accounts[0].backfill is None
    missing = problems_of(write(tmp_path, text.replace("model: model.bin", "model: nope.bin")))
    assert any("classifier.model: no such file" in p for p in missing)


def test_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAREBOT_CONFIG", "/from/env.yaml")
    assert find_config_path("/explicit.yaml") == Path("/explicit.yaml")
    assert find_config_path(None) == Path("/from/env.yaml")
    monkeypatch.delenv("CAREBOT_CONFIG")
    assert find_config_path(None) == Path("carebot.yaml")


@pytest.mark.parametrize(("raw", "seconds"), [(30, 30.0), ("30s", 30.0), ("2m", 120.0), ("1h", 3600.0), ("500ms", 0.5)])
def test_durations(raw: object, seconds: float) -> None:
    assert parse_duration(raw) == seconds


def test_cli_exits_2_with_one_line_per_problem(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("mode: approve", "mode: loud").replace("2m", "never"))
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "check-config", "--offline", "--config", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "MASTODON_TOKEN": "x" * 10},
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2
    assert all(line.startswith(f"{path}:") for line in lines)


def test_the_example_config_names_every_key() -> None:
    """Every setting, and every platform's own option, is documented in config.example.yaml."""
    import dataclasses

    from bot.config import settings
    from connectors import get_platform, platform_names

    text = (ROOT / "config.example.yaml").read_text(encoding="utf-8")
    written = set(re.findall(r"^[\s#-]*([a-z_]+):", text, re.MULTILINE))
    written |= set(re.findall(r"[{,]\s*([a-z_]+):", text))  # keys of flow mappings: {first_response: 1h}
    classes = [
        settings.Config,
        settings.Brand,
        settings.StorageConfig,
        settings.ClassifierConfig,
        settings.DaemonConfig,
        settings.WebConfig,
        settings.NotifyConfig,
        settings.MetricsConfig,
        settings.CasesConfig,
        settings.IncidentsConfig,
        settings.Target,
        settings.AccountConfig,
    ]
    classes += [options for name in platform_names() if (options := get_platform(name).options) is not None]
    keys = {f.name for kind in classes for f in dataclasses.fields(kind) if not f.metadata.get("internal")}
    assert keys - written == set()


def test_storage_retention_give_up_after_and_an_accounts_overlap_are_read(tmp_path: Path) -> None:
    text = GOOD.replace(
        "  url: sqlite:///carebot.db\n", "  url: sqlite:///carebot.db\n  retention: 90d\n  give_up_after: 2m\n"
    ).replace("    poll_interval: 2m\n", "    poll_interval: 2m\n    overlap: 5m\n")
    config = config_from(write(tmp_path, text))
    assert config.storage.url == f"sqlite:///{tmp_path / 'carebot.db'}"  # still made relative to the file
    assert (config.storage.retention, config.storage.give_up_after) == (90 * 86400.0, 120.0)
    assert config.accounts[0].overlap == 300.0
    defaults = config_from(write(tmp_path, GOOD))
    assert (defaults.storage.retention, defaults.storage.give_up_after, defaults.accounts[0].overlap) == (
        None,
        600.0,
        None,
    )
    assert problems_of(write(tmp_path, text.replace("retention: 90d", "retention: soon"))) != []
