"""The ASGI app: FastAPI over one store, with the error shape, the body limit and ``/health``.

:func:`build_app` is what :func:`agentnb.serve.app` returns; :func:`create_app`
is the factory uvicorn's worker processes call (``agentnb serve --workers N``),
which opens the store named by the environment.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Iterable

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import UserError
from ..version import __version__
from . import openai_api, rest
from .auth import Caller, authenticate
from .errors import ApiError, from_exception
from .turns import Turns, in_thread

if TYPE_CHECKING:  # pragma: no cover
    from ..api import Store

#: The largest request body accepted (bytes); bigger ones get 413.
MAX_BODY = 1_000_000

#: Environment of the worker processes (``--workers``): which agents to serve.
AGENTS_ENV = "AGENTNB_SERVE_AGENTS"

DESCRIPTION = """\
An agentnb store's agents over HTTP.

* `/v1`: OpenAI-compatible (`GET /v1/models`, `POST /v1/chat/completions` with `model` = an
  agent's name; `stream: true` for server-sent events). Point any OpenAI client here.
* `/api`: agentnb's records and turns (agents, sessions with their messages and tool calls,
  chat), and admin endpoints for agents and keys.

Every endpoint but `/health` needs `Authorization: Bearer anb_...`: an agent's key reaches
that agent only; an admin key (`agentnb keys create --admin`) everything. Send
`X-Agentnb-Session: ID` to continue a stored session; every turn's response says its session
in that header. Errors are one line: `{"error": {"message", "type", "param", "code"}}`.
"""


class BodyLimit:
    """ASGI middleware: a request body above ``limit`` bytes gets 413 (declared or streamed)."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        too_big = ApiError(413, f"the request body is larger than {self.limit:,} bytes")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                size = -1
            if size < 0:
                await _send_error(send, ApiError(400, "malformed Content-Length header"))
                return
            if size > self.limit:
                await _send_error(send, too_big)
                return
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise too_big
            return message

        await self.app(scope, limited, send)


async def _send_error(send, err: ApiError) -> None:
    response = JSONResponse(err.body(), status_code=err.status, headers=err.headers)
    await response({"type": "http"}, None, send)  # type: ignore[arg-type]


def _error_response(err: ApiError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status, headers=err.headers)


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    from ..commands.base import friendly_error

    errors = exc.errors()
    if not errors:
        return "the request is not valid", None
    first = errors[0]
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body",)]
    where = ".".join(loc) or "body"
    if first.get("type") == "json_invalid":
        return "the body is not valid JSON", None
    if first.get("type") == "extra_forbidden":
        return f"unsupported field {where[:60]!r}", where[:60]
    if first.get("type") in ("model_attributes_type", "dict_type") and where == "body":
        return "the body must be a JSON object", None
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where[:80]}: {friendly_error(first)}{more}", where[:80]


def build_app(store: "Store", *, agents: Iterable[str] | None = None,
              max_body: int = MAX_BODY) -> FastAPI:
    """The FastAPI app serving ``store`` (``agents``: only these; see :mod:`agentnb.serve`)."""
    store.init()  # an older store is upgraded now (its keys kept), not on the first request
    turns = Turns(store, agents)
    bearer = HTTPBearer(auto_error=False, description="an agentnb API key: anb_...")

    def caller(request: Request, _: Any = Depends(bearer)) -> Caller:
        return authenticate(store, request.headers.get("authorization"))

    app = FastAPI(title="agentnb", version=__version__, description=DESCRIPTION)
    app.state.store = store
    app.state.turns = turns

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return _error_response(exc)

    @app.exception_handler(UserError)
    async def user_error(request: Request, exc: UserError):
        return _error_response(from_exception(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        message, param = _validation_message(exc)
        return _error_response(ApiError(400, message, param=param))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if isinstance(exc.__cause__, ApiError):  # the body limit, hit while FastAPI read it
            return _error_response(exc.__cause__)
        if exc.status_code == 404:
            message = f"no endpoint {request.url.path[:80]} (see /docs)"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path[:80]}"
        else:
            message = str(exc.detail)
        return _error_response(ApiError(exc.status_code, message,
                                        headers=dict(exc.headers or {})))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        return _error_response(from_exception(exc))

    @app.get("/health", tags=["status"], summary="version, schema revision, store reachable")
    async def health() -> JSONResponse:
        try:
            status = await in_thread(store.schema_status)
        except Exception as exc:  # unreachable or busy: say so, never fail
            err = from_exception(exc)
            return JSONResponse({"status": "unavailable", "version": __version__,
                                 "store": "unreachable", "error": err.message},
                                status_code=503, headers={"Retry-After": "1"})
        return JSONResponse({"status": "ok", "version": __version__, "store": "reachable",
                             "schema_revision": status.revision, "schema_head": status.head,
                             "agents": sorted(turns.agents) if turns.agents is not None
                             else "all"})

    app.include_router(openai_api.router(turns, caller))
    app.include_router(rest.router(turns, caller))
    app.add_middleware(BodyLimit, limit=max_body)
    return app


def create_app() -> FastAPI:
    """The app of a worker process: the store of the environment (``AGENTNB_*``)."""
    from ..api import connect

    names = [n for n in os.environ.get(AGENTS_ENV, "").split(",") if n]
    return build_app(connect(), agents=names or None)


__all__ = ["AGENTS_ENV", "BodyLimit", "MAX_BODY", "build_app", "create_app"]
