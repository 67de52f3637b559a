"""A scripted fake chat model for provider-chain tests: it fails loudly when its script ends."""

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from pydantic import Field

from aimesh.llm.providers import Provider


@dataclass(frozen=True)
class Pause:
    """A step (or stream item) that blocks for ``seconds``: a provider that hangs."""

    seconds: float


Step = AIMessage | BaseException | Pause | list[AIMessageChunk | BaseException | Pause]


class ScriptedModel(BaseChatModel):
    """Plays ``script`` one step per call.

    A step is an answer, an exception to raise, or (for streaming) a list of chunks that
    may contain an exception raised at that position. Every call is logged in ``seen``.
    """

    script: list[Any]
    seen: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(
        self, tools: Sequence[Any], *, tool_choice: Any = None, **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        return self.bind(tools=list(tools), tool_choice=tool_choice, **kwargs)

    def _next(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> Any:
        self.seen.append({"messages": messages, **kwargs})
        if not self.script:
            raise AssertionError(f"script of {self.name} ran out after {len(self.seen)} calls")
        step = self.script.pop(0)
        if isinstance(step, Pause):
            time.sleep(step.seconds)
            raise AssertionError(f"{self.name}: a hung call was not abandoned in time")
        if isinstance(step, BaseException):
            raise step
        return step

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        step = self._next(messages, kwargs)
        assert isinstance(step, AIMessage), f"{self.name}: expected an answer step, got {step!r}"
        return ChatResult(generations=[ChatGeneration(message=step)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        step = self._next(messages, kwargs)
        assert isinstance(step, list), f"{self.name}: expected a stream step, got {step!r}"
        for item in step:
            if isinstance(item, Pause):
                time.sleep(item.seconds)
                continue
            if isinstance(item, BaseException):
                raise item
            yield ChatGenerationChunk(message=item)


def answer(
    text: str, *, input_tokens: int = 10, output_tokens: int = 5, **metadata: Any
) -> AIMessage:
    usage = {"input_tokens": input_tokens, "output_tokens": output_tokens}
    return AIMessage(
        text,
        usage_metadata={**usage, "total_tokens": input_tokens + output_tokens},
        response_metadata=metadata,
    )


def provider(name: str, model: str, *script: Any) -> Provider:
    return Provider(name, model, ScriptedModel(name=f"{name}-fake", script=list(script)))  # type: ignore[arg-type]


def seen(p: Provider) -> list[dict[str, Any]]:
    return p.chat_model.seen  # type: ignore[attr-defined]
