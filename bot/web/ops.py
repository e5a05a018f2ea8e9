"""`/metrics` (Prometheus) and `/health` of a running carebot, served on `metrics.port` by `carebot run`,
with or without the desk. Neither needs a login: bind it where only your monitoring can reach it."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from bot.run.app import App
from bot.run.metrics import health

NO_STORE = {"Cache-Control": "no-store"}


def create_ops_app(app: App) -> Starlette:
    async def metrics(_request: Request) -> Response:
        body = await run_in_threadpool(generate_latest, app.metrics.registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST, headers=NO_STORE)

    async def healthy(_request: Request) -> Response:
        found = await run_in_threadpool(health, app.storage, app.config, app.started_at, app.intervals)
        text = ("ok" if found.ok else "unhealthy") + "\n" + "\n".join(found.lines) + "\n"
        return PlainTextResponse(text, status_code=200 if found.ok else 503, headers=NO_STORE)

    routes = [Route("/metrics", metrics, methods=["GET"]), Route("/health", healthy, methods=["GET"])]
    return Starlette(routes=routes)
