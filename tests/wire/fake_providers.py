"""A loopback HTTP/1.1 server speaking the Anthropic, OpenAI and Gemini wire protocols.

The real SDKs (``anthropic``, ``openai``, ``google-genai``, through their LangChain
integrations) talk to it as to the real services. One server routes by path prefix:
``/anthropic`` (Messages API), ``/openai/v1`` (Chat Completions), ``/google`` (Gemini
``v1`` or ``v1beta`` generateContent). Each request pops the next item of its provider's script: a
:class:`Reply` (rendered as JSON or as the provider's SSE stream, as the request asks) or a
:class:`Fault`. A request with nothing scripted gets a 500 and is recorded in ``errors``;
the ``fake_providers`` fixture fails the test when any error or unused item is left.

The server runs its own event loop in a daemon thread, so sync and async clients of the
test process can use it alike. Streams use chunked transfer encoding and connections are
kept alive, as the SDKs' connection pools expect.

The module imports neither pytest nor any other test-only package: ``bench/provider_chain.py``
runs it after ``make install``. The pytest fixtures live in ``tests/integration/llm/conftest.py``;
in a test::

    fake_providers.script("anthropic", Fault.http(529))
    fake_providers.script("openai", Reply(text="hi", input_tokens=10, output_tokens=2))
    settings = fake_providers.settings(tmp_path, providers=["anthropic", "openai"])
    ...
    assert len(fake_providers.requests("anthropic")) == 1
"""

import asyncio
import enum
import json
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from pydantic import SecretStr

from aimesh.config import Settings
from tests.wire.dialects import DIALECTS, Dialect, Reply

__all__ = [
    "PARTIAL",
    "Fault",
    "FakeProviders",
    "Recorded",
    "Reply",
]


PARTIAL = Reply(text="This answer is interrupted before it ends.", input_tokens=9, output_tokens=8)
_MALFORMED_JSON_BODY = b'{"id": "truncated", "content": [{"type": "te'


class FaultKind(enum.Enum):
    """What a scripted fault does to one request."""

    STATUS = "status"  # an HTTP error with the provider's error body
    HANG_BEFORE_HEADERS = "hang_before_headers"  # sleep, then close: nothing was sent
    HANG_MID_STREAM = "hang_mid_stream"  # headers and half the body, sleep, then close
    RESET = "reset"  # TCP RST (SO_LINGER 0) before any response byte
    MALFORMED_JSON = "malformed_json"  # 200 with a body that is not JSON
    MALFORMED_SSE = "malformed_sse"  # a stream with one ``data:`` line of invalid JSON
    CUT_STREAM = "cut_stream"  # headers and half the body, then close


@dataclass(frozen=True)
class Fault:
    """A scripted failure; build one with the class methods.

    Attributes:
        kind: What happens.
        status: HTTP status for ``STATUS`` faults (429, 500, 503, 529...).
        retry_after: Seconds before a retry, sent the provider's way (``Retry-After``
            header; Gemini: a ``RetryInfo`` detail in the body), or None.
        seconds: How long a hang lasts before the server closes the connection.
        partial: The answer whose first half a hang, cut or malformed stream sends.
    """

    kind: FaultKind
    status: int = 500
    retry_after: float | None = None
    seconds: float = 0.0
    partial: Reply = PARTIAL

    @classmethod
    def http(cls, status: int, retry_after: float | None = None) -> "Fault":
        """An HTTP error answer, e.g. ``Fault.http(429, retry_after=2)``."""
        return cls(FaultKind.STATUS, status=status, retry_after=retry_after)

    @classmethod
    def hang_before_headers(cls, seconds: float) -> "Fault":
        """Read the request, send nothing for ``seconds``, then close the connection."""
        return cls(FaultKind.HANG_BEFORE_HEADERS, seconds=seconds)

    @classmethod
    def hang_mid_stream(cls, seconds: float) -> "Fault":
        """Send the headers and half the answer, stall ``seconds``, then close."""
        return cls(FaultKind.HANG_MID_STREAM, seconds=seconds)

    @classmethod
    def reset(cls) -> "Fault":
        """Reset the connection (RST) before any response byte."""
        return cls(FaultKind.RESET)

    @classmethod
    def malformed_json(cls) -> "Fault":
        """Answer 200 ``application/json`` with a truncated, unparsable body."""
        return cls(FaultKind.MALFORMED_JSON)

    @classmethod
    def malformed_sse(cls) -> "Fault":
        """Stream the answer with an invalid-JSON ``data:`` line in the middle."""
        return cls(FaultKind.MALFORMED_SSE)

    @classmethod
    def cut_stream(cls) -> "Fault":
        """Send the headers and half the answer, then close without the final event."""
        return cls(FaultKind.CUT_STREAM)


