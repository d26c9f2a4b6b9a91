"""Errors as JSON ``{"error": {"message", "code"}}``, with one HTTP status per error class."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from omniembed import errors

logger = logging.getLogger(__name__)


class LimitExceededError(errors.OmniembedError, ValueError):
    """A request goes over one of the server's limits (inputs, tokens per input, body size)."""


class AuthenticationError(errors.OmniembedError, PermissionError):
    """A request has no API key, or one the server does not accept."""


class NotServedError(errors.OmniembedError, LookupError):
    """The request needs something this server was not started with (a reranker, a database)."""


# Most specific first: the first class an error is an instance of decides its status and code.
STATUS: list[tuple[type[BaseException], int, str]] = [
    (AuthenticationError, 401, "unauthorized"),
    (LimitExceededError, 413, "limit_exceeded"),
    (NotServedError, 404, "not_served"),
    (errors.CollectionNotFoundError, 404, "collection_not_found"),
    (errors.ObjectNotFoundError, 404, "object_not_found"),
    (errors.ModelNotFoundError, 404, "model_not_found"),
    (errors.CollectionExistsError, 409, "collection_exists"),
    (errors.InvalidInputError, 400, "invalid_input"),
    (errors.MissingExtraError, 501, "missing_extra"),
    (errors.DatabaseLockedError, 503, "database_locked"),
    (errors.ModelFormatError, 500, "model_format"),
    (ValueError, 400, "invalid_request"),
    (TypeError, 400, "invalid_request"),
]


def error_response(status: int, code: str, message: str) -> JSONResponse:
    """The JSON error body every endpoint uses."""
    return JSONResponse({"error": {"message": message, "code": code}}, status_code=status)


def status_of(error: BaseException) -> tuple[int, str]:
    """The HTTP status and code for an exception (500 ``internal_error`` when unknown)."""
    for kind, status, code in STATUS:
        if isinstance(error, kind):
            return status, code
    return 500, "internal_error"


def install_handlers(app: FastAPI) -> None:
    """Turn omniembed errors, validation errors and HTTP errors into the JSON error shape."""

    async def on_error(request: Request, error: Exception) -> JSONResponse:
        status, code = status_of(error)
        if status >= 500:
            logger.exception("%s %s failed", request.method, request.url.path, exc_info=error)
            message = str(error) if code != "internal_error" else "internal server error"
        elif isinstance(error, errors.CollectionNotFoundError):
            # The store's message lists the database's collections; a caller learns only this one is missing.
            name = request.path_params.get("name")
            message = f"no collection named {name!r}" if name is not None else "the collection does not exist"
        else:
            message = str(error)
        return error_response(status, code, message)

    async def on_validation(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        parts = []
        for item in error.errors():
            where = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
            parts.append(f"{where or 'body'}: {item.get('msg')}")
        return error_response(422, "invalid_request", "; ".join(parts))

    async def on_http(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, HTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        return error_response(error.status_code, code, str(error.detail))

    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(HTTPException, on_http)
    for kind in (errors.OmniembedError, ValueError, TypeError, Exception):
        app.add_exception_handler(kind, on_error)
