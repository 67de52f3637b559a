"""The three provider wire protocols: answers, SSE streams and error bodies.

Token semantics of :class:`Reply` follow LangChain's ``usage_metadata``: ``input_tokens``
counts the whole prompt (cached tokens included) and ``output_tokens`` the whole output
(reasoning included). Each dialect converts to its provider's own fields:

- Anthropic: ``input_tokens`` excludes cache reads and cache writes; ``output_tokens``
  includes ``output_tokens_details.thinking_tokens`` (sent only when non-zero, as older
  models omit it). ``message_delta`` carries the cumulative usage, as the API does now.
- OpenAI: ``prompt_tokens`` includes ``prompt_tokens_details.cached_tokens``;
  ``completion_tokens`` includes ``completion_tokens_details.reasoning_tokens``.
- Gemini: ``promptTokenCount`` includes ``cachedContentTokenCount``;
  ``candidatesTokenCount`` excludes ``thoughtsTokenCount``.

Sources: the Anthropic Messages API reference and streaming guide, the OpenAI Chat
Completions reference (chat.completion and chat.completion.chunk objects), the Gemini API
reference (GenerateContentResponse, UsageMetadata) and the SDKs' error classes.
"""

import itertools
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

_ids = itertools.count(1)


def _id(prefix: str) -> str:
    return f"{prefix}{next(_ids):024d}"


@dataclass(frozen=True)
class Reply:
    """A scripted successful answer.

    Attributes:
        text: Answer text (may be empty when there is a tool call).
        tool_name: Name of the tool to call, or None for a text answer.
        tool_args: Arguments of the tool call.
        input_tokens: Whole prompt, cached tokens included.
        output_tokens: Whole output, reasoning included.
        cached_tokens: Prompt tokens read from the provider's cache.
        cache_write_tokens: Prompt tokens written to the cache (Anthropic only).
        reasoning_tokens: Output tokens spent reasoning (thinking).
        model: Model name the provider reports; default: the requested name with a
            date suffix (Anthropic, OpenAI) or as requested (Gemini).
    """

    text: str = ""
    tool_name: str | None = None
    tool_args: dict[str, Any] = field(default_factory=dict)
    input_tokens: int = 12
    output_tokens: int = 7
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    model: str | None = None


