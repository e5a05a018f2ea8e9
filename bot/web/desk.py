"""What every request of the approval desk shares: config, storage, the login check and its limits, and
(lazily) the classifier and playbooks that re-drafting needs."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from bot.classifier import Classifier
from bot.config import Config
from bot.decide.playbooks import Playbooks, load_playbooks, vocabulary
from bot.storage import Storage
from bot.web.auth import Authenticator, HashingGate, LoginThrottle


@dataclass
class Desk:
    config: Config
    storage: Storage
    auth: Authenticator
    classifier: Classifier | None = None
    playbooks: Playbooks | None = None
    throttle: LoginThrottle = field(default_factory=LoginThrottle)
    hashing: HashingGate = field(default_factory=HashingGate)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def brains(self) -> tuple[Classifier, Playbooks]:
        """The classifier and playbooks, loaded on first use: most visits never re-draft."""
        with self._lock:
            if self.playbooks is None:
                self.playbooks = load_playbooks(self.config.playbooks)
            if self.classifier is None:
                self.classifier = Classifier.load(vocabulary(self.playbooks), model_path=self.config.classifier.model)
            return self.classifier, self.playbooks