@dataclass(frozen=True)
class Recorded:
    """One request as the server received it.

    Attributes:
        provider: ``anthropic``, ``openai``, ``google``, or None for an unknown path.
        method: HTTP method.
        path: URL path without the query.
        query: Parsed query string (each value a list, as ``urllib.parse.parse_qs``).
        headers: Header names lower-cased.
        body: Parsed JSON body (None when empty).
        at: ``time.monotonic()`` when the request was read (seconds).
        stream: Whether the request asked for a streamed answer.
    """

    provider: str | None
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    at: float
    stream: bool = False


@dataclass
class _Answer:
    """An HTTP answer cut into pieces, so that faults can send only some of them."""

    status: int
    content_type: str
    pieces: list[bytes]
    chunked: bool
    headers: dict[str, str] = field(default_factory=dict)


class FakeProviders:
    """The fake server: scripts per provider, recorded requests, loopback URLs.

    Use it through the ``fake_providers`` fixture; ``start()``/``stop()`` are for other
    harnesses (benchmarks).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scripts: dict[str, deque[Reply | Fault]] = {name: deque() for name in DIALECTS}
        self._requests: list[Recorded] = []
        self.errors: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="fake-providers", daemon=True
        )
        self._connections: set[asyncio.Task[Any]] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    # --- lifecycle -----------------------------------------------------------------
    def start(self) -> "FakeProviders":
        """Listen on 127.0.0.1 (a free port) from a background thread."""
        self._thread.start()
        start = asyncio.start_server(self._serve, "127.0.0.1", 0)
        self._server = asyncio.run_coroutine_threadsafe(start, self._loop).result(5)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        """Close the listener and every open connection, then end the thread."""
        assert self._server is not None
        self._loop.call_soon_threadsafe(self._server.close)
        self.disconnect()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def disconnect(self) -> None:
        """Close every open connection (kept-alive ones included); the listener stays."""

        async def close() -> None:
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)

    # --- test API ------------------------------------------------------------------
    def url(self, provider: str) -> str:
        """Base URL to give ``provider``'s SDK (each SDK appends its own API path)."""
        return f"http://127.0.0.1:{self.port}{DIALECTS[provider].base_path}"

    def script(self, provider: str, *items: Reply | Fault) -> None:
        """Queue answers for ``provider``'s next requests, in order."""
        if provider not in DIALECTS:
            raise ValueError(f"provider must be one of {sorted(DIALECTS)}, got {provider!r}")
        for item in items:
            if not isinstance(item, Reply | Fault):
                raise TypeError(f"script items are Reply or Fault, got {item!r}")
        with self._lock:
            self._scripts[provider].extend(items)

    def requests(self, provider: str | None = None) -> list[Recorded]:
        """Requests received so far (all, or ``provider``'s), oldest first."""
        with self._lock:
            return [r for r in self._requests if provider is None or r.provider == provider]

    def leftover(self) -> dict[str, int]:
        """Script items not consumed yet, per provider (providers with none omitted)."""
        with self._lock:
            return {name: len(items) for name, items in self._scripts.items() if items}

    def reset(self) -> None:
        """Forget scripts, requests and errors (between tests)."""
        with self._lock:
            for items in self._scripts.values():
                items.clear()
            self._requests.clear()
            self.errors.clear()

    def settings(self, home: Path, **overrides: Any) -> Settings:
        """Settings pointing the three remote providers at this server.

        Args:
            home: Data directory for the run (a test's ``tmp_path``).
            **overrides: Any other ``Settings`` field (e.g. ``providers=["openai"]``).

        Returns:
            Settings with fake keys, this server's base URLs, the chain order
            anthropic, openai, google, local, and short timeouts (connect 1 s, first
            byte 0.5 s, whole attempt 5 s) unless overridden. With ``local`` in the
            chain, ``build_providers`` resolves the GGUF under ``home`` (assembling
            1.1 GB there on first use): pass ``gguf_path``, or ``providers`` without it.
        """
        values: dict[str, Any] = {
            "home": home,
            "providers": ["anthropic", "openai", "google", "local"],
            "connect_timeout_s": 1.0,
            "first_byte_timeout_s": 0.5,
            "request_timeout_s": 5.0,
        }
        for name in DIALECTS:
            values[f"{name}_api_key"] = SecretStr(f"fake-{name}-key")
            values[f"{name}_base_url"] = self.url(name)
        return Settings(**(values | overrides))

    # --- HTTP ------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while (request := await _read_request(reader)) is not None:
                if not await self._answer(request, writer):
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client went away, or the server stops: nothing more to answer
        except Exception as exc:  # a bug of the fake itself: fail the test, not just the call
            with self._lock:
                self.errors.append(f"fake providers crashed: {exc!r}")
        finally:
            self._connections.discard(task)
            writer.close()

    async def _answer(self, raw: "_RawRequest", writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection must not be reused."""
        dialect = next((d for d in DIALECTS.values() if d.matches(raw.path)), None)
        name = dialect.name if dialect else None
        stream = dialect is not None and dialect.is_stream(raw.path, raw.body)
        request = Recorded(
            name, raw.method, raw.path, raw.query, raw.headers, raw.body, time.monotonic(), stream
        )
        with self._lock:
            self._requests.append(request)
            script = self._scripts[name] if name else None
            item = script.popleft() if script else None
        if dialect is None:
            return await self._refuse(writer, None, 404, f"no fake provider serves {raw.path}")
        if item is None:
            return await self._refuse(
                writer, dialect, 500, f"fake {dialect.name}: unscripted request to {raw.path}"
            )
        model = dialect.requested_model(raw.path, raw.body)
        if isinstance(item, Reply):
            await _send(writer, _render(dialect, item, model, stream, raw.body))
            return True
        return await self._fault(writer, dialect, item, model, stream, raw.body)

    async def _refuse(
        self, writer: asyncio.StreamWriter, dialect: Dialect | None, status: int, message: str
    ) -> bool:
        with self._lock:
            self.errors.append(message)
        body = dialect.error_body(status, message, None) if dialect else {"error": message}
        await _send(writer, _json_answer(status, body))
        return True

    async def _fault(
        self,
        writer: asyncio.StreamWriter,
        dialect: Dialect,
        fault: Fault,
        model: str,
        stream: bool,
        body: Any,
    ) -> bool:
        kind = fault.kind
        if kind is FaultKind.STATUS:
            message = f"fake {dialect.name}: scripted HTTP {fault.status}"
            answer = _json_answer(
                fault.status, dialect.error_body(fault.status, message, fault.retry_after)
            )
            if fault.retry_after is not None:
                answer.headers |= dialect.retry_headers(fault.retry_after)
            await _send(writer, answer)
            return True
        if kind is FaultKind.HANG_BEFORE_HEADERS:
            await asyncio.sleep(fault.seconds)
            return False
        if kind is FaultKind.RESET:
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return False
        if kind is FaultKind.MALFORMED_JSON:
            await _send(writer, _Answer(200, "application/json", [_MALFORMED_JSON_BODY], False))
            return True
        if kind is FaultKind.MALFORMED_SSE and not stream:
            return await self._refuse(
                writer, dialect, 500, "malformed_sse scripted for a non-streaming request"
            )
        answer = _render(dialect, fault.partial, model, stream, body)
        half = max(1, len(answer.pieces) // 2)
        if kind is FaultKind.MALFORMED_SSE:
            answer.pieces.insert(half, dialect.malformed_event())
            await _send(writer, answer)
            return True
        await _send(writer, answer, upto=half)
        if kind is FaultKind.HANG_MID_STREAM:
            await asyncio.sleep(fault.seconds)
        return False


@dataclass(frozen=True)
class _RawRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


async def _read_request(reader: asyncio.StreamReader) -> _RawRequest | None:
    """Read one HTTP/1.1 request; None when the client closed the connection."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    request_line, *lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
    method, target, _version = request_line.split(" ", 2)
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        raw = b"".join([chunk async for chunk in _chunks(reader)])
    else:
        raw = await reader.readexactly(int(headers.get("content-length", "0")))
    path, _, query = target.partition("?")
    return _RawRequest(method, path, parse_qs(query), headers, _json_or_text(raw))


def _json_or_text(raw: bytes) -> Any:
    """A request body: parsed JSON, the text when it is not JSON, None when empty."""
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode("utf-8", "replace")


async def _chunks(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    """The chunks of a chunked request body (trailers ignored)."""
    while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
        yield await reader.readexactly(size)
        await reader.readexactly(2)
    await reader.readuntil(b"\r\n")


def _json_answer(status: int, body: Any) -> _Answer:
    data = json.dumps(body).encode()
    return _Answer(
        status, "application/json", [data[: len(data) // 2], data[len(data) // 2 :]], False
    )


def _render(dialect: Dialect, reply: Reply, model: str, stream: bool, body: Any) -> _Answer:
    """A reply as the provider sends it: one JSON body, or an SSE stream."""
    if not stream:
        return _json_answer(200, dialect.answer(reply, model))
    return _Answer(200, "text/event-stream", dialect.events(reply, model, body or {}), True)


async def _send(writer: asyncio.StreamWriter, answer: _Answer, upto: int | None = None) -> None:
    """Write ``answer``; with ``upto``, only its first pieces and no end of body."""
    headers = {"content-type": answer.content_type} | answer.headers
    if answer.chunked:
        headers |= {"transfer-encoding": "chunked", "cache-control": "no-cache"}
    else:
        headers["content-length"] = str(sum(len(p) for p in answer.pieces))
    head = f"HTTP/1.1 {answer.status} {_reason(answer.status)}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    writer.write(head.encode("latin-1"))
    for piece in answer.pieces[:upto]:
        writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if answer.chunked else piece)
        await writer.drain()
    if answer.chunked and upto is None:
        writer.write(b"0\r\n\r\n")
    await writer.drain()


def _reason(status: int) -> str:
    """The reason phrase of an HTTP status (529 is Anthropic's own)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Overloaded" if status == 529 else "Error"