def _pieces(text: str, count: int = 3) -> list[str]:
    """``text`` cut into up to ``count`` non-empty parts that join back to it."""
    size = max(1, -(-len(text) // count))
    return [text[i : i + size] for i in range(0, len(text), size)]


class Dialect:
    """One provider's protocol; subclasses fill in the provider-specific shapes."""

    name: ClassVar[str]
    base_path: ClassVar[str]  # the base URL's path, given to the SDK
    path: ClassVar[re.Pattern[str]]  # the request paths served
    error_types: ClassVar[dict[int, str]]

    def matches(self, path: str) -> bool:
        """Whether this dialect serves ``path``."""
        return self.path.fullmatch(path) is not None

    def is_stream(self, path: str, body: Any) -> bool:
        """Whether the request asks for a streamed answer."""
        return isinstance(body, dict) and body.get("stream") is True

    def requested_model(self, path: str, body: Any) -> str:
        """The model the request names."""
        return str(body.get("model")) if isinstance(body, dict) else "?"

    def reported_model(self, reply: Reply, requested: str) -> str:
        """The model the answer reports."""
        return reply.model or f"{requested}-20250101"

    def answer(self, reply: Reply, model: str) -> dict[str, Any]:
        """The JSON body of a non-streamed answer."""
        raise NotImplementedError

    def events(self, reply: Reply, model: str, request: dict[str, Any]) -> list[bytes]:
        """The SSE events of a streamed answer, each one framed."""
        raise NotImplementedError

    def error_body(self, status: int, message: str, retry_after: float | None) -> dict[str, Any]:
        """The provider's JSON error body for an HTTP ``status``."""
        raise NotImplementedError

    def retry_headers(self, retry_after: float) -> dict[str, str]:
        """Headers telling a client when to retry (Gemini says it in the body instead)."""
        return {"retry-after": f"{retry_after:g}"}

    def malformed_event(self) -> bytes:
        """An SSE event whose ``data:`` line is not valid JSON."""
        return b'data: {"choices": [{"delta": {"content": "unterminated\n\n'

    @staticmethod
    def sse(data: dict[str, Any] | str, event: str | None = None) -> bytes:
        """One SSE event: an optional ``event:`` line, one ``data:`` line, a blank line."""
        payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
        head = f"event: {event}\n" if event else ""
        return f"{head}data: {payload}\n\n".encode()


class Anthropic(Dialect):
    """Anthropic Messages API (``POST /v1/messages``)."""

    name = "anthropic"
    base_path = "/anthropic"
    path = re.compile(r"/anthropic/v1/messages")
    error_types = {
        400: "invalid_request_error",
        401: "authentication_error",
        429: "rate_limit_error",
        500: "api_error",
        503: "api_error",
        529: "overloaded_error",
    }

    def _usage(self, reply: Reply) -> dict[str, Any]:
        uncached = reply.input_tokens - reply.cached_tokens - reply.cache_write_tokens
        usage: dict[str, Any] = {
            "input_tokens": uncached,
            "output_tokens": reply.output_tokens,
            "cache_read_input_tokens": reply.cached_tokens,
            "cache_creation_input_tokens": reply.cache_write_tokens,
        }
        if reply.reasoning_tokens:
            usage["output_tokens_details"] = {"thinking_tokens": reply.reasoning_tokens}
        return usage

    def _blocks(self, reply: Reply) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = [{"type": "text", "text": reply.text}] if reply.text else []
        if reply.tool_name:
            tool = {"type": "tool_use", "id": _id("toolu_"), "name": reply.tool_name}
            blocks.append(tool | {"input": reply.tool_args})
        return blocks

    def _message(
        self, reply: Reply, model: str, content: list[Any], usage: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "id": _id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": self.reported_model(reply, model),
            "content": content,
            "stop_reason": "tool_use" if reply.tool_name else "end_turn",
            "stop_sequence": None,
            "usage": usage,
        }

    def answer(self, reply: Reply, model: str) -> dict[str, Any]:
        return self._message(reply, model, self._blocks(reply), self._usage(reply))

    def events(self, reply: Reply, model: str, request: dict[str, Any]) -> list[bytes]:
        usage = self._usage(reply)
        before_output = {k: v for k, v in usage.items() if k != "output_tokens_details"}
        message = self._message(reply, model, [], before_output | {"output_tokens": 1})
        stop = {"stop_reason": message["stop_reason"], "stop_sequence": None}
        events: list[dict[str, Any]] = [
            {"type": "message_start", "message": message | {"stop_reason": None}}
        ]
        for index, block in enumerate(self._blocks(reply)):
            events += self._block_events(index, block)
        events += [{"type": "message_delta", "delta": stop, "usage": usage}]
        events += [{"type": "message_stop"}]
        return [self.sse(event, event=event["type"]) for event in events]

    def _block_events(self, index: int, block: dict[str, Any]) -> list[dict[str, Any]]:
        """The start, deltas and stop events of one content block."""
        if block["type"] == "text":
            empty = block | {"text": ""}
            deltas = [{"type": "text_delta", "text": p} for p in _pieces(block["text"])]
        else:
            empty = block | {"input": {}}
            arguments = _pieces(json.dumps(block["input"]))
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in arguments]
        return [
            {"type": "content_block_start", "index": index, "content_block": empty},
            *({"type": "content_block_delta", "index": index, "delta": d} for d in deltas),
            {"type": "content_block_stop", "index": index},
        ]

    def error_body(self, status: int, message: str, retry_after: float | None) -> dict[str, Any]:
        kind = self.error_types.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message}}

    def malformed_event(self) -> bytes:
        return b'event: content_block_delta\ndata: {"type": "content_block_delta", "ind\n\n'


