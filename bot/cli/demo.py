"""`carebot demo`: the whole bot against a local Mastodon server (mastodon-mock), start to finish.

It seeds a brand and four customers, posts mentions in English, Russian, Indonesian and Arabic covering
every situation, runs the daemon's cycle against them with SQLite, and prints what the bot did with each.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.config import load_config
from bot.logs import configure_logging
from bot.run.app import App
from bot.run.daemon import run_once

BRAND_TOKEN = "demo-brand-token"  # a token of the throwaway local mock server, not a real credential


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


def register(sub: Any) -> None:
    demo = sub.add_parser("demo", help="run carebot against a local Mastodon server with sample mentions")
    demo.add_argument("--keep", metavar="DIR", help="keep the demo's database and config in DIR")
    demo.add_argument("-v", "--verbose", action="store_true", help="show the bot's log")
    demo.set_defaults(func=lambda args: run_demo(keep=args.keep, verbose=args.verbose))


def demo_config(directory: Path, base_url: str) -> Path:
    path = directory / "carebot.yaml"
    path.write_text(
        f"""# Written by `carebot demo`.
brand:
  name: Acme
  support_email: help@acme.example
  support_url: https://acme.example/help
storage:
  url: sqlite:///carebot.db
accounts:
  - name: acme-mastodon
    platform: mastodon
    base_url: {base_url}
    access_token: ${{CAREBOT_DEMO_TOKEN}}
    mode: auto
    poll_interval: 5s
""",
        encoding="utf-8",
    )
    return path


def run_demo(keep: str | None = None, verbose: bool = False) -> int:
    try:
        from mastodon_mock.config import SeedAccount, SeedConfig
        from mastodon_mock.testing import MockServer
    except ImportError:
        print("carebot demo needs the demo extra: pip install 'carebot[demo]'")
        return 2

    configure_logging("INFO" if verbose else "WARNING")
    logging.getLogger("uvicorn").setLevel(logging.WARNING)
    workdir = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="carebot-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    seed = SeedConfig(
        accounts=[SeedAccount(username="acme", display_name="Acme", bot=True, access_token=BRAND_TOKEN)]
        + [SeedAccount(username=name, access_token=f"{name}-token") for name in CUSTOMERS]
    )
    print("Starting a local Mastodon server (mastodon-mock)...")
    with MockServer(seed=seed) as server:
        os.environ["CAREBOT_DEMO_TOKEN"] = BRAND_TOKEN
        config = load_config(demo_config(workdir, server.base_url))
        app = App.build(config)
        try:
            run_once(app)  # first cycle: learns who the brand is and where its mentions start
            print(f"Posting {len(POSTS)} mentions from {len(CUSTOMERS)} customers...")
            posted: dict[str, DemoPost] = {}
            for post in POSTS:
                status = server.client(post.customer).status_post(post.text)
                posted[str(status["id"])] = post
            started = time.monotonic()
            reports = run_once(app)
            elapsed = time.monotonic() - started
            print_results(app, posted)
            report = reports[0]
            print(
                f"One cycle: {report.new} new mentions handled and {report.sent.sent} replies posted in {elapsed:.1f}s."
            )
            if keep:
                print(f"Database and config kept in {workdir}: carebot queue list --config {workdir}/carebot.yaml")
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
            f"{len(pending)} repl{'y waits' if len(pending) == 1 else 'ies wait'} for a person "
            "(run the demo with --keep DIR to work them with `carebot queue` or `carebot web`)."
        )
