"""Scripted fake chat models: each role replies from its own script, and fails when it runs out."""

import json
import time
from collections.abc import Iterator, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import Field

NO_TOOLS = "<no tools>"


def call(name: str, call_id: str, **args: Any) -> dict[str, Any]:
    """A tool call as it appears in AIMessage.tool_calls."""
    return {"name": name, "args": args, "id": call_id, "type": "tool_call"}


def calls(*tool_calls: dict[str, Any]) -> AIMessage:
    return AIMessage("", tool_calls=list(tool_calls))


class ScriptedChatModel(BaseChatModel):
    """Replies from ``scripts[role]``, where role is the first bound tool name found in scripts.

    Calls without tools use the ``NO_TOOLS`` script. Every request is logged in ``seen``
    as (role, messages, kwargs).
    """

    scripts: dict[str, list[AIMessage]]
    seen: list[tuple[str, list[BaseMessage], dict[str, Any]]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted-fake"

    def bind_tools(
        self, tools: Sequence[dict[str, Any] | type | BaseTool], **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def _role(self, kwargs: dict[str, Any]) -> str:
        names = [t["function"]["name"] for t in kwargs.get("tools", [])]
        for name in names:
            if name in self.scripts:
                return name
        if names:
            raise AssertionError(f"no script for a model bound to {names}")
        return NO_TOOLS

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        role = self._role(kwargs)
        self.seen.append((role, list(messages), kwargs))
        script = self.scripts.get(role, [])
        if not script:
            raise AssertionError(f"script for {role!r} ran out after {len(self.seen)} calls")
        reply = script.pop(0).model_copy()
        reply.response_metadata = {
            "model_name": "scripted",
            "provider": "fake",
            "cost_usd": "0",
            "finish_reason": "stop",  # the provider chain takes a stream without one as cut
        }
        reply.usage_metadata = {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}
        return ChatResult(generations=[ChatGeneration(message=reply)])


class StreamingScriptedChatModel(ScriptedChatModel):
    """A :class:`ScriptedChatModel` that streams each reply word by word (``token`` events).

    ``token_delay_s`` seconds pass before each word, so a stream stays live for a while.
    Pass ``streaming=True`` explicitly: LangChain streams only when the field was set.
    """

    streaming: bool = True
    token_delay_s: float = 0.0

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        reply = self._generate(messages, stop, None, **kwargs).generations[0].message
        words = reply.text.split(" ") if reply.text else []
        for i, word in enumerate(words):
            time.sleep(self.token_delay_s)
            text = word if i == 0 else f" {word}"
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=text))
            if run_manager:
                run_manager.on_llm_new_token(text, chunk=chunk)
            yield chunk
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
        yield ChatGenerationChunk(message=last)
