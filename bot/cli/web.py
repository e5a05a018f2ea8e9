"""`carebot web ...`: serve the approval desk, and make password hashes for its users."""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
from typing import TYPE_CHECKING, Any

from bot.cli.common import add_config_option, load, secrets_of
from bot.config import Config
from bot.logs import configure_logging

if TYPE_CHECKING:
    from bot.run.app import App
    from bot.storage import Storage
    from bot.web.server import WebHandle

log = logging.getLogger("carebot.web")


def register(sub: Any) -> None:
    web = add_config_option(sub.add_parser("web", help="serve the approval desk: a web page for the queue"))
    web.add_argument("--host", help="listen on this address (default: web.host, 127.0.0.1)")
    web.add_argument("--port", type=int, help="listen on this port (default: web.port, 8080)")
    web.set_defaults(func=cmd_web)
    actions = web.add_subparsers(dest="web_command", metavar="ACTION")
    hashing = actions.add_parser(
        "hash-password", help="read a password (prompt or stdin) and print its hash for web.users"
    )
    hashing.set_defaults(func=cmd_hash_password)


def cmd_web(args: argparse.Namespace) -> int:
    from bot.storage import Storage
    from bot.web.asgi import NotConfigured, create_app
    from bot.web.server import bind, serve, url_of

    config = load(args, needs=frozenset({"web"}))
    if config is None:
        return 2
    configure_logging(config.daemon.log_level, secrets_of(config))
    host = args.host or config.web.host
    port = args.port if args.port is not None else config.web.port
    storage = Storage.open(config.storage.url)
    try:
        try:
            app = create_app(config, storage)
        except NotConfigured as exc:
            print(f"carebot: {exc}", file=sys.stderr)
            return 2
        try:
            sock = bind(host, port)
        except OSError as exc:
            print(f"carebot: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
            return 1
        if not config.web.secret_key:
            log.warning("web.secret_key is not set: sessions end when carebot restarts")
        print(f"carebot approval desk on {url_of(sock)}/ (Ctrl+C stops it)", flush=True)
        serve(app, sock, config.web.trusted_proxies)
        return 0
    finally:
        storage.close()


def cmd_hash_password(_args: argparse.Namespace) -> int:
    from bot.web.passwords import hash_password

    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Again: "):
            print("carebot: the passwords differ", file=sys.stderr)
            return 2
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        print("carebot: the password is empty", file=sys.stderr)
        return 2
    print(hash_password(password))
    print("Put it in the config under web.users, e.g.  alice: <the line above>", file=sys.stderr)
    return 0


def start_web_in_thread(config: Config, storage: Storage, **shared: Any) -> WebHandle:
    """Start the desk next to the daemon (`carebot run --web`); the handle's `.stop()` ends it.

    `shared` may pass the daemon's `classifier` and `playbooks` so they are not loaded twice.
    Raises NotConfigured (no users, no token) or OSError (address in use) before anything runs.
    """
    from bot.web.asgi import create_app
    from bot.web.server import start_in_thread

    app = create_app(config, storage, **shared)
    handle = start_in_thread(app, config.web.host, config.web.port, config.web.trusted_proxies)
    if not config.web.secret_key:
        log.warning("web.secret_key is not set: sessions end when carebot restarts")
    log.info("approval desk on %s/", handle.url)
    return handle


def start_ops_in_thread(app: App) -> WebHandle:
    """Serve /metrics and /health of a running bot on `metrics.host`:`metrics.port` (`carebot run`)."""
    from bot.web.ops import create_ops_app
    from bot.web.server import start_in_thread

    settings = app.config.metrics
    assert settings.port is not None
    handle = start_in_thread(create_ops_app(app), settings.host, settings.port)
    log.info("metrics and health on %s/metrics and %s/health", handle.url, handle.url)
    return handle
