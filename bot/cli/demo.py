"""`carebot demo`: the whole bot against a local Mastodon server (mastodon-mock), start to finish.

It seeds a brand with two accounts and a few customers, posts mentions in English, Russian, Indonesian and
Arabic covering every situation, runs the daemon's cycle against them with SQLite, and prints what the bot
did with each. One account answers on its own (`auto`); the other (`approve`) keeps its replies in the
approval queue, for `carebot queue` and the desk (`--keep DIR` keeps all of it, with commands to try).
"""

from __future__ import annotations

import logging
import os
import secrets
import shlex
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.config import load_config
from bot.logs import configure_logging

if TYPE_CHECKING:
    from bot.run.app import App

BRAND_TOKEN = "demo-brand-token"  # tokens of the throwaway local mock server, not real credentials
HELP_TOKEN = "demo-help-token"


@dataclass(frozen=True)
class DemoPost:
    customer: str
    text: str


CUSTOMERS = ("alice", "sam", "boris", "dewi", "layla", "grumpy")

POSTS: tuple[DemoPost, ...] = (
    DemoPost("alice", "@acme how do I reach a real person at support? Email or phone is fine"),
    DemoPost("alice", "@acme does the Pro plan work offline?"),
    DemoPost(
        "alice",
        "@acme my order never arrived and nobody answers. It's been two weeks! "
        "My email is alice.w@example.org, order #A-558812",
    ),
    DemoPost("sam", "@acme why is the yearly plan so expensive? Any student discount?"),
    DemoPost("grumpy", "@acme lol you are all clowns, worst company ever, go cry"),
    DemoPost("sam", "@acme just wanted to say the new update is lovely, thank you!"),
    DemoPost("boris", "@acme как связаться с поддержкой? Дайте почту пожалуйста"),
    DemoPost("boris", "@acme приложение не работает третий день, деньги списали, а доступа нет!!!"),
    DemoPost("boris", "@acme почему подписка подорожала? Есть скидки для студентов?"),
    DemoPost("dewi", "@acme min, aplikasinya error terus dari kemarin, gak bisa login sama sekali"),
    DemoPost("dewi", "@acme kak, cara ganti email di akun gimana ya?"),
    DemoPost("dewi", "@acme harganya kemahalan, ada promo gak bulan ini?"),
    DemoPost("layla", "@acme الطلب وصلني ناقص وما حد يرد علي، ابغى حل اليوم"),
    DemoPost("layla", "@acme كيف اتواصل مع خدمة العملاء؟"),
    DemoPost("layla", "@acme شكرا على الخدمة الممتازة، التطبيق رائع"),
)

# Mentions of the second account, whose replies wait for a person (mode: approve).
QUEUED: tuple[DemoPost, ...] = (
    DemoPost("sam", "@acme_help I was charged twice for my subscription this month, can someone check?"),
)


def register(sub: Any) -> None:
    demo = sub.add_parser("demo", help="run carebot against a local Mastodon server with sample mentions")
    demo.add_argument("--keep", metavar="DIR", help="keep the demo's database and config in DIR")
    demo.add_argument("-v", "--verbose", action="store_true", help="show the bot's log")
    demo.set_defaults(func=lambda args: run_demo(keep=args.keep, verbose=args.verbose))


def demo_config(directory: Path, base_url: str) -> Path:
    """The demo's carebot.yaml, with its tokens in files next to it, so every command works as printed."""
    _write_secret(directory / "acme.token", BRAND_TOKEN)
    _write_secret(directory / "acme-help.token", HELP_TOKEN)
    admin = directory / "admin.token"
    if not admin.exists():
        _write_secret(admin, secrets.token_urlsafe(18))
    path = directory / "carebot.yaml"
    path.write_text(
        f"""# Written by `carebot demo`. The tokens are the demo server's, kept in files next to this one.
brand:
  name: Acme
  support_email: help@acme.example
  support_url: https://acme.example/help
storage:
  url: sqlite:///carebot.db
web:
  admin_token_file: admin.token                 # log in to `carebot web` with the token in this file
accounts:
  - name: acme-mastodon
    platform: mastodon
    base_url: {base_url}
    access_token_file: acme.token
    mode: auto                                   # the playbooks decide what goes out on its own
    poll_interval: 5s
  - name: acme-help
    platform: mastodon
    base_url: {base_url}
    access_token_file: acme-help.token
    mode: approve                                # every reply waits for a person
    poll_interval: 5s
""",
        encoding="utf-8",
    )
    return path


