"""The provider chain: one chat model that tries each link (``provider/model``) in order.

A provider failure (see :mod:`aimesh.llm.classify`) moves on to the next link; any other
error propagates. A link is retried only when the provider sent ``Retry-After`` and the
wait fits what is left of the call's wait budget (tenacity); a link whose circuit breaker
is open is skipped (never the last one). Remote calls are timed out per attempt: the first
byte (for a non-streamed call: the whole answer) and every next chunk within
``first_byte_timeout_s``, the whole attempt within ``request_timeout_s``.

Every attempt dispatches a ``model_attempt`` custom event carrying its
:class:`~aimesh.llm.attempt.ModelAttempt` (see :func:`_Call.record`); moving on dispatches
``model_fallback``. A stream that fails after
tokens were sent restarts the turn on the next link, its event carrying
``discard_partial: true``; ``ainvoke`` then returns only the new link's answer. A stream
that stalls, breaks or ends without a finish reason is a failure, never a clean answer.

The chain is asynchronous: ``ainvoke``/``astream`` (LangGraph and the service call it so).
Call ``astream`` inside a run (a LangGraph node, a Runnable), or ``ainvoke`` a streaming
chain: LangChain gives ``_astream`` no run manager, so a bare ``astream`` has no run to
carry the chain's events (its tokens and answer are unaffected).
Provider calls run without the chain's callbacks, so callback handlers (LangGraph message
streaming included) see each token once, from the chain.
"""

import asyncio
import json
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManager,
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
    adispatch_custom_event,
)
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.chat_models import generate_from_stream
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata, add_usage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableBinding, RunnableConfig
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import PrivateAttr, SkipValidation
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from aimesh.config import Settings, get_settings
from aimesh.errors import (
    AllProvidersFailedError,
    InvalidInputError,
    NoProviderError,
    ProviderError,
)
from aimesh.events import MODEL_ATTEMPT, EventName
from aimesh.llm.attempt import ModelAttempt
from aimesh.llm.breaker import Breaker, LocalBreaker
from aimesh.llm.classify import is_provider_error, retry_after
from aimesh.llm.cost import price_source, price_usd
from aimesh.llm.providers import Provider, build_providers
from aimesh.llm.route import current_route

logger = logging.getLogger(__name__)

TRIES_PER_LINK = 3  # the first try and at most two Retry-After retries
_CHAIN_KEYS = frozenset({"provider", "model_name", "cost_usd", "price_source", "attempts"})
_FINISH_KEYS = ("finish_reason", "stop_reason")
_MAX_ERROR_CHARS = 300


