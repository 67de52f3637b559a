"""LangChain chat model over a local GGUF file run by llama-cpp-python.

One ``llama_cpp.Llama`` per adapter, loaded on first call. llama.cpp is not
thread-safe, so every call holds the adapter's lock; async calls run in a worker thread
so the event loop keeps serving other tasks while the model computes.

With tools bound, a call first asks the model for a grammar-constrained JSON decision
(see :mod:`aimesh.llm.tool_decision`); if it decides on no tool, the model is called
again without tools to write the answer (streamed when streaming).
"""

import asyncio
import json
import os
import threading
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolCall
from langchain_core.messages.ai import UsageMetadata, add_usage
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import PrivateAttr

from aimesh.config import Settings
from aimesh.errors import ModelFileError, ProviderError
from aimesh.llm.local_messages import ChatTurn, to_chat_turns
from aimesh.llm.tool_decision import ToolDecision, parse_decision

_END = object()


class LocalChatModel(BaseChatModel):
    """Chat model running a GGUF file in-process (no network).

    Attributes:
        model_path: GGUF file to load.
        n_ctx: Context window (tokens).
        n_threads: CPU threads; ``None`` uses every core.
        prompt_cache_mb: RAM for llama-cpp-python's prompt-prefix cache (MB), 0 = none.
            The coordinator and specialists take turns, so each call would otherwise
            re-read the whole conversation: the cache restores the longest cached prefix
            (a churn question and its follow-up: 183 s and 288 s without, 148 s and
            169 s with, one run each).
        temperature: Sampling temperature (0 = greedy).
        max_tokens: Cap on generated tokens per model call.
    """

    model_path: Path
    n_ctx: int = 8192
    n_threads: int | None = None
    prompt_cache_mb: int = 2048
    temperature: float = 0.0
    max_tokens: int = 512

    _llama: Any = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @classmethod
    def from_settings(cls, settings: Settings, model_path: Path) -> "LocalChatModel":
        """Build the adapter for ``model_path`` with the local-model settings."""
        return cls(
            model_path=model_path,
            n_ctx=settings.local_n_ctx,
            n_threads=settings.local_threads,
            prompt_cache_mb=settings.local_prompt_cache_mb,
            temperature=settings.temperature,
            max_tokens=settings.max_output_tokens,
        )

    @property
    def _llm_type(self) -> str:
        return "llama-cpp"

    @property
    def model_name(self) -> str:
        """Model name reported in ``response_metadata``: the GGUF file stem."""
        return self.model_path.stem

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "n_ctx": self.n_ctx, "temperature": self.temperature}

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | Any],
        *,
        tool_choice: str | dict[str, Any] | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools, stored as OpenAI-format schemas.

        Args:
            tools: LangChain tools, functions, pydantic models or OpenAI tool dicts.
            tool_choice: See :func:`aimesh.llm.tool_decision.select_tools`.
            **kwargs: Passed on to ``bind``.

        Returns:
            A runnable calling this model with the tools.
        """
        schemas = [convert_to_openai_tool(t) for t in tools]
        return self.bind(tools=schemas, tool_choice=tool_choice, **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        turns, decision = _prepare(messages, kwargs)
        with self._lock, self._provider_errors():
            llama = self._loaded()
            calls, usage = self._decide(llama, turns, decision)
            if calls:
                message = AIMessage(
                    content="",
                    tool_calls=calls,
                    usage_metadata=usage,
                    response_metadata=self._metadata("tool_calls"),
                )
            else:
                response = llama.create_chat_completion(
                    _answer_turns(turns, decision), **self._sampling(stop, kwargs)
                )
                choice = response["choices"][0]
                message = AIMessage(
                    content=choice["message"]["content"] or "",
                    usage_metadata=add_usage(usage, _usage(response["usage"])),
                    response_metadata=self._metadata(choice["finish_reason"]),
                )
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return await asyncio.to_thread(self._generate, messages, stop, None, **kwargs)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Generator[ChatGenerationChunk, None, None]:
        turns, decision = _prepare(messages, kwargs)
        with self._lock, self._provider_errors():
            llama = self._loaded()
            calls, usage = self._decide(llama, turns, decision)
            chunks = (
                iter([self._tool_calls_chunk(calls, usage)])
                if calls
                else self._answer_chunks(
                    llama, _answer_turns(turns, decision), self._sampling(stop, kwargs), usage
                )
            )
            for chunk in chunks:
                if run_manager:
                    run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        cancelled = threading.Event()

        def produce() -> None:
            item: Any = _END
            try:
                with closing(self._stream(messages, stop, None, **kwargs)) as chunks:
                    for chunk in chunks:
                        if cancelled.is_set():
                            return
                        loop.call_soon_threadsafe(queue.put_nowait, chunk)
            except Exception as exc:  # handed over to the consuming task
                item = exc
            loop.call_soon_threadsafe(queue.put_nowait, item)

        producer = loop.run_in_executor(None, produce)
        try:
            while (item := await queue.get()) is not _END:
                if isinstance(item, Exception):
                    raise item
                if run_manager:
                    await run_manager.on_llm_new_token(item.text, chunk=item)
                yield item
            await producer
        finally:
            cancelled.set()

    def _loaded(self) -> Any:
        """The ``llama_cpp.Llama`` instance, loaded on first use (caller holds the lock)."""
        if self._llama is None:
            threads = self.n_threads or os.cpu_count()
            self._llama = _load(self.model_path, self.n_ctx, threads, self.prompt_cache_mb)
        return self._llama

    def _decide(
        self, llama: Any, turns: list[ChatTurn], decision: ToolDecision | None
    ) -> tuple[list[ToolCall], UsageMetadata | None]:
        """Ask for a tool decision when tools may be called.

        Returns:
            The tool calls (empty: answer without tools) and the decision's usage.
        """
        if decision is None:
            return [], None
        response = llama.create_chat_completion(
            decision.turns(turns),
            response_format={"type": "json_object", "schema": decision.schema()},
            **self._sampling(None),
        )
        calls = parse_decision(response["choices"][0]["message"]["content"] or "")
        return calls, _usage(response["usage"])

    def _answer_chunks(
        self,
        llama: Any,
        turns: list[ChatTurn],
        sampling: dict[str, Any],
        usage: UsageMetadata | None,
    ) -> Iterator[ChatGenerationChunk]:
        """Stream the answer; the last chunk carries usage and finish reason."""
        from llama_cpp import LogitsProcessorList

        counter = _TokenCounter()
        finish_reason = None
        for part in llama.create_chat_completion(
            turns,
            stream=True,
            logits_processor=LogitsProcessorList([counter]),
            **sampling,
        ):
            choice = part["choices"][0]
            if text := choice["delta"].get("content"):
                yield ChatGenerationChunk(message=AIMessageChunk(content=text))
            finish_reason = choice["finish_reason"] or finish_reason
        last = AIMessageChunk(
            content="",
            usage_metadata=add_usage(usage, counter.usage()),
            response_metadata=self._metadata(finish_reason),
            chunk_position="last",
        )
        yield ChatGenerationChunk(message=last)

    def _tool_calls_chunk(
        self, calls: list[ToolCall], usage: UsageMetadata | None
    ) -> ChatGenerationChunk:
        chunks = [
            tool_call_chunk(name=c["name"], args=json.dumps(c["args"]), id=c["id"], index=i)
            for i, c in enumerate(calls)
        ]
        message = AIMessageChunk(
            content="",
            tool_call_chunks=chunks,
            usage_metadata=usage,
            response_metadata=self._metadata("tool_calls"),
            chunk_position="last",
        )
        return ChatGenerationChunk(message=message)

    def _sampling(
        self, stop: list[str] | None, call: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Sampling arguments: this call's ``temperature``/``max_tokens``, else the model's."""
        call = call or {}
        return {
            "temperature": call.get("temperature", self.temperature),
            "max_tokens": call.get("max_tokens", self.max_tokens),
            "stop": stop,
        }

    def _metadata(self, finish_reason: str | None) -> dict[str, Any]:
        return {"model_name": self.model_name, "finish_reason": finish_reason}

    @contextmanager
    def _provider_errors(self) -> Iterator[None]:
        """Re-raise llama-cpp failures (context overflow, decode errors) as ProviderError."""
        try:
            yield
        except (RuntimeError, ValueError) as exc:
            raise ProviderError(f"local model {self.model_name} failed: {exc}") from exc


