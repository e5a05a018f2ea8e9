"""carebot's YAML configuration: find it, read it, check every key, and say exactly what is wrong.

Every problem names the file, the line and the key path (``carebot.yaml:12: accounts[0].mode: ...``);
all problems are collected and raised once as `ConfigError`, which the CLI turns into exit status 2.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.models import LANGUAGES, Brand, Mode
from connectors import get_platform, platform_names

DEFAULT_PATH = Path("carebot.yaml")
ENV_VAR = "CAREBOT_CONFIG"


class ConfigError(Exception):
    """The configuration cannot be used; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class AccountConfig:
    name: str
    platform: str
    base_url: str
    mode: Mode
    poll_interval: float  # seconds
    secrets: Mapping[str, str] = field(repr=False)
    options: Mapping[str, Any] = field(default_factory=dict)
    timeout: float = 10.0


@dataclass(frozen=True)
class DaemonConfig:
    max_attempts: int = 5  # tries before a reply is parked as failed
    retry_backoff: float = 5.0  # seconds before the first retry; doubles, with jitter
    page_size: int = 40
    max_pages_per_cycle: int = 20
    max_replies_per_author_hour: int = 3
    log_level: str = "INFO"


@dataclass(frozen=True)
class WebConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    # name -> "scrypt$..." line from `carebot web hash-password`; hashes, yet kept out of reprs too.
    users: Mapping[str, str] = field(default_factory=dict, repr=False)
    admin_token: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)  # None: random per process
    session_max_age: float = 12 * 3600.0  # seconds
    secure_cookies: bool = False  # True when served over HTTPS (behind a proxy)


@dataclass(frozen=True)
class NotifyConfig:
    webhook_url: str | None = field(default=None, repr=False)  # Slack-style URLs carry a token
    wait_threshold: float = 15 * 60.0  # seconds a reply may wait for a person before someone is told
    urgent: bool = True  # tell at once when an urgent complaint arrives
    desk_url: str | None = None  # the approval page's public address, linked in each message
    timeout: float = 10.0
    max_attempts: int = 4


@dataclass(frozen=True)
class Config:
    path: Path | None
    brand: Brand
    storage_url: str
    accounts: tuple[AccountConfig, ...]
    min_confidence: float = 0.55
    playbooks_dir: Path | None = None  # None: the shipped playbooks
    daemon: DaemonConfig = field(default_factory=DaemonConfig)
    web: WebConfig = field(default_factory=WebConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)

    def account(self, name: str) -> AccountConfig:
        for account in self.accounts:
            if account.name == name:
                return account
        raise KeyError(name)


def find_config_path(explicit: str | None) -> Path:
    """--config PATH, then $CAREBOT_CONFIG, then ./carebot.yaml."""
    if explicit:
        return Path(explicit)
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    return DEFAULT_PATH


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> Config:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read the config file: {exc.strerror or exc}"]) from exc
    return parse_config(text, path, os.environ if environ is None else environ)


