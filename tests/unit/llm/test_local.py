import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool

from aimesh.config import Settings
from aimesh.errors import ModelFileError, ProviderError
from aimesh.llm import local as local_module
from aimesh.llm.local import LocalChatModel
from aimesh.llm.tool_decision import FIRST_INSTRUCTION, FOLLOW_UP_INSTRUCTION

MODEL_PATH = Path("/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf")
PROMPT_TOKENS = 100
QUESTION = [SystemMessage("You coordinate analysts."), HumanMessage("Is C00042 at risk?")]


class FakeLlama:
    """Stands in for llama_cpp.Llama: replays replies, records calls and concurrency."""

    def __init__(self, *replies: str | BaseException, delay: float = 0.0) -> None:
        self.replies = list(replies)
        self.calls: list[dict[str, Any]] = []
        self.delay = delay
        self.active = 0
        self.max_active = 0
        self._guard = threading.Lock()

    def create_chat_completion(self, messages: list[dict[str, str]], **kwargs: Any) -> Any:
        self.calls.append({"messages": messages, **kwargs})
        with self._guard:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        time.sleep(self.delay)
        with self._guard:
            self.active -= 1
        if not self.replies:
            raise AssertionError("fake llama ran out of replies")
        reply = self.replies.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        if kwargs.get("stream"):
            return self._stream(reply, kwargs.get("logits_processor") or [])
        usage = {
            "prompt_tokens": PROMPT_TOKENS,
            "completion_tokens": 7,
            "total_tokens": PROMPT_TOKENS + 7,
        }
        choice = {"message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}
        return {"choices": [choice], "usage": usage}

    @staticmethod
    def _stream(text: str, processors: list[Any]) -> Iterator[dict[str, Any]]:
        yield {"choices": [{"delta": {"role": "assistant"}, "finish_reason": None}]}
        pieces = text.split("|")
        for sampled in range(len(pieces) + 1):  # one more sample: the end-of-sequence token
            for processor in processors:
                processor(list(range(PROMPT_TOKENS + sampled)), None)
            if sampled < len(pieces):
                yield {"choices": [{"delta": {"content": pieces[sampled]}, "finish_reason": None}]}
        yield {"choices": [{"delta": {}, "finish_reason": "stop"}]}


def model_with(
    monkeypatch: pytest.MonkeyPatch, fake: FakeLlama, loads: list[tuple[Any, ...]] | None = None
) -> LocalChatModel:
    def load(*args: Any) -> FakeLlama:
        if loads is not None:
            loads.append(args)
        return fake

    monkeypatch.setattr(local_module, "_load", load)
    return LocalChatModel(model_path=MODEL_PATH, max_tokens=256)


@tool
def ask_churn_analyst(request: str, client_id: str | None = None) -> str:
    """Ask the churn analyst about churn risk."""
    return request


@tool
def ask_billing_analyst(request: str) -> str:
    """Ask the billing analyst about billing anomalies."""
    return request


TOOLS = [ask_churn_analyst, ask_billing_analyst]
CHURN_DECISION = json.dumps(
    {
        "tool_calls": [
            {"name": "ask_churn_analyst", "arguments": {"request": "risk?", "client_id": "C00042"}}
        ]
    }
)


class Tokens(BaseCallbackHandler):
    def __init__(self) -> None:
        self.tokens: list[str] = []

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.tokens.append(token)


def test_model_loads_lazily_and_once(monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[tuple[Any, ...]] = []
    model = model_with(monkeypatch, FakeLlama("a", "b"), loads)
    assert loads == []
    model.invoke(QUESTION)
    model.invoke(QUESTION)
    assert len(loads) == 1 and loads[0][0] == MODEL_PATH


def test_from_settings_uses_local_model_settings() -> None:
    settings = Settings(local_n_ctx=4096, local_threads=3, temperature=0.2, max_output_tokens=128)
    model = LocalChatModel.from_settings(settings, MODEL_PATH)
    assert (model.n_ctx, model.n_threads, model.temperature, model.max_tokens) == (
        4096,
        3,
        0.2,
        128,
    )
    assert model.model_name == "qwen2.5-coder-1.5b-instruct-q4_k_m"


def test_plain_call_answers_with_usage_and_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeLlama("C00042 is at moderate risk.")
    message = model_with(monkeypatch, fake).invoke(QUESTION, stop=["\n\n"])
    assert message.text == "C00042 is at moderate risk."
    assert message.usage_metadata == {"input_tokens": 100, "output_tokens": 7, "total_tokens": 107}
    assert message.response_metadata["model_name"] == "qwen2.5-coder-1.5b-instruct-q4_k_m"
    assert message.response_metadata["finish_reason"] == "stop"
    call = fake.calls[0]
    assert "response_format" not in call and call["stop"] == ["\n\n"]
    assert (call["temperature"], call["max_tokens"]) == (0.0, 256)
    assert call["messages"] == [
        {"role": "system", "content": "You coordinate analysts."},
        {"role": "user", "content": "Is C00042 at risk?"},
    ]


def test_tool_decision_becomes_tool_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeLlama(CHURN_DECISION)
    message = model_with(monkeypatch, fake).bind_tools(TOOLS).invoke(QUESTION)
    assert isinstance(message, AIMessage) and message.text == ""
    [call] = message.tool_calls
    assert call["name"] == "ask_churn_analyst" and call["args"] == {
        "request": "risk?",
        "client_id": "C00042",
    }
    assert call["id"].startswith("call_")
    assert message.response_metadata["finish_reason"] == "tool_calls"
    assert message.usage_metadata["input_tokens"] == 100
    [decision] = fake.calls
    fmt = decision["response_format"]
    assert fmt["type"] == "json_object"
    names = [
        b["properties"]["name"]["const"]
        for b in fmt["schema"]["properties"]["tool_calls"]["items"]["anyOf"]
    ]
    assert names == ["ask_churn_analyst", "ask_billing_analyst"]
    assert "ask_billing_analyst: Ask the billing analyst" in decision["messages"][0]["content"]
    assert decision["messages"][-1] == {"role": "system", "content": FIRST_INSTRUCTION}


def test_no_tool_decision_is_followed_by_an_answer_on_the_decisions_prompt_prefix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeLlama('{"tool_calls": []}', "Hello! I coordinate MSP analysts.")
    message = model_with(monkeypatch, fake).bind_tools(TOOLS).invoke(QUESTION)
    assert message.text == "Hello! I coordinate MSP analysts." and message.tool_calls == []
    assert message.usage_metadata == {"input_tokens": 200, "output_tokens": 14, "total_tokens": 214}
    decision_call, answer_call = fake.calls
    assert "response_format" not in answer_call
    # the same turns but the decision instruction: llama.cpp reuses the evaluated prefix
    assert answer_call["messages"] == decision_call["messages"][:-1]
    assert answer_call["messages"][-1] == {"role": "user", "content": "Is C00042 at risk?"}


def test_tool_choice_none_skips_the_decision(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeLlama("direct")
    assert (
        model_with(monkeypatch, fake).bind_tools(TOOLS, tool_choice="none").invoke(QUESTION).text
        == "direct"
    )
    assert len(fake.calls) == 1


def test_after_tool_results_the_decision_is_a_follow_up(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeLlama('{"next": "answer"}', "C00042: 0.63")
    call = {
        "name": "ask_churn_analyst",
        "args": {"request": "risk?"},
        "id": "c1",
        "type": "tool_call",
    }
    history = [
        *QUESTION,
        AIMessage("", tool_calls=[call]),
        ToolMessage('{"p": 0.63}', tool_call_id="c1"),
    ]
    message = model_with(monkeypatch, fake).bind_tools(TOOLS).invoke(history)
    assert message.text == "C00042: 0.63" and message.tool_calls == []
    decision, answer = fake.calls
    assert decision["messages"][-1] == {"role": "system", "content": FOLLOW_UP_INSTRUCTION}
    assert "anyOf" in decision["response_format"]["schema"]
    assert answer["messages"][2:] == [
        {
            "role": "user",
            "content": 'Result of ask_churn_analyst:\n{"p": 0.63}',
        }
    ]


def test_stream_yields_tokens_once_and_ends_with_usage(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = Tokens()
    fake = FakeLlama('{"tool_calls": []}', "C000|42 is| fine")
    bound = model_with(monkeypatch, fake).bind_tools(TOOLS)
    parts = list(bound.stream(QUESTION, config={"callbacks": [tokens]}))
    assert [p.text for p in parts if p.text] == ["C000", "42 is", " fine"]
    assert [t for t in tokens.tokens if t] == ["C000", "42 is", " fine"]
    last = parts[-1]
    assert last.chunk_position == "last" and last.response_metadata["finish_reason"] == "stop"
    # decision (100 in, 7 out) + streamed answer counted by the logits processor (100 in, 3+1 out)
    assert last.usage_metadata == {"input_tokens": 200, "output_tokens": 11, "total_tokens": 211}
    assert fake.calls[1]["stream"] is True


def test_stream_of_a_tool_decision_is_one_chunk_with_the_calls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeLlama(CHURN_DECISION)
    parts = list(model_with(monkeypatch, fake).bind_tools(TOOLS).stream(QUESTION))
    merged = parts[0]
    for part in parts[1:]:
        merged += part
    assert [c["name"] for c in merged.tool_calls] == ["ask_churn_analyst"]
    assert merged.tool_calls[0]["args"] == {"request": "risk?", "client_id": "C00042"}
    assert merged.response_metadata["finish_reason"] == "tool_calls"


async def test_async_calls_run_in_threads_one_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeLlama("a", "b", "c", delay=0.15)
    model = model_with(monkeypatch, fake)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticking = asyncio.create_task(ticker())
    streamed = [p.text async for p in model.astream(QUESTION)]
    replies = await asyncio.gather(model.ainvoke(QUESTION), model.ainvoke(QUESTION))
    ticking.cancel()
    assert "".join(streamed) == "a" and sorted(r.text for r in replies) == ["b", "c"]
    assert fake.max_active == 1  # llama.cpp is never entered concurrently
    assert ticks >= 10  # the event loop kept running during 0.45 s of model time


async def test_abandoned_astream_releases_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeLlama("one|two|three", "next")
    model = model_with(monkeypatch, fake)
    stream = model.astream(QUESTION)
    async for _ in stream:
        break
    await stream.aclose()
    reply = await asyncio.wait_for(model.ainvoke(QUESTION), timeout=5)
    assert reply.text == "next"


async def test_astream_propagates_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    model = model_with(
        monkeypatch, FakeLlama(ValueError("Requested tokens (9000) exceed context window of 8192"))
    )
    with pytest.raises(ProviderError, match="exceed context window"):
        [p async for p in model.astream(QUESTION)]


def test_malformed_decision_is_a_provider_error(monkeypatch: pytest.MonkeyPatch) -> None:
    model = model_with(
        monkeypatch, FakeLlama('{"tool_calls": [{"name": "ask_churn_analyst", "argu')
    )
    with pytest.raises(ProviderError, match="malformed tool decision"):
        model.bind_tools(TOOLS).invoke(QUESTION)


def test_programming_errors_are_not_wrapped(monkeypatch: pytest.MonkeyPatch) -> None:
    model = model_with(monkeypatch, FakeLlama())
    with pytest.raises(ValueError, match="not one of the bound tools"):
        model.bind_tools(TOOLS, tool_choice="ask_pricing_analyst").invoke(QUESTION)


def test_unloadable_file_is_a_model_file_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import llama_cpp

    def refuse(**kwargs: Any) -> None:
        raise ValueError(f"Failed to load model from file: {kwargs['model_path']}")

    monkeypatch.setattr(llama_cpp, "Llama", refuse)
    with pytest.raises(ModelFileError, match="AIMESH_GGUF_PATH"):
        LocalChatModel(model_path=tmp_path / "broken.gguf").invoke(QUESTION)
