"""Error responses: a JSON body naming the field and what is allowed; never a stack trace."""

import logging

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse

from aimesh.errors import AimeshError, InvalidInputError, StorageError

logger = logging.getLogger(__name__)


async def invalid_input(request: Request, exc: Exception) -> JSONResponse:
    """422 in FastAPI's validation-error shape, for an input our own checks refused."""
    assert isinstance(exc, InvalidInputError)
    detail = [
        {
            "loc": ["body", exc.field],
            "msg": exc.problem + (f" (allowed: {exc.allowed})" if exc.allowed else ""),
            "type": "value_error",
        }
    ]
    return JSONResponse({"detail": detail}, status.HTTP_422_UNPROCESSABLE_CONTENT)


async def unavailable(request: Request, exc: Exception) -> JSONResponse:
    """503 when a store is down: the message says which and how to fix it."""
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


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(InvalidInputError, invalid_input)
    app.add_exception_handler(StorageError, unavailable)
    app.add_exception_handler(AimeshError, failed)
    app.add_exception_handler(Exception, internal)