def parse_config(text: str, path: Path, environ: Mapping[str, str]) -> Config:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError([f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}"]) from exc
    reader = _Reader(path, environ)
    if root is None or not isinstance(root, yaml.MappingNode):
        raise ConfigError([f"{path}:1: the config must be a mapping with brand, storage and accounts"])
    config = reader.config(root)
    if reader.problems:
        raise ConfigError(reader.problems)
    assert config is not None
    return config


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_USER_NAME = re.compile(r"^[A-Za-z0-9._-]{1,60}$")


def parse_duration(value: object) -> float:
    """Seconds from 30, 30.5, "30s", "2m", "1h", "500ms"; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError('expected a duration like 30, "30s" or "2m"')
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f'expected a duration like 30, "30s" or "2m", got {value!r}')
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if seconds <= 0:
        raise ValueError("must be more than zero")
    return seconds


class _Reader:
    """Walks the YAML node tree so every value keeps its line number."""

    def __init__(self, path: Path, environ: Mapping[str, str]) -> None:
        self.path = path
        self.environ = environ
        self.problems: list[str] = []

    def problem(self, node: yaml.Node | None, key: str, message: str) -> None:
        line = node.start_mark.line + 1 if node is not None else 1
        self.problems.append(f"{self.path}:{line}: {key}: {message}")

    def mapping(self, node: yaml.Node, key: str, allowed: set[str], required: set[str]) -> dict[str, yaml.Node] | None:
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, key, "expected a mapping of keys")
            return None
        found: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            name = str(key_node.value)
            path = f"{key}.{name}" if key else name
            if name in found:
                self.problem(key_node, path, "given twice")
            elif name not in allowed:
                self.problem(key_node, path, f"unknown key (allowed: {', '.join(sorted(allowed))})")
            found[name] = value_node
        for name in sorted(required - found.keys()):
            self.problem(node, f"{key}.{name}" if key else name, "missing (required)")
        return found

    def scalar(self, node: yaml.Node, key: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            self.problem(node, key, "expected a single value, not a list or mapping")
            return None
        value = yaml.safe_load(yaml.serialize(node))
        if isinstance(value, str):
            value = self.expand(node, key, value)
        return value

    def expand(self, node: yaml.Node, key: str, value: str) -> str | None:
        missing: list[str] = []

        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in self.environ:
                return self.environ[name]
            if default is not None:
                return default
            missing.append(name)
            return ""

        expanded = _ENV_REF.sub(substitute, value)
        for name in missing:
            self.problem(node, key, f"environment variable {name} is not set")
        return None if missing else expanded

    def typed(self, nodes: Mapping[str, yaml.Node], name: str, key: str, kind: type, default: Any = None) -> Any:
        node = nodes.get(name)
        if node is None:
            return default
        value = self.scalar(node, key)
        if value is None:
            return default
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            self.problem(node, key, f"expected {_KIND_NAMES[kind]}, got {value!r}")
            return default
        return value

    def checked(
        self, nodes: Mapping[str, yaml.Node], name: str, key: str, convert: Callable[[Any], Any], default: Any
    ) -> Any:
        node = nodes.get(name)
        if node is None:
            return default
        value = self.scalar(node, key)
        if value is None:
            return default
        try:
            return convert(value)
        except ValueError as exc:
            self.problem(node, key, str(exc))
            return default

    def config(self, root: yaml.MappingNode) -> Config | None:
        top = self.mapping(
            root,
            "",
            {"brand", "storage", "accounts", "classifier", "playbooks", "daemon", "web", "notify"},
            {"brand", "storage", "accounts"},
        )
        if top is None:
            return None
        brand = self.brand(top["brand"]) if "brand" in top else None
        storage_url = self.storage(top["storage"]) if "storage" in top else None
        accounts = self.accounts(top["accounts"]) if "accounts" in top else ()
        min_confidence = 0.55
        if "classifier" in top:
            nodes = self.mapping(top["classifier"], "classifier", {"min_confidence"}, set()) or {}
            min_confidence = self.checked(
                nodes, "min_confidence", "classifier.min_confidence", _fraction, min_confidence
            )
        playbooks_dir = None
        if "playbooks" in top:
            raw = self.typed(top, "playbooks", "playbooks", str)
            if raw is not None:
                playbooks_dir = self.relative(Path(raw))
                if not playbooks_dir.is_dir():
                    self.problem(top["playbooks"], "playbooks", f"not a directory: {playbooks_dir}")
        daemon = self.daemon(top["daemon"]) if "daemon" in top else DaemonConfig()
        web = self.web(top["web"]) if "web" in top else WebConfig()
        notify = self.notify(top["notify"]) if "notify" in top else NotifyConfig()
        if brand is None or storage_url is None:
            return None
        return Config(
            path=self.path,
            brand=brand,
            storage_url=storage_url,
            accounts=accounts,
            min_confidence=min_confidence,
            playbooks_dir=playbooks_dir,
            daemon=daemon,
            web=web,
            notify=notify,
        )

    def relative(self, path: Path) -> Path:
        return path if path.is_absolute() else self.path.parent / path

    def brand(self, node: yaml.Node) -> Brand | None:
        allowed = {"name", "support_email", "support_url", "default_language", "handles"}
        nodes = self.mapping(node, "brand", allowed, {"name", "support_email"})
        if nodes is None:
            return None
        name = self.typed(nodes, "name", "brand.name", str)
        email = self.checked(nodes, "support_email", "brand.support_email", _email, None)
        url = self.checked(nodes, "support_url", "brand.support_url", _url, None)
        language = self.checked(nodes, "default_language", "brand.default_language", _language, "en")
        handles: tuple[str, ...] = ()
        if "handles" in nodes:
            handles = tuple(h.lstrip("@").lower() for h in self.strings(nodes["handles"], "brand.handles"))
        if not name or not email:
            return None
        return Brand(name, email, url, language, handles)

    def strings(self, node: yaml.Node, key: str) -> list[str]:
        if not isinstance(node, yaml.SequenceNode):
            self.problem(node, key, "expected a list")
            return []
        values = [self.scalar(item, f"{key}[{i}]") for i, item in enumerate(node.value)]
        return [str(v) for v in values if v is not None]

    def storage(self, node: yaml.Node) -> str | None:
        nodes = self.mapping(node, "storage", {"url"}, {"url"})
        if not nodes:
            return None
        url = self.typed(nodes, "url", "storage.url", str)
        if url is None:
            return None
        if not url.startswith(("sqlite:", "postgresql")):
            self.problem(nodes["url"], "storage.url", "expected sqlite:///FILE or postgresql+psycopg://...")
            return None
        if url.startswith("sqlite:///") and not url.startswith("sqlite:////") and url != "sqlite:///:memory:":
            # A relative SQLite file lives next to the config, not wherever carebot was started.
            url = "sqlite:///" + str(self.relative(Path(url.removeprefix("sqlite:///"))))
        return url

    def daemon(self, node: yaml.Node) -> DaemonConfig:
        defaults = DaemonConfig()
        allowed = {
            "max_attempts",
            "retry_backoff",
            "page_size",
            "max_pages_per_cycle",
            "max_replies_per_author_hour",
            "log_level",
        }
        nodes = self.mapping(node, "daemon", allowed, set()) or {}
        return DaemonConfig(
            max_attempts=self.checked(nodes, "max_attempts", "daemon.max_attempts", _positive, 5),
            retry_backoff=self.checked(
                nodes, "retry_backoff", "daemon.retry_backoff", parse_duration, defaults.retry_backoff
            ),
            page_size=self.checked(nodes, "page_size", "daemon.page_size", _positive, defaults.page_size),
            max_pages_per_cycle=self.checked(nodes, "max_pages_per_cycle", "daemon.max_pages_per_cycle", _positive, 20),
            max_replies_per_author_hour=self.checked(
                nodes, "max_replies_per_author_hour", "daemon.max_replies_per_author_hour", _positive, 3
            ),
            log_level=self.checked(nodes, "log_level", "daemon.log_level", _log_level, "INFO"),
        )

    def web(self, node: yaml.Node) -> WebConfig:
        defaults = WebConfig()
        secret_keys = ("admin_token", "secret_key")
        allowed = {"host", "port", "users", "session_max_age", "secure_cookies"}
        allowed |= {k for s in secret_keys for k in (s, f"{s}_file")}
        nodes = self.mapping(node, "web", allowed, set()) or {}
        secrets = self.secrets(nodes, "web", secret_keys)
        users: dict[str, str] = {}
        if "users" in nodes:
            users = self.users(nodes["users"], "web.users")
        return WebConfig(
            host=self.typed(nodes, "host", "web.host", str, defaults.host),
            port=self.checked(nodes, "port", "web.port", _port, defaults.port),
            users=users,
            admin_token=secrets.get("admin_token"),
            secret_key=secrets.get("secret_key"),
            session_max_age=self.checked(
                nodes, "session_max_age", "web.session_max_age", parse_duration, defaults.session_max_age
            ),
            secure_cookies=self.typed(nodes, "secure_cookies", "web.secure_cookies", bool, False),
        )

    def users(self, node: yaml.Node, key: str) -> dict[str, str]:
        """name: password hash line (from `carebot web hash-password`)."""
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, key, "expected a mapping of user name to password hash")
            return {}
        users: dict[str, str] = {}
        for name_node, value_node in node.value:
            name = str(name_node.value)
            path = f"{key}.{name}"
            if not _USER_NAME.match(name):
                self.problem(name_node, path, "a user name is letters, digits, '.', '_' or '-' (1-60)")
                continue
            if name in users:
                self.problem(name_node, path, "given twice")
                continue
            value = self.scalar(value_node, path)
            if value is None:
                continue
            if not isinstance(value, str) or not value.startswith("scrypt$"):
                # Never echo the value: it may be a plain password pasted by mistake.
                self.problem(value_node, path, "expected a hash line from `carebot web hash-password`")
                continue
            users[name] = value
        return users

    def notify(self, node: yaml.Node) -> NotifyConfig:
        defaults = NotifyConfig()
        allowed = {"webhook_url", "webhook_url_file", "wait_threshold", "urgent", "desk_url", "timeout"}
        allowed.add("max_attempts")
        nodes = self.mapping(node, "notify", allowed, set()) or {}
        webhook_url = self.secrets(nodes, "notify", ("webhook_url",)).get("webhook_url")
        if webhook_url is not None and not webhook_url.startswith(("http://", "https://")):
            # The URL holds the webhook's token: say what is wrong without printing it.
            self.problem(
                nodes.get("webhook_url") or nodes.get("webhook_url_file"),
                "notify.webhook_url",
                "expected an http:// or https:// URL",
            )
            webhook_url = None
        return NotifyConfig(
            webhook_url=webhook_url,
            wait_threshold=self.checked(
                nodes, "wait_threshold", "notify.wait_threshold", parse_duration, defaults.wait_threshold
            ),
            urgent=self.typed(nodes, "urgent", "notify.urgent", bool, defaults.urgent),
            desk_url=self.checked(nodes, "desk_url", "notify.desk_url", _url, None),
            timeout=self.checked(nodes, "timeout", "notify.timeout", parse_duration, defaults.timeout),
            max_attempts=self.checked(nodes, "max_attempts", "notify.max_attempts", _positive, defaults.max_attempts),
        )

    def accounts(self, node: yaml.Node) -> tuple[AccountConfig, ...]:
        if not isinstance(node, yaml.SequenceNode):
            self.problem(node, "accounts", "expected a list of accounts")
            return ()
        if not node.value:
            self.problem(node, "accounts", "at least one account is needed")
        accounts: list[AccountConfig] = []
        seen: set[str] = set()
        for index, item in enumerate(node.value):
            account = self.account(item, f"accounts[{index}]")
            if account is None:
                continue
            if account.name in seen:
                self.problem(item, f"accounts[{index}].name", f"{account.name!r} is used twice")
            seen.add(account.name)
            accounts.append(account)
        return tuple(accounts)

    def account(self, node: yaml.Node, key: str) -> AccountConfig | None:
        common = {"name", "platform", "base_url", "mode", "poll_interval", "timeout"}
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, key, "expected a mapping with name, platform, ...")
            return None
        platform_node = next((v for k, v in node.value if k.value == "platform"), None)
        platform_name = self.scalar(platform_node, f"{key}.platform") if platform_node else None
        platform = None
        if platform_name is not None:
            if platform_name in platform_names():
                platform = get_platform(platform_name)
            else:
                choices = ", ".join(platform_names())
                self.problem(platform_node, f"{key}.platform", f"unknown platform {platform_name!r} ({choices})")
        allowed = set(common)
        if platform is not None:
            allowed |= set(platform.options)
            for secret in platform.secret_keys:
                allowed |= {secret, f"{secret}_file"}
        nodes = self.mapping(node, key, allowed, {"name", "platform"})
        if nodes is None or platform is None:
            return None
        name = self.typed(nodes, "name", f"{key}.name", str)
        base_url = self.checked(nodes, "base_url", f"{key}.base_url", _url, platform.default_base_url)
        if base_url is None and "base_url" not in nodes:
            self.problem(node, f"{key}.base_url", "missing (required for this platform)")
        mode = self.checked(nodes, "mode", f"{key}.mode", _mode, Mode.AUTO)
        poll_interval = self.checked(nodes, "poll_interval", f"{key}.poll_interval", parse_duration, 30.0)
        timeout = self.checked(nodes, "timeout", f"{key}.timeout", parse_duration, 10.0)
        secrets = self.secrets(nodes, key, platform.secret_keys)
        if not any(all(s in secrets for s in group) for group in platform.required_secrets):
            wanted = " or ".join("+".join(group) for group in platform.required_secrets)
            self.problem(node, f"{key}", f"credentials missing: give {wanted} (inline, ${{VAR}} or <key>_file)")
        options = {
            option: self.typed(nodes, option, f"{key}.{option}", kind)
            for option, kind in platform.options.items()
            if option in nodes
        }
        if name is None or base_url is None:
            return None
        return AccountConfig(
            name=name,
            platform=platform.name,
            base_url=base_url.rstrip("/"),
            mode=mode,
            poll_interval=poll_interval,
            secrets=secrets,
            options=options,
            timeout=timeout,
        )

    def secrets(self, nodes: Mapping[str, yaml.Node], key: str, names: tuple[str, ...]) -> dict[str, str]:
        secrets: dict[str, str] = {}
        for name in names:
            inline, from_file = nodes.get(name), nodes.get(f"{name}_file")
            if inline is not None and from_file is not None:
                self.problem(from_file, f"{key}.{name}_file", f"give either {name} or {name}_file, not both")
            if inline is not None:
                value = self.scalar(inline, f"{key}.{name}")
                if value is not None and str(value).strip():
                    secrets[name] = str(value).strip()
                elif value is not None:
                    self.problem(inline, f"{key}.{name}", "is empty")
            elif from_file is not None:
                raw = self.scalar(from_file, f"{key}.{name}_file")
                if raw is None:
                    continue
                secret_path = self.relative(Path(str(raw)))
                try:
                    value = secret_path.read_text(encoding="utf-8").strip()
                except OSError as exc:
                    reason = exc.strerror or type(exc).__name__
                    self.problem(from_file, f"{key}.{name}_file", f"cannot read {secret_path}: {reason}")
                    continue
                if not value:
                    self.problem(from_file, f"{key}.{name}_file", f"{secret_path} is empty")
                    continue
                secrets[name] = value
        return secrets


_KIND_NAMES = {str: "text", int: "a whole number", float: "a number", bool: "true or false"}


def _fraction(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"expected a number from 0 to 1, got {value!r}")
    return float(value)


def _positive(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"expected a whole number of at least 1, got {value!r}")
    return value


def _port(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise ValueError(f"expected a port number (1-65535), got {value!r}")
    return value


def _email(value: Any) -> str:
    if not isinstance(value, str) or not _EMAIL.match(value):
        raise ValueError(f"expected an email address, got {value!r}")
    return value


def _url(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
    return value


def _language(value: Any) -> str:
    if value not in LANGUAGES:
        raise ValueError(f"expected one of {', '.join(LANGUAGES)}, got {value!r}")
    return str(value)


def _mode(value: Any) -> Mode:
    try:
        return Mode(value)
    except ValueError:
        raise ValueError(f"expected one of {', '.join(m.value for m in Mode)}, got {value!r}") from None


def _log_level(value: Any) -> str:
    levels = ("DEBUG", "INFO", "WARNING", "ERROR")
    if not isinstance(value, str) or value.upper() not in levels:
        raise ValueError(f"expected one of {', '.join(levels)}, got {value!r}")
    return value.upper()
