"""Errors over HTTP: the right status and one line of JSON, in OpenAI's error shape.

Every error response, on ``/v1`` and ``/api`` alike, is::

    {"error": {"message": "one line", "type": "invalid_request_error", "param": null,
               "code": null}}

so the ``openai`` SDK raises its own exception class for each status
(``AuthenticationError`` for 401, ``PermissionDeniedError`` for 403, ...).
A :class:`~agentnb.errors.UserError` from the command layer or the Python API
becomes a 4xx with its own message; a store held by another process too long is
503 with ``Retry-After``; anything else is a 500 whose message names only the
exception's type (the traceback goes to the server's log).
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel

from ..errors import (
    AlreadyExistsError,
    NotFoundError,
    StoreLockedError,
    StoreNotFoundError,
    StoreVersionError,
    UserError,
)
from ..text import clip

log = logging.getLogger("agentnb.serve")

#: the error ``type`` OpenAI uses for each status
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "request_too_large",
    422: "invalid_request_error",
    500: "server_error",
    502: "upstream_error",
    503: "service_unavailable",
}

#: seconds a client should wait before retrying a 503 (the store's lock timeout is the scale)
RETRY_AFTER = "1"


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: ErrorDetail


class ApiError(Exception):
    """An error response: ``status`` and a one-line ``message``."""

    def __init__(self, status: int, message: str, *, param: str | None = None,
                 code: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = " ".join(clip(message).split())
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": _TYPES.get(self.status, "error"),
                          "param": self.param, "code": self.code}}


def from_exception(exc: BaseException) -> ApiError:
    """The error response for an exception raised while serving a request."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, StoreLockedError):
        return ApiError(503, f"the store is busy: {exc.message}",
                        headers={"Retry-After": RETRY_AFTER})
    if isinstance(exc, UserError):
        message = exc.message or str(exc)
        if exc.see:
            message += f" (see agentnb {exc.see})"
        if isinstance(exc, NotFoundError):
            return ApiError(404, message)
        if isinstance(exc, AlreadyExistsError):
            return ApiError(409, message)
        if isinstance(exc, (StoreNotFoundError, StoreVersionError)):
            return ApiError(503, message, headers={"Retry-After": RETRY_AFTER})
        return ApiError(400, message)
    log.error("error while serving a request", exc_info=exc)
    return ApiError(500, f"internal error ({type(exc).__name__}); the server's log has the "
                         "details")


#: OpenAPI ``responses`` of every endpoint that checks a key
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "missing, malformed, unknown or revoked key"},
    403: {"model": ErrorBody, "description": "the key may not use this agent or endpoint"},
}
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "a request the server cannot use"},
    413: {"model": ErrorBody, "description": "the request body is too large"},
    503: {"model": ErrorBody, "description": "the store is busy (see Retry-After)"},
}


__all__ = ["AUTH_RESPONSES", "ApiError", "COMMON_RESPONSES", "ErrorBody", "from_exception"]
