"""The provider chain: one chat model that tries each configured provider in order.

A provider failure (see :mod:`aimesh.llm.classify`) moves on to the next provider and
dispatches a ``model_fallback`` custom event; any other error propagates. The answer
carries ``response_metadata`` with the provider, model, cost (USD string, or ``None`` when
unknown) and every attempt. Provider calls run without the chain's callbacks, so
callback handlers (LangGraph message streaming included) see each token once, from the
chain.
"""

import asyncio
import itertools
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManager,
    AsyncCallbackManagerForLLMRun,
    CallbackManager,
    CallbackManagerForLLMRun,
    adispatch_custom_event,
    dispatch_custom_event,
)
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata, add_usage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableBinding, RunnableConfig
from pydantic import PrivateAttr, SkipValidation

from aimesh.config import Settings, get_settings
from aimesh.errors import AllProvidersFailedError, NoProviderError, ProviderError
from aimesh.llm.classify import is_provider_error
from aimesh.llm.cost import price_source, price_usd
from aimesh.llm.providers import Provider, build_providers

logger = logging.getLogger(__name__)

FALLBACK_EVENT = "model_fallback"
_CHAIN_KEYS = frozenset({"provider", "model_name", "cost_usd", "price_source", "attempts"})
_MAX_ERROR_CHARS = 300


class ProviderChain(BaseChatModel):
    """Chat model falling back across providers (Claude -> GPT -> Gemini -> local).

    Construction does no I/O: without ``providers`` the chain builds them from
    :func:`aimesh.config.get_settings` on its first call.

    Attributes:
        providers: Explicit providers, tried in order (tests, custom chains).
        settings: Settings the providers are built from when ``providers`` is None;
            default: :func:`aimesh.config.get_settings`.
        streaming: Stream every call, so callbacks get each token (the API's ``token``
            events) even when the caller invokes rather than streams.
    """

    providers: SkipValidation[list[Provider] | None] = None
    settings: SkipValidation[Settings | None] = None
    streaming: bool = False

    _resolved: list[Provider] | None = PrivateAttr(default=None)
    _resolve_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

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
        """The providers, built from the settings on first use (thread-safe).

        Raises:
            NoProviderError: No provider is usable.
        """
        with self._resolve_lock:
            if self._resolved is not None:
                return self._resolved
            providers = self.providers
            if providers is None:
                providers = build_providers(self.settings or get_settings())
            if not providers:
                raise NoProviderError("ProviderChain was given an empty provider list")
            self._resolved = providers
            return providers

    async def _aresolved_providers(self) -> list[Provider]:
        """:meth:`resolved_providers`, building them off the event loop the first time."""
        if self._resolved is not None:
            return self._resolved
        return await asyncio.to_thread(self.resolved_providers)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        attempts = _Attempts(_ordered(self.resolved_providers(), kwargs))
        for index, provider in enumerate(attempts.providers):
            started = time.monotonic()
            try:
                model, options = _provider_call(provider, kwargs)
                message = _checked(model.invoke(messages, _quiet(), stop=stop, **options))
            except Exception as exc:
                if not is_provider_error(exc):
                    raise
                _announce(attempts.failed(index, exc, started), run_manager)
                continue
            return _result(message, attempts.succeeded(index, message, started))
        raise AllProvidersFailedError(attempts.records)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        attempts = _Attempts(_ordered(await self._aresolved_providers(), kwargs))
        for index, provider in enumerate(attempts.providers):
            started = time.monotonic()
            try:
                model, options = _provider_call(provider, kwargs)
                message = _checked(await model.ainvoke(messages, _quiet(), stop=stop, **options))
            except Exception as exc:
                if not is_provider_error(exc):
                    raise
                await _aannounce(attempts.failed(index, exc, started), run_manager)
                continue
            return _result(message, attempts.succeeded(index, message, started))
        raise AllProvidersFailedError(attempts.records)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        attempts = _Attempts(_ordered(self.resolved_providers(), kwargs))
        for index, provider in enumerate(attempts.providers):
            started = time.monotonic()
            try:
                model, options = _provider_call(provider, kwargs)
                stream = model.stream(messages, _quiet(), stop=stop, **options)
                head = _until_content(stream)
            except Exception as exc:
                if not is_provider_error(exc):
                    raise
                _announce(attempts.failed(index, exc, started), run_manager)
                continue
            relay = _Relay()
            with _mid_stream_errors(provider):
                for message_chunk in itertools.chain(head, stream):
                    chunk = relay.relay(message_chunk)
                    if run_manager:
                        run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                    yield chunk
            yield relay.last(attempts.succeeded(index, relay.summary(), started))
            return
        raise AllProvidersFailedError(attempts.records)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        attempts = _Attempts(_ordered(await self._aresolved_providers(), kwargs))
        for index, provider in enumerate(attempts.providers):
            started = time.monotonic()
            try:
                model, options = _provider_call(provider, kwargs)
                stream = model.astream(messages, _quiet(), stop=stop, **options)
                head = await _auntil_content(stream)
            except Exception as exc:
                if not is_provider_error(exc):
                    raise
                await _aannounce(attempts.failed(index, exc, started), run_manager)
                continue
            relay = _Relay()
            with _mid_stream_errors(provider):
                for message_chunk in head:
                    yield await _atoken(relay.relay(message_chunk), run_manager)
                async for message_chunk in stream:
                    yield await _atoken(relay.relay(message_chunk), run_manager)
            yield relay.last(attempts.succeeded(index, relay.summary(), started))
            return
        raise AllProvidersFailedError(attempts.records)