class _TokenCounter:
    """llama-cpp logits processor counting tokens, since streams report no usage.

    It is called once per sampled token with the token ids so far: on the first call
    those are exactly the prompt.
    """

    def __init__(self) -> None:
        self.prompt_tokens = 0
        self.sampled = 0

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if not self.sampled:
            self.prompt_tokens = len(input_ids)
        self.sampled += 1
        return scores

    def usage(self) -> UsageMetadata:
        return UsageMetadata(
            input_tokens=self.prompt_tokens,
            output_tokens=self.sampled,
            total_tokens=self.prompt_tokens + self.sampled,
        )


def _prepare(
    messages: list[BaseMessage], kwargs: dict[str, Any]
) -> tuple[list[ChatTurn], ToolDecision | None]:
    """The rendered conversation and the tool decision to ask for (None: no tools)."""
    tools, tool_choice = kwargs.get("tools") or [], kwargs.get("tool_choice")
    return to_chat_turns(messages), ToolDecision.for_call(tools, tool_choice, messages)


def _answer_turns(turns: list[ChatTurn], decision: ToolDecision | None) -> list[ChatTurn]:
    """The prompt of an answer.

    After a tool decision it is that decision's prompt without its instruction turn: the
    same prefix, so llama.cpp keeps the decision's evaluated tokens instead of reading the
    whole conversation again behind a system turn without the tool catalogue.
    """
    return decision.turns(turns)[:-1] if decision else turns


def _usage(usage: dict[str, int]) -> UsageMetadata:
    return UsageMetadata(
        input_tokens=usage["prompt_tokens"],
        output_tokens=usage["completion_tokens"],
        total_tokens=usage["total_tokens"],
    )


def _load(path: Path, n_ctx: int, n_threads: int | None, cache_mb: int) -> Any:
    """Load a GGUF file with llama-cpp-python, with a prompt cache of ``cache_mb`` MB.

    Raises:
        ProviderError: llama-cpp-python is not installed.
        ModelFileError: The file cannot be loaded.
    """
    try:
        from llama_cpp import Llama

        from aimesh.llm.llama_cache import PromptCache
    except ImportError as exc:
        raise ProviderError(
            "llama-cpp-python is not installed; pip install llama-cpp-python==0.3.36"
        ) from exc
    try:
        llama = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=n_threads, verbose=False)
    except ValueError as exc:  # llama-cpp's "Failed to load model from file"
        raise ModelFileError(
            f"cannot load the GGUF file {path}: {exc}; point AIMESH_GGUF_PATH to a valid GGUF"
        ) from exc
    if cache_mb:
        llama.set_cache(PromptCache(capacity_bytes=cache_mb << 20))
    return llama
