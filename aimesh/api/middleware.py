"""ASGI middleware: request-size limit and the audit log of every authenticated request."""

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aimesh.service import audit


def _result(status: int) -> str:
    """An HTTP status as an audit result."""
    if status < 400:
        return "success"
    return {401: "denied", 403: "denied", 404: "not_found", 429: "rate_limited"}.get(
        status, "error" if status >= 500 else "invalid"
    )


class AuditMiddleware:
    """After each request that went through authentication, append its audit entry.

    Records who (key, user, role), what (route name, resource type and id), when, from
    where (client IP) and the result (from the status code); failed authentications too.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request; then record it if the auth dependency described it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            info = scope.get("state", {}).get("audit")
            if info is not None:
                await audit.record(
                    scope["app"].state.services.db.sessions,
                    info.actor,
                    info.action,
                    info.resource_type,
                    result=_result(status),
                    resource_id=info.resource_id,
                    client_ip=info.client_ip,
                    status_code=status,
                    detail={"method": scope["method"], "path": scope["path"]},
                )


class BodyLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with 413, declared or streamed.

    Args:
        app: The wrapped app.
        max_bytes: Largest body accepted.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check ``Content-Length`` first, then count the bytes as they arrive."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise _TooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body: dict[str, Any] = {"detail": f"request body over {self.max_bytes} bytes"}
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})


class _TooLarge(Exception):
    """A streamed body passed the limit."""