class ProviderChain(BaseChatModel):
    """Chat model falling back across links (Claude -> GPT -> Gemini -> local by default).

    Construction does no I/O: without ``providers`` the chain builds them from
    :func:`aimesh.config.get_settings` on its first call.

    Attributes:
        providers: Explicit links, tried in order (tests, custom chains).
        settings: Settings the links, timeouts and retry budget come from; default:
            :func:`aimesh.config.get_settings`.
        streaming: Stream every call, so callbacks get each token (the API's ``token``
            events) even when the caller invokes rather than streams.
        breaker: Circuit breakers shared by the chains of every process (Redis); default: a
            :class:`~aimesh.llm.breaker.LocalBreaker` of this chain.
    """

    providers: SkipValidation[list[Provider] | None] = None
    settings: SkipValidation[Settings | None] = None
    streaming: bool = False
    breaker: SkipValidation[Breaker | None] = None

    _resolved: list[Provider] | None = PrivateAttr(default=None)
    _resolve_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _local_breaker: LocalBreaker | None = PrivateAttr(default=None)

    @property
    def _llm_type(self) -> str:
        return "provider-chain"

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | Any],
        *,
        tool_choice: str | dict[str, Any] | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools; each attempt binds them on its provider's own chat model.

        Args:
            tools: Tools in any form the providers' ``bind_tools`` accept.
            tool_choice: Passed to each provider's ``bind_tools``.
            **kwargs: Passed to each provider's ``bind_tools``.

        Returns:
            A runnable calling the chain with the tools.
        """
        return self.bind(tools=list(tools), tool_choice=tool_choice, **kwargs)

    def resolved_providers(self) -> list[Provider]:
        """Every link, built from the settings on first use (thread-safe).

        Raises:
            NoProviderError: No provider is usable.
        """
        with self._resolve_lock:
            if self._resolved is not None:
                return self._resolved
            providers = self.providers
            if providers is None:
                providers = build_providers(self._settings)
            if not providers:
                raise NoProviderError("ProviderChain was given an empty provider list")
            self._resolved = providers
            return providers

    @property
    def _settings(self) -> Settings:
        return self.settings or get_settings()

    def _breaker(self) -> Breaker:
        if self.breaker is not None:
            return self.breaker
        if self._local_breaker is None:
            settings = self._settings
            self._local_breaker = LocalBreaker(
                settings.breaker_failures, settings.breaker_cooldown_s
            )
        return self._local_breaker

    async def _call(
        self,
        messages: list[BaseMessage],
        kwargs: dict[str, Any],
        run_manager: AsyncCallbackManagerForLLMRun | None,
    ) -> "_Call":
        _check_size(messages, kwargs.get("tools"), self._settings.max_input_tokens)
        providers = self._resolved
        if providers is None:
            providers = await asyncio.to_thread(self.resolved_providers)
        links = _route(providers, kwargs.pop("prefer", None))
        return _Call(links, self._settings, self._breaker(), run_manager)

    def _should_stream(self, *, async_api: bool, **kwargs: Any) -> bool:
        # ainvoke streams inside _agenerate, which keeps only the answering link's chunks.
        return kwargs.get("stream") is True and super()._should_stream(
            async_api=async_api, **kwargs
        )

    def _streams(
        self, run_manager: AsyncCallbackManagerForLLMRun | None, kwargs: dict[str, Any]
    ) -> bool:
        """Whether ainvoke should stream: ``streaming`` set, or a streaming handler attached."""
        return super()._should_stream(async_api=True, run_manager=run_manager, **kwargs)

    def _should_use_protocol_streaming(self, *, async_api: bool, **kwargs: Any) -> bool:
        return False  # the v2 event path would bypass _agenerate's restart handling

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        raise NotImplementedError("ProviderChain is asynchronous: call ainvoke or astream")

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self._streams(run_manager, kwargs):
            kept: list[ChatGenerationChunk] = []
            async for chunk, restarted in self._chunks(messages, stop, run_manager, kwargs):
                if restarted:  # a failed link's partial answer is dropped
                    kept.clear()
                kept.append(chunk)
            return generate_from_stream(iter(kept))
        call = await self._call(messages, kwargs, run_manager)
        async for link in call.links():

            def invoke(link: Provider = link) -> Awaitable[BaseMessage]:
                model, options = _provider_call(link, kwargs)
                answer = model.ainvoke(messages, _quiet(), stop=stop, **options)
                return call.timed(link, answer)

            try:
                message = _checked(await call.retried(link, invoke, streamed=False))
            except Exception as exc:
                await call.failed(link, exc)
                continue
            return _result(message, await call.succeeded(link, message, streamed=False))
        raise AllProvidersFailedError(call.records)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        async for chunk, _ in self._chunks(messages, stop, run_manager, kwargs):
            yield chunk

    async def _chunks(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        run_manager: AsyncCallbackManagerForLLMRun | None,
        kwargs: dict[str, Any],
    ) -> AsyncIterator[tuple[ChatGenerationChunk, bool]]:
        """Stream through the links; each chunk comes with "a new link restarted the turn"."""
        call, sent = await self._call(messages, kwargs, run_manager), False
        async for link in call.links():

            async def start(link: Provider = link) -> "_Stream":
                model, options = _provider_call(link, kwargs)
                stream = _Stream(
                    model.astream(messages, _quiet(), stop=stop, **options), call, link
                )
                await stream.head()
                return stream

            restart, relay = sent, _Relay()
            try:
                stream = await call.retried(link, start, streamed=True)
                async for message_chunk in stream:
                    chunk = relay.relay(message_chunk)
                    if run_manager:
                        await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                    yield chunk, restart
                    sent, restart = True, False
                relay.check_finished()
            except Exception as exc:
                await call.failed(link, exc, relay.summary(), discard_partial=relay.sent)
                continue
            metadata = await call.succeeded(link, relay.summary(), streamed=True)
            yield relay.last(metadata), restart
            return
        raise AllProvidersFailedError(call.records)


class _Call:
    """One chain call: its links, timeouts, retry budget, breaker, records and events."""

    def __init__(
        self,
        links: list[Provider],
        settings: Settings,
        breaker: Breaker,
        run_manager: AsyncCallbackManagerForLLMRun | None,
    ) -> None:
        self.settings, self.breaker, self.run_manager = settings, breaker, run_manager
        self.records: list[ModelAttempt] = []
        self._links = links
        self._wait_left = settings.retry_wait_budget_s
        self._fallback: dict[str, Any] | None = None
        self._started = 0.0
        self._at = datetime.now(UTC)

    async def links(self) -> AsyncIterator[Provider]:
        """The links to try, in order; open breakers skipped (never the last link)."""
        for index, link in enumerate(self._links):
            if index + 1 < len(self._links) and not await self.breaker.allow(link.key):
                logger.info("provider %s skipped: circuit breaker open", link.key)
                continue
            if self._fallback is not None:
                event = {**self._fallback, "to_provider": link.name, "to_model": link.model}
                logger.warning("falling back to %s: %s", link.key, event["error"])
                await self._dispatch(EventName.MODEL_FALLBACK, event)
                self._fallback = None
            yield link

    async def retried(
        self, link: Provider, attempt: Callable[[], Awaitable[Any]], *, streamed: bool
    ) -> Any:
        """Run ``attempt``, again after a ``Retry-After`` that fits the wait budget.

        Every failed try is recorded (``streamed``: whether it asked for a stream); the last
        error propagates.
        """
        retrying = AsyncRetrying(
            stop=stop_after_attempt(TRIES_PER_LINK),
            retry=retry_if_exception(self._worth_waiting),
            wait=self._wait,
            reraise=True,
        )
        async for tried in retrying:
            with tried:
                self._started, self._at = time.monotonic(), datetime.now(UTC)
                try:
                    return await attempt()
                except Exception as exc:
                    last = tried.retry_state.attempt_number == TRIES_PER_LINK
                    if not last and self._worth_waiting(exc):  # retried: recorded here
                        await self.record(link, exc, None, streamed=streamed)
                    raise
        raise AssertionError("unreachable: tenacity re-raises the last error")

    def timed(self, link: Provider, answer: Awaitable[BaseMessage]) -> Awaitable[BaseMessage]:
        """A remote link's non-streamed ``answer`` within its first-byte timeout.

        The whole answer is its first byte; capped by ``request_timeout_s``. The local model's
        answer is left as is.
        """
        if not link.remote:
            return answer
        settings = self.settings
        return asyncio.wait_for(
            answer, min(settings.first_byte_timeout_s, settings.request_timeout_s)
        )

    def chunk_timeout(self, link: Provider) -> float | None:
        """Seconds to wait for the next chunk of ``link``'s stream (None: the local model)."""
        if not link.remote:
            return None
        left = self.settings.request_timeout_s - (time.monotonic() - self._started)
        return max(0.0, min(self.settings.first_byte_timeout_s, left))

    async def failed(
        self,
        link: Provider,
        exc: Exception,
        partial: AIMessage | None = None,
        *,
        discard_partial: bool = False,
    ) -> None:
        """Record a failed attempt and prepare the fallback event; re-raise a non-provider error."""
        if not is_provider_error(exc):
            raise exc
        await self.record(link, exc, partial, streamed=partial is not None)
        await self.breaker.failure(link.key)
        self._fallback = {
            "from_provider": link.name,
            "from_model": link.model,
            "error": _describe(exc),
            "discard_partial": discard_partial,
        }

    async def succeeded(
        self, link: Provider, answer: AIMessage, *, streamed: bool
    ) -> dict[str, Any]:
        """Record the answering attempt; return the chain's ``response_metadata`` entries.

        Returns:
            ``provider``, ``model_name`` (as reported: dated variant), ``cost_usd`` (USD as
            a decimal string, or None: the metadata stays JSON-safe), ``price_source`` and
            ``attempts`` (every attempt of the call, :meth:`ModelAttempt.wire` form).
        """
        record = await self.record(link, None, answer, streamed=streamed)
        await self.breaker.success(link.key)
        return {
            "provider": link.name,
            "model_name": record.model_used or link.model,
            "cost_usd": None if record.cost_usd is None else str(record.cost_usd),
            "price_source": record.price_source,
            "attempts": [attempt.wire() for attempt in self.records],
        }

    async def record(
        self, link: Provider, exc: BaseException | None, answer: AIMessage | None, *, streamed: bool
    ) -> ModelAttempt:
        """Build the attempt's record, keep it and dispatch it as a ``model_attempt`` event.

        Returns:
            The attempt: tokens as reported (None = not reported), ``cost_usd`` from
            genai-prices (None = unknown), ``latency_s`` in seconds.
        """
        usage = answer.usage_metadata if answer is not None else None
        model_used = _model_name(answer) if answer is not None else None
        cost = price_usd(link.name, model_used or link.model, usage)
        attempt = ModelAttempt(
            id=uuid.uuid4().hex,
            at=self._at,
            provider=link.name,
            model_requested=link.model,
            model_used=model_used or (link.model if exc is None else None),
            status="error" if exc else "success",
            error=_describe(exc) if exc else None,
            streamed=streamed,
            **_tokens(usage),
            cost_usd=cost,
            price_source=price_source() if cost is not None else None,
            latency_s=round(time.monotonic() - self._started, 4),
        )
        self.records.append(attempt)
        await self._dispatch(MODEL_ATTEMPT, attempt)
        return attempt

    def _worth_waiting(self, exc: BaseException) -> bool:
        wait = retry_after(exc) if is_provider_error(exc) else None
        return wait is not None and wait <= self._wait_left

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        wait = (retry_after(exc) if exc else None) or 0.0
        self._wait_left -= wait
        return wait

    async def _dispatch(self, name: str, payload: ModelAttempt | dict[str, Any]) -> None:
        """Dispatch a custom event on the chain's run, else on the enclosing run."""
        if self.run_manager is None:
            with suppress(RuntimeError):  # raised when no run encloses the call: nobody listens
                await adispatch_custom_event(name, payload)
            return
        manager = AsyncCallbackManager(
            handlers=self.run_manager.handlers,
            parent_run_id=self.run_manager.run_id,
            tags=self.run_manager.tags,
            metadata=self.run_manager.metadata,
        )
        await manager.on_custom_event(name, payload, run_id=self.run_manager.run_id)


