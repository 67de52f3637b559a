"""The fake chat model of the tests: a function decides each reply (as pydantic-ai's
``FunctionModel``), and helpers build that function from scripts that fail when they run out.

A reply is an answer (streamed word by word when the call streams), a list of stream items
(chunks, exceptions raised at that position, :class:`Pause`), an exception to raise, or a
:class:`Pause` (a call that hangs). The function may be a coroutine function.
"""

import asyncio
import inspect
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
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
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import Field

from aimesh.llm.providers import Provider

NO_TOOLS = "<no tools>"
USAGE = {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}  # of every scripted reply
METADATA = {
    "model_name": "scripted",
    "provider": "fake",
    "cost_usd": "0",
    "finish_reason": "stop",  # the provider chain takes a stream without one as cut
}


@dataclass(frozen=True)
class Pause:
    """A reply (or stream item) that blocks for ``seconds``: a provider that hangs."""

    seconds: float


StreamItem = AIMessageChunk | BaseException | Pause
Reply = AIMessage | list[StreamItem] | BaseException | Pause


@dataclass(frozen=True)
class CallInfo:
    """What a call gives the model's function besides the messages."""

    index: int  # of this call among the model's calls, from 0
    tools: list[str]  # names of the bound tools
    kwargs: dict[str, Any]  # of the call: tools (as bound), tool_choice, temperature...
    run: AsyncCallbackManagerForLLMRun | None  # the model's run, when the call has one


Scripts = dict[str, list[AIMessage]]  # replies by role: see by_role
ModelFunction = Callable[[list[BaseMessage], CallInfo], Reply | Awaitable[Reply]]


