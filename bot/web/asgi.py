"""The approval desk as a Starlette app: routes, sessions, security headers, a body limit, templates.

The cookie is signed (itsdangerous) and carries only a session token (`storage.sessions` keeps the
login) and, before login, the login form's CSRF token. Every response carries the security headers, a
last-resort error page included; no request body is read past `MAX_BODY_BYTES`.
"""

from __future__ import annotations

from pathlib import Path

import jinja2
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot import __version__
from bot.classifier import Classifier
from bot.clock import format_duration
from bot.config import Config
from bot.decide.playbooks import Playbooks
from bot.storage import Storage
from bot.web import cases, incidents, views
from bot.web.auth import Authenticator
from bot.web.desk import Desk

HERE = Path(__file__).parent
SESSION_COOKIE = "carebot_session"

# Scripts and styles come only from /static: an injected <script> or inline handler could not run even if
# escaping failed somewhere.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    ),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
}


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimit:
    """Refuses a request body over `limit` bytes as it arrives (chunked or not), before anything parses it."""

    def __init__(self, app: ASGIApp, limit: int = views.MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await _too_large(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise HTTPException(413, "request body too large")
            return message

        await self.app(scope, counted, send)


async def _too_large(scope: Scope, receive: Receive, send: Send) -> None:
    response = PlainTextResponse("request body too large", status_code=413, headers={"Connection": "close"})
    await response(scope, receive, send)


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return PlainTextResponse(exc.detail, status_code=exc.status_code, headers=exc.headers)


async def _server_error(_request: Request, _exc: Exception) -> Response:
    """The last resort: a plain page, with the security headers (it is sent outside the middleware)."""
    headers = {**SECURITY_HEADERS, "cache-control": "no-store"}
    return PlainTextResponse("Something went wrong on the desk; it is logged. Go back and try again.", 500, headers)


class NotConfigured(ValueError):
    """The desk has nobody who could log in: give web.users or web.admin_token."""


def templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every value a template prints is escaped unless marked otherwise
        undefined=jinja2.StrictUndefined,
    )
    env.filters["duration"] = format_duration
    env.globals["version"] = __version__
    return Jinja2Templates(env=env)


def create_app(
    config: Config,
    storage: Storage,
    classifier: Classifier | None = None,
    playbooks: Playbooks | None = None,
) -> Starlette:
    """The desk for this config and database; pass the daemon's classifier and playbooks to share them."""
    auth = Authenticator.from_config(config.web)
    if not auth.configured:
        raise NotConfigured(
            "the approval desk needs someone to log in: add web.users (see `carebot web hash-password`) "
            "or web.admin_token to the config"
        )
    routes = [
        Route("/", views.queue_page, methods=["GET"]),
        Route("/history", views.history_page, methods=["GET"]),
        Route("/login", views.login_page, methods=["GET"]),
        Route("/login", views.login, methods=["POST"]),
        Route("/logout", views.logout, methods=["POST"]),
        # Ids are read (within bounds) by the views: a route's int convertor takes any size of number.
        Route("/replies/{reply_id}/approve", views.approve, methods=["POST"]),
        Route("/replies/{reply_id}/unapprove", views.unapprove, methods=["POST"]),
        Route("/replies/{reply_id}/reject", views.reject, methods=["POST"]),
        Route("/replies/{reply_id}/retry", views.retry, methods=["POST"]),
        Route("/replies/{reply_id}/situation", views.change_situation, methods=["POST"]),
        Route("/cases", cases.cases_page, methods=["GET"]),
        Route("/cases/{case_id}", cases.case_page, methods=["GET"]),
        Route("/cases/{case_id}/reply", cases.reply, methods=["POST"]),
        Route("/cases/{case_id}/assign", cases.assign, methods=["POST"]),
        Route("/cases/{case_id}/resolve", cases.resolve, methods=["POST"]),
        Route("/cases/{case_id}/reopen", cases.reopen, methods=["POST"]),
        Route("/cases/{case_id}/note", cases.note, methods=["POST"]),
        Route("/incidents", incidents.incidents_page, methods=["GET"]),
        Route("/incidents/{incident_id}", incidents.incident_page, methods=["GET"]),
        Route("/incidents/{incident_id}/word", incidents.word, methods=["POST"]),
        Route("/incidents/{incident_id}/resolve", incidents.resolve, methods=["POST"]),
        Route("/incidents/{incident_id}/false-alarm", incidents.alarm, methods=["POST"]),
        Route("/incidents/{incident_id}/merge", incidents.merge, methods=["POST"]),
        Route("/incidents/{incident_id}/split", incidents.split, methods=["POST"]),
        Route("/incidents/{incident_id}/approve", incidents.approve, methods=["POST"]),
        Route("/health", views.health, methods=["GET"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    middleware = [
        Middleware(SecurityHeaders),
        Middleware(BodyLimit),
        Middleware(
            SessionMiddleware,
            secret_key=auth.secret_key,
            session_cookie=SESSION_COOKIE,
            max_age=int(config.web.session_max_age),
            same_site="lax",
            https_only=config.web.secure_cookies,
        ),
    ]
    handlers = {HTTPException: _http_error, Exception: _server_error}
    app = Starlette(routes=routes, middleware=middleware, exception_handlers=handlers)
    app.state.desk = Desk(config, storage, auth, classifier, playbooks)
    app.state.templates = templates()
    return app
