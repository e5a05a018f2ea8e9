"""The brand's blocked and muted accounts, re-read now and then: one cache policy for every platform.

If they cannot be read for a while, the last list read stands; if they were never read, the error
propagates, so that a cycle answers nobody rather than someone the brand blocked. A token without the
scope to read them gets an empty list and a warning, and is asked again only hourly.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from connectors.base import AuthFailed, ConnectorError, Rejected

log = logging.getLogger(__name__)

UNREADABLE_TTL = 3600.0


class IgnoredAuthors:
    def __init__(self, read: Callable[[], set[str]], ttl: float) -> None:
        self._read = read
        self.ttl = ttl
        self._ids: frozenset[str] | None = None
        self._until = 0.0  # time.monotonic() when the lists are read again
        self._lock = threading.Lock()  # several senders may ask at once: one reads, the others wait for it

    def get(self) -> frozenset[str]:
        with self._lock:
            return self._get()

    def _get(self) -> frozenset[str]:
        if self._ids is not None and time.monotonic() < self._until:
            return self._ids
        try:
            ids, ttl = self._read(), self.ttl
        except (AuthFailed, Rejected) as exc:
            log.warning("%s; blocked and muted authors are not known", exc)
            ids, ttl = set(self._ids or ()), UNREADABLE_TTL
        except ConnectorError:
            if self._ids is None:
                raise
            ids, ttl = set(self._ids), self.ttl / 4
        self._ids, self._until = frozenset(ids), time.monotonic() + ttl
        return self._ids
