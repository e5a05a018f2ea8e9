"""`carebot run` as a real child process for tests, its output read through a pipe.

A pipe, not a file: a test that limits the child's file sizes (RLIMIT_FSIZE, a disk too small) must not
take its log away with its database. Stopped (SIGTERM, then SIGKILL) by the test that started it.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class Carebot:
    def __init__(self, config: Path, env: dict[str, str]) -> None:
        self.config = config
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT), **env}
        self.lines: list[str] = []
        self._process: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self, file_size_limit: int | None = None) -> Carebot:
        """Start `carebot run`; with `file_size_limit`, no file it writes may grow past that many bytes
        (as on a disk that small; Python ignores SIGXFSZ, so a write past it fails with EFBIG)."""

        def limit() -> None:
            if file_size_limit is not None:
                resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, resource.RLIM_INFINITY))

        command = [sys.executable, "-m", "bot.cli", "run", "--config", str(self.config)]
        self._process = subprocess.Popen(
            command, cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=limit
        )
        self._reader = threading.Thread(target=self._read, args=(self._process,), daemon=True)
        self._reader.start()
        return self

    def _read(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            with self._lock:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def text(self) -> str:
        with self._lock:
            return "\n".join(self.lines)

    def limit_file_size(self, size: int | None) -> None:
        """Change the running process's file size limit (None: none)."""
        value = resource.RLIM_INFINITY if size is None else size
        resource.prlimit(self.pid, resource.RLIMIT_FSIZE, (value, resource.RLIM_INFINITY))

    def wait_for(self, condition: Callable[[], bool], timeout: float = 60.0, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"gave up waiting {what}; the log ends:\n{self.text()[-4000:]}")
            time.sleep(0.1)

    def wait_running(self) -> None:
        self.wait_for(lambda: "carebot running" in self.text(), what="for carebot to start")

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def wait_exit(self, timeout: float = 60.0) -> int:
        assert self._process is not None
        try:
            status = self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"carebot did not stop; the log ends:\n{self.text()[-4000:]}") from exc
        if self._reader is not None:
            self._reader.join(timeout=5)
        return status

    def send(self, signum: int) -> None:
        assert self._process is not None
        self._process.send_signal(signum)

    def stop(self) -> int | None:
        """SIGTERM, SIGKILL after 10 s; the exit status (None if it had to be killed)."""
        if self._process is None or self._process.poll() is not None:
            return self._process.returncode if self._process else None
        self._process.send_signal(signal.SIGTERM)
        try:
            return self.wait_exit(timeout=10)
        except AssertionError:
            self._process.kill()
            self._process.wait()
            return None
