"""Error responses: a JSON body naming the field and what is allowed; never a stack trace.

The error statuses the routes share are declared here once, for the OpenAPI schema.
"""

import logging
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.routing import Match, Route

from aimesh.errors import (
    AimeshError,
    BookNotFoundError,
    BudgetExceededError,
    InvalidInputError,
    LedgerPayloadError,
    ModelNotFoundError,
    ModelUnavailableError,
    ModelUnreadableError,
    ScopeNotFoundError,
    StorageError,
    UnknownClientError,
)

logger = logging.getLogger(__name__)
Responses = dict[int | str, dict[str, Any]]


class ErrorPublic(BaseModel):
    """An error: what was wrong and, where it helps, what is allowed."""

    detail: str


def error_response(description: str, **headers: str) -> dict[str, Any]:
    """An error response declaration for OpenAPI: its body, description and headers."""
    response: dict[str, Any] = {"model": ErrorPublic, "description": description}
    if headers:
        response["headers"] = {
            name: {"description": text, "schema": {"type": "string"}}
            for name, text in headers.items()
        }
    return response


# Any request: malformed ones, the body-size limit, the stores (503 when one is down).
REQUEST_ERRORS: Responses = {
    400: error_response("Malformed request, e.g. a body that is not UTF-8."),
    413: error_response("Request body over the size limit (AIMESH_MAX_BODY_BYTES)."),
    503: error_response("A store (database, Redis) is unavailable; the message says which."),
}
# Routes that need an API key.
AUTH_ERRORS: Responses = {
    401: error_response(
        "Missing, unknown, revoked or expired API key.",
        **{"WWW-Authenticate": "Bearer: send the key as X-API-Key or a bearer token."},
    ),
    403: error_response("The key lacks the scope this route needs."),
    429: error_response(
        "The key is over its rate limit.",
        **{"Retry-After": "Seconds until the key may send again."},
    ),
}
ROUTE_ERRORS: Responses = {**AUTH_ERRORS, **REQUEST_ERRORS}
# Routes that address a record by id: unknown ids and other tenants' ids answer alike.
NOT_FOUND: Responses = {404: error_response("No such record in the caller's tenant.")}


class BudgetErrorPublic(ErrorPublic):
    """A run refused by a budget: which budget, its limit and window, what the run needed.

    Amounts are USD decimal strings; ``requested_usd`` is null when the run's price is
    unknown (``reason`` says why).
    """

    budget: dict[str, Any] = Field(
        description="id, scope, scope_id, period, on_limit, limit_usd, spent_usd, reserved_usd"
    )
    requested_usd: str | None = Field(description="The run's worst-case cost, USD.")
    reason: str | None


# Routes that submit a task: a budget of the tenant, network or key leaves no room for it.
BUDGET_EXCEEDED: Responses = {
    402: {
        "model": BudgetErrorPublic,
        "description": "A budget of the tenant, network or API key is exhausted for this run.",
    }
}


def conflict(description: str) -> Responses:
    """A 409 response declaration, ``description`` saying when it happens."""
    return {409: error_response(description)}


async def invalid_input(request: Request, exc: Exception) -> JSONResponse:
    """422 in FastAPI's validation-error shape, for an input our own checks refused.

    ``loc`` starts with ``query`` or ``path`` when the field is a query or path parameter
    of the request (a segment ``filter``, a ``client_id``), else ``body``.
    """
    assert isinstance(exc, InvalidInputError)
    name = exc.field.split(".")[0]
    where = (
        "query"
        if name in request.query_params
        else "path"
        if name in request.path_params
        else "body"
    )
    detail = [
        {
            "loc": [where, exc.field],
            "msg": exc.problem + (f" (allowed: {exc.allowed})" if exc.allowed else ""),
            "type": "value_error",
        }
    ]
    return JSONResponse({"detail": detail}, status.HTTP_422_UNPROCESSABLE_CONTENT)


async def budget_exceeded(request: Request, exc: Exception) -> JSONResponse:
    """402 naming the budget that refused the run, its limit, spend and the run's need."""
    assert isinstance(exc, BudgetExceededError)
    return JSONResponse({"detail": str(exc), **exc.detail()}, status.HTTP_402_PAYMENT_REQUIRED)


async def not_found(request: Request, exc: Exception) -> JSONResponse:
    """404 for an id the caller's tenant does not hold (a budget's ``scope_id``)."""
    return JSONResponse({"detail": str(exc)}, status.HTTP_404_NOT_FOUND)


async def conflicting(request: Request, exc: Exception) -> JSONResponse:
    """409 when the tenant's book cannot answer this (no churn outcomes, no monthly charges)."""
    return JSONResponse({"detail": str(exc)}, status.HTTP_409_CONFLICT)


async def server_fault(request: Request, exc: Exception) -> JSONResponse:
    """500 naming what failed on the server (a ledger row, an ML model file), for its admin."""
    logger.error("%s on %s %s: %s", type(exc).__name__, request.method, request.url.path, exc)
    return JSONResponse({"detail": str(exc)}, status.HTTP_500_INTERNAL_SERVER_ERROR)


async def unavailable(request: Request, exc: Exception) -> JSONResponse:
    """503 when a store is down or an ML model is not trained: the message says which."""
    return JSONResponse({"detail": str(exc)}, status.HTTP_503_SERVICE_UNAVAILABLE)


async def failed(request: Request, exc: Exception) -> JSONResponse:
    """Any other aimesh error: 400 with its message."""
    return JSONResponse({"detail": str(exc)}, status.HTTP_400_BAD_REQUEST)


async def internal(request: Request, exc: Exception) -> JSONResponse:
    """500 with no details for the client; the traceback goes to the server log."""
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse(
        {"detail": "internal error; the server log has the details"},
        status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


async def method_not_allowed(request: Request, exc: Exception) -> JSONResponse:
    """405 whose ``Allow`` lists every method of the path (RFC 9110), not one route's."""
    allowed: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.methods:
            match, _ = route.matches(request.scope)
            if match is not Match.NONE:
                allowed |= route.methods
    return JSONResponse(
        {"detail": "Method Not Allowed"},
        status.HTTP_405_METHOD_NOT_ALLOWED,
        headers={"Allow": ", ".join(sorted(allowed))},
    )


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(status.HTTP_405_METHOD_NOT_ALLOWED, method_not_allowed)
    app.add_exception_handler(ScopeNotFoundError, not_found)
    app.add_exception_handler(UnknownClientError, not_found)
    app.add_exception_handler(BookNotFoundError, not_found)
    app.add_exception_handler(ModelUnavailableError, conflicting)
    app.add_exception_handler(InvalidInputError, invalid_input)
    app.add_exception_handler(BudgetExceededError, budget_exceeded)
    app.add_exception_handler(StorageError, unavailable)
    app.add_exception_handler(ModelNotFoundError, unavailable)
    app.add_exception_handler(LedgerPayloadError, server_fault)
    app.add_exception_handler(ModelUnreadableError, server_fault)
    app.add_exception_handler(AimeshError, failed)
    app.add_exception_handler(Exception, internal)