class _Stream:
    """A provider stream read with the chain's timeouts; :meth:`head` waits for content."""

    def __init__(self, stream: AsyncIterator[AIMessageChunk], call: _Call, link: Provider) -> None:
        self._iterator, self._call, self._link = aiter(stream), call, link
        self._head: list[AIMessageChunk] = []

    async def head(self) -> None:
        """Read up to the first chunk with text or tool calls.

        Raises:
            ProviderError: The stream ended without any content.
            TimeoutError: A chunk did not come in time.
        """
        while (first := await self._next()) is not None:
            self._head.append(first)
            if first.text or first.tool_call_chunks:
                return
        raise ProviderError("provider stream ended without any content")

    async def __aiter__(self) -> AsyncIterator[AIMessageChunk]:
        for chunk in self._head:
            yield chunk
        while (following := await self._next()) is not None:
            yield following

    async def _next(self) -> AIMessageChunk | None:
        """The next chunk, None at the end; TimeoutError when it does not come in time."""
        try:
            return await asyncio.wait_for(
                anext(self._iterator), self._call.chunk_timeout(self._link)
            )
        except StopAsyncIteration:
            return None


class _Relay:
    """Passes a provider's stream on; the chain's last chunk carries usage and metadata.

    Relayed chunks lose their id (the chain's run gives one id to all of them), their
    usage and the chain's metadata keys: those are summed or set once, on the last
    chunk, since merging chunks adds usage and concatenates strings.
    """

    def __init__(self) -> None:
        self.usage: UsageMetadata | None = None
        self.model_name: str | None = None
        self.list_content = False
        self.sent = False
        self.finished = False

    def relay(self, chunk: AIMessageChunk) -> ChatGenerationChunk:
        """Record the usage, model name and finish reason of ``chunk``; return its copy."""
        if chunk.usage_metadata:
            self.usage = add_usage(self.usage, chunk.usage_metadata)
        self.model_name = self.model_name or _model_name(chunk)
        self.list_content = isinstance(chunk.content, list)
        self.finished = self.finished or any(chunk.response_metadata.get(k) for k in _FINISH_KEYS)
        self.sent = True
        kept = {k: v for k, v in chunk.response_metadata.items() if k not in _CHAIN_KEYS}
        update = {"id": None, "usage_metadata": None, "response_metadata": kept}
        copy = chunk.model_copy(update={**update, "chunk_position": None})
        return ChatGenerationChunk(message=copy)

    def check_finished(self) -> None:
        """Raise ProviderError when the stream ended without a finish reason (cut)."""
        if not self.finished:
            raise ProviderError("provider stream ended without a finish reason (cut short)")

    def summary(self) -> AIMessage:
        """What the stream reported so far: usage and model name."""
        metadata = {"model_name": self.model_name} if self.model_name else {}
        return AIMessage(content="", usage_metadata=self.usage, response_metadata=metadata)

    def last(self, metadata: dict[str, Any]) -> ChatGenerationChunk:
        """The final chunk: total usage and the chain's ``response_metadata``."""
        message = AIMessageChunk(
            content=[] if self.list_content else "",
            usage_metadata=self.usage,
            response_metadata=metadata,
            chunk_position="last",
        )
        return ChatGenerationChunk(message=message)


