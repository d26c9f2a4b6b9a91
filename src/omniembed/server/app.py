"""The app factory: one FastAPI app per model/database pair, with its own state and metrics."""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from omniembed._version import __version__
from omniembed.server.errors import AuthenticationError, error_response, install_handlers
from omniembed.server.metrics import Metrics
from omniembed.server.settings import ServerSettings
from omniembed.server.state import ServerState, get_state

logger = logging.getLogger(__name__)


def create_app(
    model: Any = None,
    db: Any = None,
    settings: ServerSettings | None = None,
    *,
    reranker: Any = None,
    close_db: bool = False,
) -> FastAPI:
    """Build the HTTP app around a loaded model, a database and/or a reranker.

    Args:
        model: the embedding model served by ``/v1/embeddings`` and used by collections that name it.
        db: an open database (``omniembed.connect(folder)``) for the collections endpoints.
        settings: limits, API keys, batching and CORS.
        reranker: a ``CrossEncoder`` for ``/v1/rerank``.
        close_db: close ``db`` (saving its indexes) when the server shuts down, for an app that owns
            it: uvicorn re-raises SIGTERM after shutdown, so code after ``uvicorn.run`` never runs.
    """
    from omniembed.server import collections, embeddings, pdf_upload

    settings = settings or ServerSettings()
    state = ServerState(settings, Metrics(), model=model, db=db, reranker=reranker)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.start()
        logger.info("omniembed server ready (model=%s, database=%s)", settings.model_name, db is not None)
        try:
            yield
        finally:
            state.stop()
            if close_db and db is not None:
                db.close()

    guarded = [Depends(_check_key)] if settings.api_keys else []
    docs_open = settings.public_docs or not settings.api_keys
    app = FastAPI(
        title="omniembed",
        version=__version__,
        lifespan=lifespan,
        openapi_url="/openapi.json" if docs_open else None,
        docs_url="/docs" if docs_open else None,
        redoc_url="/redoc" if docs_open else None,
    )
    app.state.omniembed = state
    install_handlers(app)
    app.include_router(embeddings.router, dependencies=guarded)
    app.include_router(collections.router, dependencies=guarded)
    app.include_router(pdf_upload.router, dependencies=guarded)
    _add_pages(app, state, [] if settings.public_metrics else guarded)
    if not docs_open:  # the schema stays reachable with the key, for client generators

        @app.get("/openapi.json", include_in_schema=False, dependencies=guarded)
        async def openapi() -> dict[str, Any]:
            return app.openapi()

    app.middleware("http")(state.metrics.middleware)
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["*"],
            allow_headers=["*"],
        )
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(AllowedHosts, hosts=settings.allowed_hosts)  # added last: it runs first
    return app


def _add_pages(app: FastAPI, state: ServerState, metrics_guard: list[Any]) -> None:
    @app.get("/health", tags=["server"])
    async def health() -> dict[str, Any]:
        """Liveness: ``{"status": "ok"}`` and what the server holds."""
        return {
            "status": "ok",
            "model": state.settings.model_name if state.model is not None else None,
            "database": state.db is not None,
            "reranker": state.reranker is not None,
        }

    @app.get("/metrics", tags=["server"], dependencies=metrics_guard)
    async def metrics() -> Response:
        """Prometheus metrics in text format."""
        if state.batcher is not None:
            state.metrics.queue_depth.set(state.batcher.queue_depth)
        return Response(state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/", include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(resources.files("omniembed.server").joinpath("static/index.html").read_text())


def _check_key(request: Request, state: Annotated[ServerState, Depends(get_state)]) -> None:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key:
        raise AuthenticationError("this server needs an API key: send 'Authorization: Bearer KEY'")
    if not any(hmac.compare_digest(key.encode(), known.encode()) for known in state.settings.api_keys):
        raise AuthenticationError("the API key is not valid")


class BodyLimit:
    """Refuse bodies over ``max_bytes`` with 413, by Content-Length or while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        if declared is not None:  # the server enforces that the body matches it
            await self.app(scope, receive, send)
            return
        # A chunked body: read it up to the limit before the app sees it.
        messages, seen = [], 0
        while True:
            message = await receive()
            messages.append(message)
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        replay = iter(messages)

        async def replayed() -> Message:
            return next(replay, None) or await receive()

        await self.app(scope, replayed, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"request body is over this server's limit of {self.max_bytes} bytes"
        await error_response(413, "body_too_large", message)(scope, receive, send)


_HOST_HEADER = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[^\s:/@\[\]]+)(?::[0-9]{1,5})?")


class AllowedHosts:
    """Refuse requests whose ``Host`` header is not an allowed host (400), against DNS rebinding.

    The rules are Starlette's ``TrustedHostMiddleware``'s (a name, ``"*.example.com"`` or ``"*"``),
    with the refusal in the JSON error shape every other error has.
    """

    def __init__(self, app: ASGIApp, hosts: Sequence[str]) -> None:
        self.app = app
        # A bare IPv6 address is written in brackets in a Host header.
        self.hosts = [f"[{h}]" if ":" in h and not h.startswith("[") else h.lower() for h in hosts]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        header = dict(scope.get("headers", [])).get(b"host", b"").decode("latin-1")
        if self._allowed(header):
            await self.app(scope, receive, send)
            return
        message = (
            f"Host {header!r:.100} is not a host this server answers to; use the address it was started "
            "with, or start it with --allowed-host NAME"
        )
        await error_response(400, "host_not_allowed", message)(scope, receive, send)

    def _allowed(self, header: str) -> bool:
        if "*" in self.hosts:
            return True
        match = _HOST_HEADER.fullmatch(header)
        if match is None:
            return False
        host = match["host"].lower()
        return any(
            host == pattern or (pattern[:2] == "*." and host.endswith(pattern[1:])) for pattern in self.hosts
        )