class _Attempts:
    """The attempts of one chain call: records, fallback events, result metadata."""

    def __init__(self, providers: list[Provider]) -> None:
        self.providers = providers
        self.records: list[dict[str, Any]] = []

    def failed(self, index: int, exc: Exception, started: float) -> dict[str, str] | None:
        """Record a provider failure.

        Returns:
            The ``model_fallback`` event payload, or None after the last provider.
        """
        provider, error = self.providers[index], _describe(exc)
        self._record(provider, error, started)
        if index + 1 == len(self.providers):
            logger.warning("provider %s/%s failed: %s", provider.name, provider.model, error)
            return None
        following = self.providers[index + 1]
        logger.warning(
            "provider %s/%s failed (%s); falling back to %s/%s",
            *(provider.name, provider.model, error, following.name, following.model),
        )
        return {
            "from_provider": provider.name,
            "from_model": provider.model,
            "error": error,
            "to_provider": following.name,
            "to_model": following.model,
        }

    def succeeded(self, index: int, answer: AIMessage, started: float) -> dict[str, Any]:
        """Record the successful attempt.

        Args:
            index: Position of the provider that answered.
            answer: The answer, or a summary of a stream: its usage and reported model
                name (dated variant) are priced.
            started: ``time.monotonic()`` at the start of the attempt.

        Returns:
            The chain's ``response_metadata`` entries: ``provider``, ``model_name``,
            ``cost_usd`` (``str`` of a Decimal, or None), ``price_source``, ``attempts``.
        """
        provider = self.providers[index]
        self._record(provider, None, started)
        model_name = _model_name(answer) or provider.model
        cost = price_usd(provider.name, model_name, answer.usage_metadata)
        return {
            "provider": provider.name,
            "model_name": model_name,
            "cost_usd": None if cost is None else str(cost),
            "price_source": price_source(),
            "attempts": list(self.records),
        }

    def _record(self, provider: Provider, error: str | None, started: float) -> None:
        elapsed = round(time.monotonic() - started, 3)
        self.records.append(
            {
                "provider": provider.name,
                "model": provider.model,
                "error": error,
                "elapsed_s": elapsed,
            }
        )


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

    def relay(self, chunk: AIMessageChunk) -> ChatGenerationChunk:
        """Record the usage and model name of ``chunk``; return its relayed copy."""
        if chunk.usage_metadata:
            self.usage = add_usage(self.usage, chunk.usage_metadata)
        self.model_name = self.model_name or _model_name(chunk)
        self.list_content = isinstance(chunk.content, list)
        kept = {k: v for k, v in chunk.response_metadata.items() if k not in _CHAIN_KEYS}
        update = {"id": None, "usage_metadata": None, "response_metadata": kept}
        copy = chunk.model_copy(update={**update, "chunk_position": None})
        return ChatGenerationChunk(message=copy)

    def summary(self) -> AIMessage:
        """What the stream reported: usage and model name."""
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


