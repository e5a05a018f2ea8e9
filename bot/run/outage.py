"""An account that cannot do its work is told to the team once per outage, and once when it works again.

A platform that cannot be reached, keeps failing, or refuses the token leaves carebot blind on that
account: its mentions are not read and its replies wait (nothing is lost). The log said so every cycle and
`/health` turned stale, but a team that watches only its alert channel heard nothing until customers
complained of silence. Refused credentials are told at once, since they never mend themselves; anything
else after `notify.account_down_after` without a good cycle, so that a platform's restart is no news.

An outage is named by the account's last good cycle before it, so every worker, every cycle and every
restart during one outage raise the same alert key, and the alert outbox keeps it once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.clock import format_duration, now
from bot.config import AccountConfig
from bot.run.alerts import raise_alert
from connectors.base import ConnectorError
from connectors.explain import explain

if TYPE_CHECKING:
    from bot.run.app import App
    from bot.storage import Storage

DOWN = "account_down"
BACK = "account_back"
# A good cycle this long after the one before may end a told outage (the shortest told one, refused
# credentials, takes longer than this to fix): below it, the usual case, no query is made.
BACK_CHECK_AFTER = timedelta(seconds=30)
# The failures (CycleReport.failed) that leave the account blind; "cap" has an alert of its own.
TOLD = ("auth", "unreachable", "error")


def tell_if_down(
    app: App,
    account: AccountConfig,
    failed: str,
    failure: ConnectorError | None,
    error: str | None,
    at: datetime | None = None,
) -> bool:
    """After a failed cycle: raise the outage's alert if it is time to; True if raised now. `failure` is the
    platform's error (said in plain words, with what to check), `error` any other (a bug: the log says more)."""
    if failed not in TOLD:
        return False
    at = at or now()
    state = app.storage.accounts.get(account.name)
    last_good = state.last_cycle_at if state is not None else None
    since = last_good or app.failing_since.setdefault(account.name, at)
    if failed != "auth" and at - since < timedelta(seconds=app.config.notify.account_down_after):
        return False
    # Refused credentials have their own alert: told at once even during an outage told already, since
    # what to do about them differs and they never mend themselves.
    key = _down_key(account.name, last_good, failed == "auth")
    if app.storage.alerts.get(key) is not None:  # a read, not a failing insert, on every cycle of an outage
        return False
    lasted = f"no good cycle for {format_duration(at - since)}" if at - since >= timedelta(minutes=1) else "failing"
    if failure is not None:
        cause = explain(failure, account.base_url)
    else:
        cause = f"{_short(error or failed)} (the log says more)"
    cause += "" if cause.endswith(("?", ".")) else "."
    then = " Then start carebot again, so that it reads the new token." if failed == "auth" else ""
    text = (
        f"{account.name} ({account.platform}): {lasted}: {cause}{then} carebot reads nothing on this account "
        "and its replies wait in the queue; nothing is lost."
    )
    return raise_alert(app.storage, key=key, kind=DOWN, account=account.name, text=text, at=at)


def tell_if_back(app: App, account: AccountConfig, last_good: datetime | None, at: datetime | None = None) -> bool:
    """After a good cycle, with the account's good cycle before it: if an outage was told, say it is over."""
    at = at or now()
    since = last_good or app.failing_since.pop(account.name, None)
    if last_good is not None and at - last_good < BACK_CHECK_AFTER:
        return False
    keys = (_down_key(account.name, last_good, auth) for auth in (False, True))
    down = next((key for key in keys if app.storage.alerts.get(key) is not None), None)
    if down is None:
        return False
    lasted = f" after {format_duration(at - since)}" if since is not None else ""
    text = f"{account.name} ({account.platform}) works again{lasted}; its waiting replies go out now."
    return raise_alert(app.storage, key=f"back:{down}", kind=BACK, account=account.name, text=text, at=at)


def told_outage(storage: Storage, name: str, last_good: datetime | None) -> str | None:
    """What the team was told of the account's outage that is not over (refused credentials first)."""
    for auth in (True, False):
        alert = storage.alerts.get(_down_key(name, last_good, auth))
        if alert is not None:
            return alert.text
    return None


def _short(error: str, limit: int = 160) -> str:
    """A library's error can run to a screenful (a connection pool's repr): the start says what it was."""
    line = " ".join(error.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _down_key(name: str, last_good: datetime | None, auth: bool) -> str:
    """An outage is named by the good cycle before it; an account that never had one has one such outage."""
    began = last_good.isoformat(timespec="seconds") if last_good is not None else "never"
    return f"account-down:{name}:{began}{':auth' if auth else ''}"
