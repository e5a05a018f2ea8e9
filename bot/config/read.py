"""Read a config file into `bot.config.settings`, checking every key and collecting every problem.

Generic over the settings dataclasses: a field's annotation says its type (text, number, true/false, a
list of texts, a nested section), its metadata its check and whether it is a secret. Secrets come from the
key itself (`${VAR}` from the environment) or from `<key>_file`, and are never echoed in a message.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bot.config.settings import DEFAULT_TARGETS, AccountConfig, Config, StorageConfig, Target
from bot.hours import BusinessHours, parse_holidays, parse_timezone, parse_week
from bot.models import SITUATIONS
from bot.yamlfile import KeyPath, Problems, read_yaml, show_path
from connectors import get_platform, platform_names

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_USER_NAME = re.compile(r"^[A-Za-z0-9._-]{1,60}$")
_KIND_NAMES = {str: "text", int: "a whole number", float: "a number", bool: "true or false"}


class ConfigError(Exception):
    """The configuration cannot be used; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _Unset:
    """A value that could not be read (its problem is recorded); the section using it is not built."""


UNSET: Any = _Unset()


SECRET_SECTIONS = frozenset({"accounts", "web", "notify"})


def parse_config(text: str, path: Path, environ: Mapping[str, str], needs: frozenset[str] | None = None) -> Config:
    """The config in `text`. `needs`: the sections whose secrets must be there (None: all of them); a
    command that never uses a secret (listing the queue, say) does not fail for a variable it lacks."""
    data, problems = read_yaml(text, str(path))
    if data is None and problems:
        raise ConfigError(problems.found)  # not YAML at all
    if not isinstance(data, dict):
        raise ConfigError([f"{path}:1: the config must be a mapping with brand, storage and accounts"])
    reader = Reader(problems, path.parent, environ, SECRET_SECTIONS if needs is None else needs)
    values = reader.section(Config, data, ())
    if values is not None:
        reader.cross_check(values)
    if problems or values is None:
        raise ConfigError(problems.found)
    return Config(**values, path=path, warnings=tuple(reader.warnings))