def _route(providers: list[Provider], prefer: str | None) -> list[Provider]:
    """The links of this call: the run's route if set, else the default links.

    ``prefer`` (a provider name, model or ``provider/model``) moves matching links first.

    Raises:
        NoProviderError: The route names no configured link.
    """
    route = current_route()
    if route is None:
        links = [p for p in providers if p.default]
    else:
        by_key = {p.key: p for p in providers}
        links = [by_key[key] for key in route if key in by_key]
        if not links:
            raise NoProviderError(f"the run's route {list(route)} names no configured model")
    if prefer:
        links.sort(key=lambda p: prefer not in (p.name, p.model, p.key))
    return links


def _check_size(messages: list[BaseMessage], tools: list[Any] | None, limit: int) -> None:
    """Refuse a prompt that may exceed ``limit`` tokens (settings ``max_input_tokens``).

    The bound: UTF-8 bytes of the messages (content, tool calls) and tool schemas, plus 8
    per message; byte-level BPE tokenizers (GPT, Claude, Gemini, Qwen) never make more
    tokens than bytes, and chat formats add a few per message. Budgets reserve a run's
    worst case with this cap (:mod:`aimesh.billing.run_bound`), so it must hold.

    Raises:
        InvalidInputError: The prompt may be longer than ``limit`` tokens.
    """
    fields = {"content", "tool_calls", "tool_call_id", "name"}
    size = sum(len(m.model_dump_json(include=fields).encode()) + 8 for m in messages)
    size += sum(len(json.dumps(convert_to_openai_tool(t)).encode()) for t in tools or [])
    if size > limit:
        raise InvalidInputError(
            "messages",
            f"the prompt may need up to {size} tokens ({len(messages)} messages and tools)",
            f"at most max_input_tokens={limit} (AIMESH_MAX_INPUT_TOKENS)",
        )


