"""ASGI middleware: request-size limit, single-valued query parameters and the audit log."""

import json
from collections import Counter
from typing import Any
from urllib.parse import parse_qsl

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


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
    The entry is written when the response starts, so a client that has its answer finds
    its request in the log.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request; then record it if the auth dependency described it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status, recorded = 500, False

        async def record() -> None:
            nonlocal recorded
            info = scope.get("state", {}).get("audit")
            if info is None or recorded:
                return
            recorded = True
            await scope["app"].state.services.audit.record(
                info.actor,
                info.action,
                info.resource_type,
                result=_result(status),
                resource_id=info.resource_id,
                client_ip=info.client_ip,
                status_code=status,
                detail={"method": scope["method"], "path": scope["path"]},
            )

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                await record()  # durable before the client has its answer
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            await record()  # no response started: an unhandled error (500)


class BodyLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with 413, declared or streamed.

    Args:
        app: The wrapped app.
        max_bytes: Largest body accepted.
        uploads: Paths that take larger bodies (file uploads), each with its limit (bytes).
    """

    def __init__(self, app: ASGIApp, max_bytes: int, uploads: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.uploads = uploads or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check ``Content-Length``; without one (chunked), read the body up to the limit.

        The server holds a request to its declared length. A chunked body is read here,
        before the app, because FastAPI answers 400 to any error raised while it reads one.
        """
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.uploads.get(scope["path"], self.max_bytes)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if not declared.isdigit() or int(declared) > limit:
                await self._refuse(send, limit)
                return
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        received = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            received += len(message.get("body", b""))
            if received > limit:
                await self._refuse(send, limit)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send, limit: int) -> None:
        body: dict[str, Any] = {"detail": f"request body over {limit} bytes"}
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})


class SingleQueryMiddleware:
    """Refuse a query parameter given more than once unless it is a list (422).

    Starlette keeps every value and FastAPI reads a singular parameter's last one, so
    ``?key_id=a&key_id=b`` would be answered as if only ``b`` were asked for. A client that
    sends two values means something the route cannot do: it is told so, naming the
    parameter.

    Args:
        app: The wrapped app.
        repeatable: The query parameters declared as lists (e.g. ``filter``).
    """

    def __init__(self, app: ASGIApp, repeatable: frozenset[str]) -> None:
        self.app = app
        self.repeatable = repeatable

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer 422 naming the first repeated singular parameter, else pass on."""
        if scope["type"] == "http" and scope.get("query_string"):
            names = [
                name
                for name, _ in parse_qsl(
                    scope["query_string"].decode("latin-1"), keep_blank_values=True
                )
            ]
            counts = Counter(names)
            repeated = [n for n, c in counts.items() if c > 1 and n not in self.repeatable]
            if repeated:
                detail = [
                    {
                        "loc": ["query", repeated[0]],
                        "msg": f"given {counts[repeated[0]]} times; give it once",
                        "type": "value_error",
                    }
                ]
                response = JSONResponse({"detail": detail}, status_code=422)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