class Reader:
    """Walks the YAML data with the settings classes; records each problem with its file, line and key."""

    def __init__(
        self,
        problems: Problems,
        base_dir: Path,
        environ: Mapping[str, str],
        needs: frozenset[str] = SECRET_SECTIONS,
    ) -> None:
        self.problems = problems
        self.base_dir = base_dir
        self.environ = environ
        self.needs = needs
        self.warnings: list[str] = []

    def problem(self, path: KeyPath, message: str) -> None:
        self.problems.add(path, message)

    # --- sections ---------------------------------------------------------------------------------

    def section(
        self, kind: type[Any], value: Any, path: KeyPath, extra_keys: frozenset[str] = frozenset()
    ) -> dict[str, Any] | None:
        """The values of `kind`'s keys found in the mapping `value` (defaults left out); None if unusable."""
        if not isinstance(value, dict):
            self.problem(path, "expected a mapping of keys")
            return None
        fields = _keys(kind)
        allowed = set(extra_keys)
        for f in fields:
            allowed |= {f.name, f"{f.name}_file"} if f.metadata.get("secret") else {f.name}
        for key in value:
            if str(key) not in allowed:
                self.problem((*path, str(key)), f"unknown key (allowed: {', '.join(sorted(allowed))})")
        values: dict[str, Any] = {}
        complete = True
        for f in fields:
            read = self.field(kind, f, value, path)
            if read is UNSET:
                complete = False
            elif read is not _DEFAULT:
                values[f.name] = read
        return values if complete else None

    def field(self, kind: type[Any], f: dataclasses.Field[Any], mapping: dict[str, Any], path: KeyPath) -> Any:
        key = (*path, f.name)
        meta = f.metadata
        if meta.get("secret"):
            return self.secret(mapping, path, f.name, meta.get("check"))
        if f.name not in mapping:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                self.problems.add(key, "missing (required)", line=self.problems.start_of(path))
                return UNSET
            return _DEFAULT
        raw = mapping[f.name]
        if meta.get("read"):
            result = meta["read"](self, raw, key)
            return UNSET if result is None else result
        annotation = typing.get_type_hints(kind)[f.name]
        target = _plain(annotation)
        if dataclasses.is_dataclass(target):
            values = self.section(target, raw, key)  # type: ignore[arg-type]
            return UNSET if values is None else target(**values)  # type: ignore[operator]
        if raw is None and _optional(annotation):
            return None
        check = meta.get("check")
        if check is not None and typing.get_origin(target) is not tuple:
            value = self.scalar(raw, key)  # the check reads the value itself ("2m", "approve")
        else:
            value = self.typed(raw, key, target)
        return UNSET if value is UNSET else self.checked(value, key, check)

    def typed(self, raw: Any, key: KeyPath, target: Any) -> Any:
        if typing.get_origin(target) is tuple:
            if not isinstance(raw, list):
                self.problem(key, "expected a list")
                return UNSET
            items = [self.scalar(item, (*key, i)) for i, item in enumerate(raw)]
            return UNSET if any(i is UNSET for i in items) else tuple(str(i) for i in items)
        value = self.scalar(raw, key)
        if value is UNSET or target not in _KIND_NAMES:
            return value
        if isinstance(value, bool) and target is not bool:
            self.problem(key, f"expected {_KIND_NAMES[target]}, got {value!r}")
            return UNSET
        if target is str and isinstance(value, int | float):
            return str(value)  # `user_id: 1234` means the text "1234"
        if target is float and isinstance(value, int):
            return float(value)
        if not isinstance(value, target):
            self.problem(key, f"expected {_KIND_NAMES[target]}, got {value!r}")
            return UNSET
        return value

    def checked(self, value: Any, key: KeyPath, check: Any) -> Any:
        if check is None:
            return value
        try:
            return check(value)
        except ValueError as exc:
            self.problem(key, str(exc))
            return UNSET

    def scalar(self, raw: Any, key: KeyPath) -> Any:
        """One value (not a list or mapping), with ${VAR} references filled in from the environment."""
        if isinstance(raw, dict | list):
            self.problem(key, "expected a single value, not a list or mapping")
            return UNSET
        if isinstance(raw, str):
            return self.expand(raw, key)
        return raw

    def expand(self, value: str, key: KeyPath) -> Any:
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
            self.problem(key, f"environment variable {name} is not set")
        return UNSET if missing else expanded

    def secret(self, mapping: dict[str, Any], path: KeyPath, name: str, check: Any = None) -> Any:
        """A secret from `name` or `name_file`; None if neither is given. Messages never show the value.

        In a section whose secrets this command does not need, one that cannot be read is left out quietly.
        """
        if not path or path[0] in self.needs:
            return self._secret(mapping, path, name, check)
        before = len(self.problems.found)
        value = self._secret(mapping, path, name, check)
        if value is UNSET:
            del self.problems.found[before:]
            return None
        return value

    def _secret(self, mapping: dict[str, Any], path: KeyPath, name: str, check: Any = None) -> Any:
        inline, from_file = mapping.get(name), mapping.get(f"{name}_file")
        if isinstance(inline, str) and not _ENV_REF.search(inline):
            where = self.problems.line_of((*path, name))
            key = show_path((*path, name))
            self.warnings.append(
                f"{self.problems.label}:{where}: {key}: a secret written in the config file; "
                f"give it as ${{VARIABLE}} or {name}_file: PATH instead"
            )
        if inline is not None and from_file is not None:
            self.problem((*path, f"{name}_file"), f"give either {name} or {name}_file, not both")
        if inline is not None:
            value = self.scalar(inline, (*path, name))
            if value is UNSET:
                return UNSET
            if not str(value).strip():
                self.problem((*path, name), "is empty")
                return UNSET
            secret = str(value).strip()
        elif from_file is not None:
            raw = self.scalar(from_file, (*path, f"{name}_file"))
            if raw is UNSET:
                return UNSET
            secret_path = self.relative(Path(str(raw)))
            try:
                secret = secret_path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                reason = exc.strerror or type(exc).__name__
                self.problem((*path, f"{name}_file"), f"cannot read {secret_path}: {reason}")
                return UNSET
            if not secret:
                self.problem((*path, f"{name}_file"), f"{secret_path} is empty")
                return UNSET
        else:
            return None
        if check is not None:
            try:
                check(secret)
            except ValueError as exc:
                # The value holds a secret (a webhook URL carries its token): say what is wrong, not what it is.
                given = name if inline is not None else f"{name}_file"
                what = str(exc).split(", got ")[0]
                self.problems.add((*path, name), what, line=self.problems.line_of((*path, given)))
                return UNSET
        return secret

    def relative(self, path: Path) -> Path:
        return path if path.is_absolute() else self.base_dir / path

    # --- keys with a shape of their own ------------------------------------------------------------

    def storage(self, value: Any, path: KeyPath) -> StorageConfig | None:
        values = self.section(StorageConfig, value, path)
        if values is None:
            return None
        url = str(values["url"])
        if not url.startswith(("sqlite:", "postgresql")):
            self.problem((*path, "url"), "expected sqlite:///FILE or postgresql+psycopg://...")
            return None
        if url.startswith("sqlite:///") and not url.startswith("sqlite:////") and url != "sqlite:///:memory:":
            # A relative SQLite file lives next to the config, not wherever carebot was started.
            url = "sqlite:///" + str(self.relative(Path(url.removeprefix("sqlite:///"))))
        return StorageConfig(**{**values, "url": url})

    def directory(self, value: Any, path: KeyPath) -> Path | None:
        raw = self.typed(value, path, str)
        if raw is UNSET:
            return None
        directory = self.relative(Path(raw))
        if not directory.is_dir():
            self.problem(path, f"not a directory: {directory}")
            return None
        return directory

    def file(self, value: Any, path: KeyPath) -> Path | None:
        raw = self.typed(value, path, str)
        if raw is UNSET:
            return None
        found = self.relative(Path(raw))
        if not found.is_file():
            self.problem(path, f"no such file: {found}")
            return None
        return found

    def access(self, value: Any, path: KeyPath) -> dict[str, tuple[str, ...]] | None:
        """user: [account, ...]: the accounts each listed user may act on."""
        if not isinstance(value, dict):
            self.problem(path, "expected a mapping of user name to a list of account names")
            return None
        access: dict[str, tuple[str, ...]] = {}
        for name, accounts in value.items():
            names = self.typed(accounts, (*path, str(name)), tuple[str, ...])
            if names is not UNSET:
                access[str(name)] = tuple(names)
        return access

    def cross_check(self, values: dict[str, Any]) -> None:
        """What one key says about another: desk access names real users and accounts."""
        web, accounts = values.get("web"), values.get("accounts") or ()
        if web is None:
            return
        known = {account.name for account in accounts}
        for user, names in web.access.items():
            key = ("web", "access", user)
            if user == "admin":
                self.problem(key, "admin (the admin token) always acts on every account")
            elif user not in web.users:
                self.problem(key, f"{user!r} is not in web.users")
            for name in names:
                if name not in known:
                    self.problem(key, f"no account named {name!r} (accounts: {', '.join(sorted(known))})")

    def users(self, value: Any, path: KeyPath) -> dict[str, str] | None:
        """name: password hash line (from `carebot web hash-password`)."""
        if not isinstance(value, dict):
            self.problem(path, "expected a mapping of user name to password hash")
            return None
        users: dict[str, str] = {}
        for name, line in value.items():
            key = (*path, str(name))
            if not _USER_NAME.match(str(name)):
                self.problem(key, "a user name is letters, digits, '.', '_' or '-' (1-60)")
                continue
            hashed = self.scalar(line, key)
            if hashed is UNSET:
                continue
            if not isinstance(hashed, str) or not hashed.startswith("scrypt$"):
                # Never echo the value: it may be a plain password pasted by mistake.
                self.problem(key, "expected a hash line from `carebot web hash-password`")
                continue
            users[str(name)] = hashed
        return users

    def hours(self, value: Any, path: KeyPath) -> BusinessHours | None:
        """cases.business_hours: timezone, week (day: "HH:MM-HH:MM"), holidays."""
        if not isinstance(value, dict):
            self.problem(path, "expected a mapping with timezone, week and holidays")
            return None
        for key in value:
            if key not in ("timezone", "week", "holidays"):
                self.problem((*path, str(key)), "unknown key (allowed: holidays, timezone, week)")
        found: dict[str, Any] = {}
        for key, parse in (("timezone", parse_timezone), ("week", parse_week), ("holidays", parse_holidays)):
            if key in value:
                raw = value[key] if key != "timezone" else self.scalar(value[key], (*path, key))
                found[key] = self.checked(raw, (*path, key), parse)
        return None if UNSET in found.values() else BusinessHours(**found)

    def targets(self, value: Any, path: KeyPath) -> dict[str, Target] | None:
        """cases.targets: situation -> {first_response, resolution}, durations in business hours."""
        if not isinstance(value, dict):
            self.problem(path, "expected a mapping of situation to first_response and resolution")
            return None
        targets = dict(DEFAULT_TARGETS)
        for situation, spec in value.items():
            key = (*path, str(situation))
            if situation not in SITUATIONS:
                self.problem(key, f"expected a situation ({', '.join(SITUATIONS)}), got {situation!r}")
                continue
            if spec is None:
                targets[situation] = Target()
                continue
            values = self.section(Target, spec, key)
            if values is not None:  # keys left out keep their defaults
                targets[situation] = dataclasses.replace(targets.get(situation, Target()), **values)
        return targets

    def accounts(self, value: Any, path: KeyPath) -> tuple[AccountConfig, ...] | None:
        if not isinstance(value, list):
            self.problem(path, "expected a list of accounts")
            return None
        if not value:
            self.problem(path, "at least one account is needed")
        accounts: list[AccountConfig] = []
        seen: set[str] = set()
        for index, item in enumerate(value):
            account = self.account(item, (*path, index))
            if account is None:
                continue
            if account.name in seen:
                self.problem((*path, index, "name"), f"{account.name!r} is used twice")
            seen.add(account.name)
            accounts.append(account)
        return tuple(accounts)

    def account(self, value: Any, path: KeyPath) -> AccountConfig | None:
        """The common keys, then the platform's secrets and options (known once the platform is)."""
        if not isinstance(value, dict):
            self.problem(path, "expected a mapping with name, platform, ...")
            return None
        platform = None
        name = value.get("platform")
        if name is not None:
            name = self.scalar(name, (*path, "platform"))
            if name in platform_names():
                platform = get_platform(name)
            elif name is not UNSET:
                choices = ", ".join(platform_names())
                self.problem((*path, "platform"), f"unknown platform {name!r} ({choices})")
        extra: set[str] = set()
        option_fields: tuple[dataclasses.Field[Any], ...] = ()
        if platform is not None:
            extra |= {k for secret in platform.secret_keys for k in (secret, f"{secret}_file")}
            if platform.options is not None:
                option_fields = dataclasses.fields(platform.options)
                extra |= {f.name for f in option_fields}
        if platform is None:
            extra |= {k for k in value if k not in {f.name for f in _keys(AccountConfig)}}  # reported once, above
        given = dict(value)
        if platform is not None and platform.default_base_url and "base_url" not in given:
            given["base_url"] = platform.default_base_url
        values = self.section(AccountConfig, given, path, frozenset(extra))
        if platform is None:
            return None
        # The secrets are read even when a common key was wrong: every problem of the account at once, not
        # an unset token found only once the unset base_url is fixed.
        secrets = {}
        for secret in platform.secret_keys:
            found = self.secret(value, path, secret)
            if isinstance(found, str):
                secrets[secret] = found
        needed = path[0] in self.needs if path else True
        if needed and not any(all(s in secrets for s in group) for group in platform.required_secrets):
            wanted = " or ".join("+".join(group) for group in platform.required_secrets)
            self.problems.add(path, f"credentials missing: give {wanted} (inline, ${{VAR}} or <key>_file)")
        if values is None:
            return None
        options: dict[str, Any] = {}
        if platform.options is not None:
            names = {f.name for f in option_fields}
            read = self.section(platform.options, {k: v for k, v in value.items() if k in names}, path)
            if read is None:
                return None
            options = {k: v for k, v in dataclasses.asdict(platform.options(**read)).items() if v is not None}
        values["base_url"] = str(values["base_url"]).rstrip("/")
        api_path = re.search(r"/api(/v\d+)?$", values["base_url"])
        if api_path:
            server = values["base_url"][: api_path.start()]
            self.problem((*path, "base_url"), f"the server's address, without {api_path.group(0)}: {server}")
            return None
        return AccountConfig(**values, secrets=secrets, options=options)


_DEFAULT: Any = object()


def _keys(kind: type[Any]) -> tuple[dataclasses.Field[Any], ...]:
    return tuple(f for f in dataclasses.fields(kind) if not f.metadata.get("internal"))


def _optional(annotation: Any) -> bool:
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    return union and type(None) in typing.get_args(annotation)


def _plain(annotation: Any) -> Any:
    """`X | None` -> X; anything else as it is."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation
