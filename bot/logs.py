"""Logging set-up: one readable line per event, and no secret ever printed, whatever a library logs."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from urllib.parse import quote

REDACTED = "***"


class Redactor(logging.Filter):
    """Replaces every known secret in a record's final message and traceback by "***".

    A secret is also hidden percent-encoded (once and twice), as OAuth libraries log it in signed URLs.
    Values shorter than four characters are not taken: they would mask ordinary words.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets: list[str] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        known = set(self._secrets)
        for secret in secrets:
            if secret and len(secret) >= 4:
                known |= {secret, quote(secret, safe=""), quote(quote(secret, safe=""), safe="")}
        # Longest first, so a secret that contains another is hidden whole.
        self._secrets = sorted(known, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        message = record.getMessage()
        redacted = self.redact(message)
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def configure_logging(level: str = "INFO", secrets: Iterable[str] = ()) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(Redactor(secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # Libraries chatter at INFO about every request; carebot says what matters itself. At DEBUG, tweepy
    # logs whole answers (posts with their personal data) and the OAuth libraries what they sign.
    for noisy in ("apscheduler", "httpx", "urllib3", "alembic", "tweepy", "requests_oauthlib", "oauthlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
