"""`carebot demo`, the README's first command: it runs end to end and shows what the bot did."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from bot.cli.demo import POSTS, QUEUED, run_demo
from tests.peers.mastodon import free_port

ROOT = Path(__file__).resolve().parents[1]


def test_demo_answers_every_situation_and_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_demo() == 0
    out = capsys.readouterr().out
    for post in POSTS:
        assert post.text in out
    for situation in ("contact_request", "simple_question", "complaint", "price_question", "trolling", "other"):
        assert f"situation {situation}" in out
    for lang in ("en", "ru", "id", "ar"):
        assert f"language {lang}" in out
    assert "public reply [sent]: @boris" in out
    assert QUEUED[0].text in out and "public reply [pending]: @sam" in out
    assert "1 reply waits for a person in the approval queue" in out
    assert "alice.w@example.org" not in out.split("alice.w@example.org", 1)[1]  # quoted once, never echoed


def carebot_as_printed(line: str) -> list[str]:
    words = shlex.split(line.split("#", 1)[0])
    assert words[0] == "carebot"
    return [sys.executable, "-m", "bot.cli", *words[1:]]


def test_demo_keep_prints_commands_that_work_as_printed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keep = tmp_path / "demo dir"  # a space, so the printed paths must be quoted
    assert run_demo(keep=str(keep)) == 0
    out = capsys.readouterr().out
    for token in ("acme.token", "acme-help.token", "admin.token"):
        assert (keep / token).stat().st_mode & 0o777 == 0o600, token  # secrets, as in a deployment
    commands = [line.strip() for line in out.splitlines() if line.startswith("  carebot ")]
    assert len(commands) == 5, out
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT)}  # no demo variables
    for line in commands:
        if line.startswith("carebot web"):
            continue
        done = subprocess.run(
            carebot_as_printed(line), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, (line, done.stderr)
        assert "warning" not in done.stderr
        if " queue list " in f" {line} ":
            assert "@sam" in done.stdout and "then privately" in done.stdout
        if " queue approve " in f" {line} ":
            assert "approved by" in done.stdout
    (web,) = [line for line in commands if line.startswith("carebot web")]
    port = free_port()
    process = subprocess.Popen(
        [*carebot_as_printed(web), "--port", str(port)], cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None and f"127.0.0.1:{port}" in process.stdout.readline()
        token = (keep / "admin.token").read_text().strip()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            # At once, as a person who clicks the printed URL: the desk listens before it prints it.
            page = http.get("/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
            assert http.post("/login", data={"csrf": csrf, "token": token}).status_code == 303
            assert http.get("/history").status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(15)


def test_demo_keep_refuses_a_directory_with_an_earlier_demo_in_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A second demo kept in the same place mixed its server's posts with the first one's cursors and cases
    (45 mentions, an incident of nobody's making); now it says so and changes nothing."""
    (tmp_path / "carebot.db").write_bytes(b"an earlier demo's database")
    assert run_demo(keep=str(tmp_path)) == 2
    assert "holds an earlier demo's database" in capsys.readouterr().err
    assert (tmp_path / "carebot.db").read_bytes() == b"an earlier demo's database"