class FunctionChatModel(BaseChatModel):
    """Replies with ``function(messages, info)``; every call is logged in ``seen``.

    Asynchronous only. As the provider chain, ``ainvoke`` streams inside ``_agenerate`` (with
    the model's run, which gets the tokens) when ``streaming=True`` was passed or a streaming
    handler is attached; ``token_delay_s`` seconds pass before each streamed word.
    """

    function: ModelFunction
    streaming: bool = False
    token_delay_s: float = 0.0
    seen: list[tuple[list[BaseMessage], CallInfo]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "function-fake"

    def bind_tools(
        self, tools: Sequence[Any], **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        return self.bind(tools=list(tools), **kwargs)

    def _should_stream(self, *, async_api: bool, **kwargs: Any) -> bool:
        return kwargs.get("stream") is True and super()._should_stream(
            async_api=async_api, **kwargs
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        raise NotImplementedError("FunctionChatModel is asynchronous: call ainvoke or astream")

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if super()._should_stream(async_api=True, run_manager=run_manager, **kwargs):
            chunks = [c async for c in self._astream(messages, stop, run_manager, **kwargs)]
            return generate_from_stream(iter(chunks))
        reply = await self._reply(messages, run_manager, kwargs)
        assert isinstance(reply, AIMessage), f"{self.name}: expected an answer, got {reply!r}"
        return ChatResult(generations=[ChatGeneration(message=reply)])

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        reply = await self._reply(messages, run_manager, kwargs)
        items = reply if isinstance(reply, list) else self._words(reply)
        for item in items:
            if isinstance(item, Pause):
                await asyncio.sleep(item.seconds)
                continue
            if isinstance(item, BaseException):
                raise item
            chunk = ChatGenerationChunk(message=item)
            if run_manager:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    async def _reply(
        self,
        messages: list[BaseMessage],
        run_manager: AsyncCallbackManagerForLLMRun | None,
        kwargs: dict[str, Any],
    ) -> AIMessage | list[StreamItem]:
        """The function's reply to this call; raised when it is an exception or a pause."""
        tools = [convert_to_openai_tool(t)["function"]["name"] for t in kwargs.get("tools") or []]
        info = CallInfo(len(self.seen), tools, kwargs, run_manager)
        self.seen.append((list(messages), info))
        reply = self.function(list(messages), info)
        if inspect.isawaitable(reply):
            reply = await reply
        if isinstance(reply, Pause):
            await asyncio.sleep(reply.seconds)
            raise AssertionError(f"{self.name}: a hung call was not abandoned in time")
        if isinstance(reply, BaseException):
            raise reply
        return reply

    def _words(self, reply: AIMessage) -> list[StreamItem]:
        """``reply`` as a stream: its words, then its tool calls, usage and metadata."""
        items: list[StreamItem] = []
        for i, word in enumerate(reply.text.split(" ") if reply.text else []):
            items += [Pause(self.token_delay_s), AIMessageChunk(word if i == 0 else f" {word}")]
        last = AIMessageChunk(
            content="",
            tool_call_chunks=[
                {"name": c["name"], "args": json.dumps(c["args"]), "id": c["id"], "index": i}
                for i, c in enumerate(reply.tool_calls)
            ],
            usage_metadata=reply.usage_metadata,
            response_metadata=reply.response_metadata,
            chunk_position="last",
        )
        return [*items, last]


async def dispatch(run: AsyncCallbackManagerForLLMRun | None, name: str, payload: Any) -> None:
    """Dispatch a custom event as the provider chain does: on the model's run (``info.run``)
    when the call has one, else on the enclosing run."""
    if run is None:
        await adispatch_custom_event(name, payload)
        return
    manager = AsyncCallbackManager(
        handlers=run.handlers, parent_run_id=run.run_id, tags=run.tags, metadata=run.metadata
    )
    await manager.on_custom_event(name, payload, run_id=run.run_id)


def _next(script: list[Any], what: str, info: CallInfo) -> Any:
    if not script:
        raise AssertionError(f"{what} ran out at call {info.index + 1}")
    return script.pop(0)


def in_order(*steps: Reply) -> ModelFunction:
    """A function that replies with ``steps`` one per call, whatever the call."""
    script = list(steps)
    return lambda messages, info: _next(script, "the script", info)


def by_role(scripts: Scripts) -> ModelFunction:
    """A function that replies from ``scripts[role]`` with :data:`USAGE` and :data:`METADATA`.

    The role is the first bound tool name found in ``scripts`` (``NO_TOOLS`` for a call
    without tools); a call bound to tools none of which has a script fails. ``scripts`` is
    read at each call: a test may add replies while the model runs.
    """

    def reply(messages: list[BaseMessage], info: CallInfo) -> AIMessage:
        role = next((name for name in info.tools if name in scripts), None)
        if role is None and info.tools:
            raise AssertionError(f"no script for a model bound to {info.tools}")
        role = role or NO_TOOLS
        step = _next(scripts.get(role, []), f"script for {role!r}", info)
        return step.model_copy(
            update={"usage_metadata": dict(USAGE), "response_metadata": dict(METADATA)}
        )

    return reply


def scripted(scripts: Scripts, **fields: Any) -> FunctionChatModel:
    """A :class:`FunctionChatModel` replying from ``scripts`` (see :func:`by_role`)."""
    return FunctionChatModel(function=by_role(scripts), **fields)


def call(name: str, call_id: str, **args: Any) -> dict[str, Any]:
    """A tool call as it appears in AIMessage.tool_calls."""
    return {"name": name, "args": args, "id": call_id, "type": "tool_call"}


def calls(*tool_calls: dict[str, Any]) -> AIMessage:
    return AIMessage("", tool_calls=list(tool_calls))


def answer(
    text: str, *, input_tokens: int = 10, output_tokens: int = 5, **metadata: Any
) -> AIMessage:
    """An answer with its token usage and ``metadata`` as response metadata."""
    usage = {"input_tokens": input_tokens, "output_tokens": output_tokens}
    return AIMessage(
        text,
        usage_metadata={**usage, "total_tokens": input_tokens + output_tokens},
        response_metadata=metadata,
    )


def provider(name: str, model: str, *steps: Reply) -> Provider:
    """A provider link whose chat model replies with ``steps`` in order."""
    return Provider(name, model, FunctionChatModel(name=f"{name}-fake", function=in_order(*steps)))


def seen(link: Provider) -> list[tuple[list[BaseMessage], CallInfo]]:
    """The calls the fake chat model of ``link`` got."""
    assert isinstance(link.chat_model, FunctionChatModel)
    return link.chat_model.seen