def _provider_call(
    provider: Provider, kwargs: dict[str, Any]
) -> tuple[BaseChatModel, dict[str, Any]]:
    """The provider's chat model and the keyword arguments of this call.

    Tools are converted by the provider's own ``bind_tools``; its binding is unwrapped
    because a ``RunnableBinding`` would merge the enclosing run's callbacks back in.

    Raises:
        TypeError: ``bind_tools`` did not return a ``RunnableBinding``.
    """
    options = dict(kwargs)
    tools = options.pop("tools", None)
    tool_choice = options.pop("tool_choice", None)
    if not tools:
        return provider.chat_model, options
    binding = provider.chat_model.bind_tools(tools, tool_choice=tool_choice, **options)
    if not isinstance(binding, RunnableBinding) or not isinstance(binding.bound, BaseChatModel):
        raise TypeError(f"{provider.name}: bind_tools returned {type(binding).__name__}")
    return binding.bound, dict(binding.kwargs)


def _quiet() -> RunnableConfig:
    """Config for provider calls: no callbacks, so the chain's handlers fire once."""
    return RunnableConfig(callbacks=[])


def _checked(message: BaseMessage) -> AIMessage:
    """Raise ProviderError for an empty or malformed answer."""
    if not isinstance(message, AIMessage):
        raise ProviderError(f"provider returned a {type(message).__name__}, not an AIMessage")
    if message.invalid_tool_calls:
        raise ProviderError(f"provider returned malformed tool calls: {message.invalid_tool_calls}")
    if not (message.text or message.tool_calls):
        raise ProviderError("provider returned an empty answer")
    return message


def _tokens(usage: UsageMetadata | None) -> dict[str, int | None]:
    """The token fields of an attempt from LangChain usage (None = not reported)."""
    if usage is None:
        return dict.fromkeys(("input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens"))
    inputs = usage.get("input_token_details") or {}
    outputs = usage.get("output_token_details") or {}
    return {
        "input_tokens": usage["input_tokens"],
        "output_tokens": usage["output_tokens"],
        "cached_tokens": inputs.get("cache_read"),
        "reasoning_tokens": outputs.get("reasoning"),
    }


def _result(message: AIMessage, metadata: dict[str, Any]) -> ChatResult:
    answer = message.model_copy(
        update={"response_metadata": {**message.response_metadata, **metadata}}
    )
    return ChatResult(generations=[ChatGeneration(message=answer)])


def _model_name(message: BaseMessage) -> str | None:
    name = message.response_metadata.get("model_name")
    return name if isinstance(name, str) and name else None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:_MAX_ERROR_CHARS]