def _write_secret(path: Path, token: str) -> None:
    """A token file only its owner reads (the admin token logs in to the desk), as for a real deployment."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    path.chmod(0o600)  # a file that was there before keeps its mode through os.open


def run_demo(keep: str | None = None, verbose: bool = False) -> int:
    try:
        from mastodon_mock.config import SeedAccount, SeedConfig
        from mastodon_mock.testing import MockServer
    except ImportError:
        print("carebot demo needs the demo extra: pip install 'carebot[demo]'")
        return 2

    from bot.run.app import App
    from bot.run.daemon import run_once

    configure_logging("INFO" if verbose else "WARNING")
    logging.getLogger("uvicorn").setLevel(logging.WARNING)
    workdir = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="carebot-demo-"))
    if (workdir / "carebot.db").exists():
        # Its cursors and cases belong to an earlier demo server: this one's would mix with them.
        print(
            f"carebot demo: {workdir} holds an earlier demo's database; keep this one in a new directory",
            file=sys.stderr,
        )
        return 2
    workdir.mkdir(parents=True, exist_ok=True)
    seed = SeedConfig(
        accounts=[
            SeedAccount(username="acme", display_name="Acme", bot=True, access_token=BRAND_TOKEN),
            SeedAccount(username="acme_help", display_name="Acme Help", bot=True, access_token=HELP_TOKEN),
        ]
        + [SeedAccount(username=name, access_token=f"{name}-token") for name in CUSTOMERS]
    )
    print("Starting a local Mastodon server (mastodon-mock)...")
    with MockServer(seed=seed) as server:
        config = load_config(demo_config(workdir, server.base_url))
        app = App.build(config)
        try:
            run_once(app)  # first cycle: learns who the brand is and where its mentions start
            print(f"Posting {len(POSTS) + len(QUEUED)} mentions from {len(CUSTOMERS)} customers...")
            posted: dict[str, DemoPost] = {}
            for post in POSTS + QUEUED:
                status = server.client(post.customer).status_post(post.text)
                posted[str(status["id"])] = post
            started = time.monotonic()
            reports = run_once(app)
            elapsed = time.monotonic() - started
            print_results(app, posted)
            new, sent = sum(r.new for r in reports), sum(r.sent.sent for r in reports)
            print(f"One cycle: {new} new mentions handled and {sent} replies posted in {elapsed:.1f}s.")
            if keep:
                waiting = app.storage.replies.queue()
                print_next_steps(workdir, waiting[0].reply.id if waiting else None)
        finally:
            app.close()
    if not keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def print_results(app: App, posted: dict[str, DemoPost]) -> None:
    width = 78
    for stored in app.storage.mentions.all():
        post = posted.get(stored.mention.post_id)
        if post is None:
            continue
        replies = app.storage.replies.for_mention(stored.id)
        print("-" * width)
        print(f"@{post.customer}: {stored.mention.text}")
        print(
            f"  situation {stored.situation} · language {stored.lang} · confidence {stored.confidence:.2f}"
            f" · action {stored.action}"
        )
        print(f"  why: {stored.reason}")
        if not replies:
            print("  reply: (none)")
        for reply in replies:
            print(f"  {reply.kind.value} reply [{reply.state.value}]: {reply.text}")
    print("-" * width)
    pending = app.storage.replies.queue()
    if pending:
        print(
            f"{len(pending)} repl{'y waits' if len(pending) == 1 else 'ies wait'} for a person in the approval "
            "queue (acme-help is in `approve` mode; run the demo with --keep DIR to work the queue)."
        )


def print_next_steps(workdir: Path, waiting: int | None) -> None:
    """Commands that work as printed: the config reads its tokens from files kept next to it."""
    config = shlex.quote(str(workdir / "carebot.yaml"))
    print(f"Database and config kept in {workdir}. The demo server is gone, so nothing more is sent. Try:")
    print(f"  carebot queue list --config {config}")
    if waiting is not None:
        print(f"  carebot queue approve {waiting} --config {config}")
    print(f"  carebot history --config {config}")
    print(f"  carebot status --config {config}")
    print(f"  carebot web --config {config}")
    print(f"The desk's admin token is in {workdir / 'admin.token'}.")