@contextmanager
def _mid_stream_errors(provider: Provider) -> Iterator[None]:
    """Fail loudly when a provider breaks after streaming began (no mid-stream fallback)."""
    try:
        yield
    except Exception as exc:
        if not is_provider_error(exc):
            raise
        raise ProviderError(
            f"{provider.name}/{provider.model} failed after streaming began "
            f"(no fallback mid-stream): {_describe(exc)}"
        ) from exc


def _ordered(providers: list[Provider], kwargs: dict[str, Any]) -> list[Provider]:
    """The providers with ``kwargs["prefer"]`` (a provider name; popped) moved first."""
    prefer = kwargs.pop("prefer", None)
    return sorted(providers, key=lambda p: p.name != prefer) if prefer else providers


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


def _has_content(chunk: AIMessageChunk) -> bool:
    return bool(chunk.text or chunk.tool_call_chunks)


def _until_content(stream: Iterator[AIMessageChunk]) -> list[AIMessageChunk]:
    """Chunks up to the first with text or tool calls; raise ProviderError if none."""
    head: list[AIMessageChunk] = []
    for chunk in stream:
        head.append(chunk)
        if _has_content(chunk):
            return head
    raise ProviderError("provider stream ended without any content")


async def _auntil_content(stream: AsyncIterator[AIMessageChunk]) -> list[AIMessageChunk]:
    """Async :func:`_until_content`."""
    head: list[AIMessageChunk] = []
    async for chunk in stream:
        head.append(chunk)
        if _has_content(chunk):
            return head
    raise ProviderError("provider stream ended without any content")


async def _atoken(
    chunk: ChatGenerationChunk, run_manager: AsyncCallbackManagerForLLMRun | None
) -> ChatGenerationChunk:
    if run_manager:
        await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
    return chunk


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


def _announce(event: dict[str, str] | None, run_manager: CallbackManagerForLLMRun | None) -> None:
    """Dispatch the ``model_fallback`` event on the chain's run, else the enclosing run."""
    if event is None:
        return
    if run_manager is None:
        with suppress(RuntimeError):  # raised when no run encloses the call: nobody listens
            dispatch_custom_event(FALLBACK_EVENT, event)
        return
    manager = CallbackManager(
        handlers=run_manager.handlers,
        parent_run_id=run_manager.run_id,
        tags=run_manager.tags,
        metadata=run_manager.metadata,
    )
    manager.on_custom_event(FALLBACK_EVENT, event, run_id=run_manager.run_id)


async def _aannounce(
    event: dict[str, str] | None, run_manager: AsyncCallbackManagerForLLMRun | None
) -> None:
    """Async :func:`_announce`."""
    if event is None:
        return
    if run_manager is None:
        with suppress(RuntimeError):  # raised when no run encloses the call: nobody listens
            await adispatch_custom_event(FALLBACK_EVENT, event)
        return
    manager = AsyncCallbackManager(
        handlers=run_manager.handlers,
        parent_run_id=run_manager.run_id,
        tags=run_manager.tags,
        metadata=run_manager.metadata,
    )
    await manager.on_custom_event(FALLBACK_EVENT, event, run_id=run_manager.run_id)