class OpenAI(Dialect):
    """OpenAI Chat Completions (``POST /v1/chat/completions``)."""

    name = "openai"
    base_path = "/openai/v1"
    path = re.compile(r"/openai/v1/chat/completions")
    error_types = {
        400: "invalid_request_error",
        401: "invalid_request_error",
        429: "requests",
        500: "server_error",
        503: "server_error",
    }

    def reported_model(self, reply: Reply, requested: str) -> str:
        return reply.model or f"{requested}-2025-01-01"

    def _usage(self, reply: Reply) -> dict[str, Any]:
        return {
            "prompt_tokens": reply.input_tokens,
            "completion_tokens": reply.output_tokens,
            "total_tokens": reply.input_tokens + reply.output_tokens,
            "prompt_tokens_details": {"cached_tokens": reply.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": reply.reasoning_tokens,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def _envelope(self, reply: Reply, model: str, kind: str, choices: list[Any]) -> dict[str, Any]:
        return {
            "id": _id("chatcmpl-"),
            "object": kind,
            "created": int(time.time()),
            "model": self.reported_model(reply, model),
            "system_fingerprint": "fp_fake",
            "choices": choices,
        }

    def _tool_call(self, reply: Reply, arguments: str) -> dict[str, Any]:
        function = {"name": reply.tool_name, "arguments": arguments}
        return {"id": _id("call_"), "type": "function", "function": function}

    def answer(self, reply: Reply, model: str) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": reply.text or None,
            "refusal": None,
        }
        if reply.tool_name:
            message["tool_calls"] = [self._tool_call(reply, json.dumps(reply.tool_args))]
        finish = "tool_calls" if reply.tool_name else "stop"
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
        body = self._envelope(reply, model, "chat.completion", [choice])
        return body | {"usage": self._usage(reply)}

    def events(self, reply: Reply, model: str, request: dict[str, Any]) -> list[bytes]:
        include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        envelope = self._envelope(reply, model, "chat.completion.chunk", [])
        envelope |= {"usage": None} if include_usage else {}
        deltas: list[dict[str, Any]] = [{"role": "assistant", "content": "", "refusal": None}]
        deltas += [{"content": piece} for piece in _pieces(reply.text)]
        if reply.tool_name:
            arguments = _pieces(json.dumps(reply.tool_args))
            first = self._tool_call(reply, "") | {"index": 0}
            deltas.append({"tool_calls": [first]})
            deltas += [
                {"tool_calls": [{"index": 0, "function": {"arguments": a}}]} for a in arguments
            ]
        finish = "tool_calls" if reply.tool_name else "stop"
        chunks: list[dict[str, Any]] = [
            {"index": 0, "delta": d, "logprobs": None, "finish_reason": None} for d in deltas
        ]
        chunks.append({"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish})
        out = [self.sse(envelope | {"choices": [c]}) for c in chunks]
        if include_usage:
            out.append(self.sse(envelope | {"usage": self._usage(reply)}))
        return [*out, self.sse("[DONE]")]

    def error_body(self, status: int, message: str, retry_after: float | None) -> dict[str, Any]:
        code = "rate_limit_exceeded" if status == 429 else None
        kind = self.error_types.get(status, "server_error")
        return {"error": {"message": message, "type": kind, "param": None, "code": code}}


class Gemini(Dialect):
    """Gemini API ``models/{model}:generateContent`` and ``:streamGenerateContent``.

    Served under any API version the SDK picks: google-genai 2.x calls ``v1beta``, 3.x ``v1``.
    """

    name = "google"
    base_path = "/google"
    path = re.compile(
        r"/google/v1(?:alpha|beta)?/models/[^/:]+:(generateContent|streamGenerateContent)"
    )
    error_types = {
        400: "INVALID_ARGUMENT",
        403: "PERMISSION_DENIED",
        429: "RESOURCE_EXHAUSTED",
        500: "INTERNAL",
        503: "UNAVAILABLE",
        504: "DEADLINE_EXCEEDED",
    }

    def is_stream(self, path: str, body: Any) -> bool:
        return path.endswith(":streamGenerateContent")

    def requested_model(self, path: str, body: Any) -> str:
        return path.rsplit("/", 1)[-1].split(":", 1)[0]

    def reported_model(self, reply: Reply, requested: str) -> str:
        return reply.model or requested

    def _usage(self, reply: Reply) -> dict[str, int]:
        return {
            "promptTokenCount": reply.input_tokens,
            "candidatesTokenCount": reply.output_tokens - reply.reasoning_tokens,
            "totalTokenCount": reply.input_tokens + reply.output_tokens,
            "cachedContentTokenCount": reply.cached_tokens,
            "thoughtsTokenCount": reply.reasoning_tokens,
        }

    def _response(self, reply: Reply, model: str, parts: list[Any], last: bool) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
        if last:
            candidate["finishReason"] = "STOP"
        return {
            "candidates": [candidate],
            "usageMetadata": self._usage(reply),
            "modelVersion": self.reported_model(reply, model),
            "responseId": _id("resp"),
        }

    def _function_call(self, reply: Reply) -> dict[str, Any]:
        return {"functionCall": {"name": reply.tool_name, "args": reply.tool_args}}

    def _parts(self, reply: Reply) -> list[dict[str, Any]]:
        parts: list[dict[str, Any]] = [{"text": reply.text}] if reply.text else []
        return parts + [self._function_call(reply)] if reply.tool_name else parts

    def answer(self, reply: Reply, model: str) -> dict[str, Any]:
        return self._response(reply, model, self._parts(reply), last=True)

    def events(self, reply: Reply, model: str, request: dict[str, Any]) -> list[bytes]:
        parts: list[list[dict[str, Any]]] = [[{"text": p}] for p in _pieces(reply.text)]
        if reply.tool_name:
            parts.append([self._function_call(reply)])
        parts = parts or [[{"text": ""}]]
        responses = [
            self._response(reply, model, p, last=i == len(parts) - 1) for i, p in enumerate(parts)
        ]
        return [self.sse(r).replace(b"\n", b"\r\n") for r in responses]

    def error_body(self, status: int, message: str, retry_after: float | None) -> dict[str, Any]:
        error: dict[str, Any] = {
            "code": status,
            "message": message,
            "status": self.error_types.get(status, "UNKNOWN"),
        }
        if retry_after is not None:
            retry = {
                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                "retryDelay": f"{retry_after:g}s",
            }
            error["details"] = [retry]
        return {"error": error}

    def retry_headers(self, retry_after: float) -> dict[str, str]:
        return {}  # the delay is in the body: error.details[] RetryInfo.retryDelay

    def malformed_event(self) -> bytes:
        return b'data: {"candidates": [{"content": {"parts": [{"text": "unterminated\r\n\r\n'


DIALECTS: dict[str, Dialect] = {d.name: d for d in (Anthropic(), OpenAI(), Gemini())}
