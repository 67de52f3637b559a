import asyncio
import threading
from decimal import Decimal
from typing import Any
from uuid import UUID

import anthropic
import httpx2
import openai
import pytest
from genai_prices import Usage, calc_price
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool
from langgraph.graph import START, MessagesState, StateGraph

from aimesh.config import Settings
from aimesh.errors import (
    AllProvidersFailedError,
    InvalidInputError,
    NoProviderError,
    ProviderError,
)
from aimesh.llm import chain as chain_module
from aimesh.llm.breaker import LocalBreaker
from aimesh.llm.chain import ProviderChain
from aimesh.llm.providers import Provider
from aimesh.llm.route import use_route
from tests.fakes import FunctionChatModel, Pause, answer, in_order, provider, seen

REQUEST = httpx2.Request("POST", "https://api.example.com/v1/messages")
OVERLOADED = anthropic.OverloadedError(
    "overloaded", response=httpx2.Response(529, request=REQUEST), body=None
)
RATE_LIMITED = openai.RateLimitError(
    "slow down", response=httpx2.Response(429, request=REQUEST), body=None
)
QUESTION = [HumanMessage("Which clients may churn?")]


class Recorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.tokens: list[str] = []
        self.ends = 0

    def on_custom_event(self, name: str, data: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.events.append((name, data))

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.tokens.append(token)

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        self.ends += 1


def chunks(
    *texts: str, usage: tuple[int, int] = (7, 3), model: str = "claude-sonnet-4-5-20250929"
) -> list[AIMessageChunk]:
    head = AIMessageChunk("", response_metadata={"model_name": model})
    body = [AIMessageChunk(t) for t in texts]
    tokens = {"input_tokens": usage[0], "output_tokens": usage[1], "total_tokens": sum(usage)}
    tail = AIMessageChunk("", usage_metadata=tokens, response_metadata={"stop_reason": "end_turn"})
    return [head, *body, tail]


async def test_first_provider_answers_with_cost_and_metadata() -> None:
    first = provider(
        "anthropic", "claude-sonnet-4-5", answer("C00017", input_tokens=1000, output_tokens=500)
    )
    second = provider("local", "qwen")
    message = await ProviderChain(providers=[first, second]).ainvoke(QUESTION)
    meta = message.response_metadata
    assert message.text == "C00017"
    assert meta["provider"] == "anthropic" and meta["model_name"] == "claude-sonnet-4-5"
    assert Decimal(meta["cost_usd"]) == Decimal("0.0105")
    assert meta["price_source"].startswith("genai-prices ")
    assert [(a["provider"], a["error"]) for a in meta["attempts"]] == [("anthropic", None)]
    assert message.usage_metadata["input_tokens"] == 1000
    assert seen(second) == []


async def test_falls_back_and_records_every_attempt() -> None:
    failing = [
        provider("anthropic", "claude-sonnet-4-5", OVERLOADED),
        provider("openai", "gpt-4.1-mini", RATE_LIMITED),
        provider("google", "gemini-2.5-flash", TimeoutError("read timed out")),
    ]
    local = provider("local", "qwen2.5-coder", answer("local answer", model_name="qwen2.5-coder"))
    message = await ProviderChain(providers=[*failing, local]).ainvoke(QUESTION)
    meta = message.response_metadata
    assert message.text == "local answer"
    assert meta["provider"] == "local" and meta["cost_usd"] == "0"
    attempts = meta["attempts"]
    assert [a["provider"] for a in attempts] == ["anthropic", "openai", "google", "local"]
    assert "OverloadedError" in attempts[0]["error"] and "RateLimitError" in attempts[1]["error"]
    assert "TimeoutError" in attempts[2]["error"] and attempts[3]["error"] is None
    assert all(a["latency_s"] >= 0 for a in attempts)


@pytest.mark.parametrize(
    "bad",
    [
        AIMessage(""),
        AIMessage(
            "",
            invalid_tool_calls=[
                {"name": "x", "args": "{", "id": "1", "error": "json", "type": "invalid_tool_call"}
            ],
        ),
    ],
    ids=["empty", "malformed tool calls"],
)
async def test_empty_or_malformed_answers_fall_back(bad: AIMessage) -> None:
    first = provider("openai", "gpt-4.1-mini", bad)
    second = provider("local", "qwen", answer("ok"))
    message = await ProviderChain(providers=[first, second]).ainvoke(QUESTION)
    assert message.text == "ok"
    assert "ProviderError" in message.response_metadata["attempts"][0]["error"]


@pytest.mark.parametrize(
    "error",
    [
        TypeError("bad argument"),
        ValueError("bad value"),
        anthropic.AuthenticationError(
            "no key", response=httpx2.Response(401, request=REQUEST), body=None
        ),
    ],
    ids=["TypeError", "ValueError", "401"],
)
async def test_programming_errors_propagate_without_fallback(error: Exception) -> None:
    second = provider("local", "qwen", answer("never"))
    with pytest.raises(type(error)):
        await ProviderChain(providers=[provider("anthropic", "claude", error), second]).ainvoke(
            QUESTION
        )
    assert seen(second) == []


async def test_all_failing_raises_one_error_listing_every_attempt() -> None:
    chain = ProviderChain(
        providers=[
            provider("anthropic", "claude", OVERLOADED),
            provider("local", "qwen", ProviderError("decode failed")),
        ]
    )
    with pytest.raises(AllProvidersFailedError) as caught:
        await chain.ainvoke(QUESTION)
    attempts = caught.value.attempts
    assert [(a.provider, a.model_requested) for a in attempts] == [
        ("anthropic", "claude"),
        ("local", "qwen"),
    ]
    assert attempts[1].error is not None and "decode failed" in attempts[1].error
    assert "2 provider attempts failed" in str(caught.value)


async def test_fallback_dispatches_model_fallback_events() -> None:
    recorder = Recorder()
    chain = ProviderChain(
        providers=[
            provider("anthropic", "claude", OVERLOADED),
            provider("openai", "gpt", RATE_LIMITED),
            provider("local", "qwen", answer("ok")),
        ]
    )
    await chain.ainvoke(QUESTION, config={"callbacks": [recorder]})
    assert [name for name, _ in recorder.events] == [
        *("model_attempt", "model_fallback", "model_attempt", "model_fallback", "model_attempt")
    ]
    first = recorder.events[1][1]
    assert first["from_provider"] == "anthropic" and first["from_model"] == "claude"
    assert first["to_provider"] == "openai" and first["to_model"] == "gpt"
    assert "OverloadedError" in first["error"]
    assert recorder.ends == 1  # provider calls do not reach the chain's callbacks


async def test_no_event_after_the_last_provider() -> None:
    recorder = Recorder()
    chain = ProviderChain(providers=[provider("local", "q", ProviderError("x"))])
    with pytest.raises(AllProvidersFailedError):
        await chain.ainvoke(QUESTION, config={"callbacks": [recorder]})
    assert [name for name, _ in recorder.events] == ["model_attempt"]


async def test_unknown_price_is_none_never_zero() -> None:
    chain = ProviderChain(providers=[provider("openai", "my-vllm-model", answer("ok"))])
    assert (await chain.ainvoke(QUESTION)).response_metadata["cost_usd"] is None


async def test_reported_dated_model_name_is_priced() -> None:
    reply = answer("ok", input_tokens=2000, output_tokens=100, model_name="gpt-4.1-mini-2025-04-14")
    message = await ProviderChain(providers=[provider("openai", "gpt-4.1-mini", reply)]).ainvoke(
        QUESTION
    )
    expected = calc_price(
        Usage(input_tokens=2000, output_tokens=100), model_ref="gpt-4.1-mini", provider_id="openai"
    )
    assert message.response_metadata["model_name"] == "gpt-4.1-mini-2025-04-14"
    assert Decimal(message.response_metadata["cost_usd"]) == expected.total_price


@tool
def ask_churn_analyst(request: str) -> str:
    """Ask the churn analyst."""
    return request


async def test_each_attempt_binds_the_tools_on_its_provider() -> None:
    first = provider("anthropic", "claude", OVERLOADED)
    second = provider("local", "qwen", answer("ok"))
    bound = ProviderChain(providers=[first, second]).bind_tools(
        [ask_churn_analyst], tool_choice="any"
    )
    await bound.ainvoke(QUESTION)
    for p in (first, second):
        [(_, info)] = seen(p)
        assert info.kwargs["tools"] == [ask_churn_analyst] and info.kwargs["tool_choice"] == "any"


async def test_stream_falls_back_silently_before_the_first_token() -> None:
    recorder = Recorder()
    first = provider(
        "anthropic",
        "claude-sonnet-4-5",
        [AIMessageChunk("", response_metadata={"model_name": "x"}), OVERLOADED],
    )
    second = provider("anthropic", "claude-sonnet-4-5", chunks("C000", "17"))
    chain = ProviderChain(providers=[first, second])
    parts = [c async for c in chain.astream(QUESTION, config={"callbacks": [recorder]})]
    text = "".join(p.text for p in parts)
    assert text == "C00017"
    assert "".join(recorder.tokens) == "C00017"  # once each: the provider's own callbacks are off
    assert len({p.id for p in parts}) == 1  # one message id for the whole stream
    merged = parts[0]
    for part in parts[1:]:
        merged += part
    meta = merged.response_metadata
    assert merged.usage_metadata == {"input_tokens": 7, "output_tokens": 3, "total_tokens": 10}
    assert meta["model_name"] == "claude-sonnet-4-5-20250929" and meta["provider"] == "anthropic"
    assert Decimal(meta["cost_usd"]) > 0 and meta["stop_reason"] == "end_turn"
    assert [a["error"] is None for a in meta["attempts"]] == [False, True]
    assert parts[-1].chunk_position == "last" and parts[-1].usage_metadata == merged.usage_metadata


async def test_stream_without_content_falls_back() -> None:
    chain = ProviderChain(
        providers=[provider("openai", "gpt", chunks()), provider("local", "qwen", chunks("ok"))]
    )
    parts = [c async for c in chain.astream(QUESTION)]
    assert parts[-1].response_metadata["provider"] == "local"


async def test_failure_after_the_first_token_restarts_on_the_next_provider() -> None:
    recorder = Recorder()
    broken = [AIMessageChunk("C0"), OVERLOADED]
    chain = ProviderChain(
        providers=[
            provider("anthropic", "claude", broken),
            provider("local", "qwen", chunks("ok")),
        ],
        streaming=True,
    )
    message = await chain.ainvoke(QUESTION, config={"callbacks": [recorder]})
    assert message.text == "ok" and message.response_metadata["provider"] == "local"
    assert "".join(recorder.tokens) == "C0ok"  # the client saw the partial, then was told
    fallbacks = [data for name, data in recorder.events if name == "model_fallback"]
    assert fallbacks == [
        {
            "from_provider": "anthropic",
            "from_model": "claude",
            "error": fallbacks[0]["error"],
            "discard_partial": True,
            "to_provider": "local",
            "to_model": "qwen",
        }
    ]
    assert "OverloadedError" in fallbacks[0]["error"]
    assert [a["status"] for a in message.response_metadata["attempts"]] == ["error", "success"]


async def test_astream_restarts_on_the_next_provider_after_a_mid_stream_failure() -> None:
    broken = [AIMessageChunk("C0"), OVERLOADED]
    chain = ProviderChain(
        providers=[provider("anthropic", "claude", broken), provider("local", "qwen", chunks("ok"))]
    )
    received = [part.text async for part in chain.astream(QUESTION)]
    assert "".join(received) == "C0ok"


async def test_a_stream_cut_without_a_finish_reason_is_a_failure() -> None:
    cut = [AIMessageChunk("C0"), AIMessageChunk("00")]  # ends without stop/finish reason
    chain = ProviderChain(
        providers=[provider("anthropic", "claude", cut), provider("local", "qwen", chunks("ok"))],
        streaming=True,
    )
    message = await chain.ainvoke(QUESTION)
    assert message.text == "ok"
    assert "cut short" in message.response_metadata["attempts"][0]["error"]


async def test_a_stalled_stream_times_out_and_falls_back() -> None:
    stalled = [AIMessageChunk("C0"), Pause(1.5), AIMessageChunk("never")]
    chain = ProviderChain(
        providers=[provider("openai", "gpt", stalled), provider("local", "qwen", chunks("ok"))],
        settings=Settings(first_byte_timeout_s=0.2, _env_file=None),
        streaming=True,
    )
    message = await chain.ainvoke(QUESTION)
    attempt = message.response_metadata["attempts"][0]
    assert message.text == "ok" and "TimeoutError" in attempt["error"]
    assert 0.2 <= attempt["latency_s"] < 2


async def test_a_hung_call_times_out_after_request_timeout_s() -> None:
    chain = ProviderChain(
        providers=[provider("openai", "gpt", Pause(1.5)), provider("local", "qwen", answer("ok"))],
        settings=Settings(request_timeout_s=0.2, _env_file=None),
    )
    message = await chain.ainvoke(QUESTION)
    assert message.text == "ok"
    assert "TimeoutError" in message.response_metadata["attempts"][0]["error"]


def rate_limited(retry_after: str) -> openai.RateLimitError:
    response = httpx2.Response(429, request=REQUEST, headers={"retry-after": retry_after})
    return openai.RateLimitError("slow down", response=response, body=None)


async def test_retry_after_that_fits_the_budget_retries_the_same_model() -> None:
    recorder = Recorder()
    first = provider("openai", "gpt-4.1-mini", rate_limited("0.05"), answer("ok"))
    second = provider("local", "qwen", answer("never"))
    message = await ProviderChain(providers=[first, second]).ainvoke(
        QUESTION, config={"callbacks": [recorder]}
    )
    assert message.response_metadata["provider"] == "openai" and seen(second) == []
    attempts = [data for name, data in recorder.events if name == "model_attempt"]
    assert [(a.model_requested, a.status) for a in attempts] == [
        ("gpt-4.1-mini", "error"),
        ("gpt-4.1-mini", "success"),
    ]
    assert [a.wire() for a in attempts] == message.response_metadata["attempts"]
    assert not [name for name, _ in recorder.events if name == "model_fallback"]


async def test_retry_after_beyond_the_budget_moves_on_at_once() -> None:
    first = provider("openai", "gpt-4.1-mini", rate_limited("60"))
    second = provider("local", "qwen", answer("ok"))
    started = asyncio.get_running_loop().time()
    message = await ProviderChain(providers=[first, second]).ainvoke(QUESTION)
    assert message.response_metadata["provider"] == "local"
    assert asyncio.get_running_loop().time() - started < 1
    assert len(seen(first)) == 1


async def test_each_attempt_is_a_ledger_row_event() -> None:
    recorder = Recorder()
    chain = ProviderChain(
        providers=[
            provider("anthropic", "claude-sonnet-4-5", OVERLOADED),
            provider("openai", "gpt-4.1-mini", answer("ok", input_tokens=2000, output_tokens=100)),
        ]
    )
    await chain.ainvoke(QUESTION, config={"callbacks": [recorder]})
    failed, answered = [data for name, data in recorder.events if name == "model_attempt"]
    assert failed.status == "error" and failed.cost_usd is None
    assert failed.input_tokens is None and failed.model_used is None
    assert answered.status == "success" and answered.input_tokens == 2000
    assert answered.output_tokens == 100 and answered.cost_usd is not None
    assert answered.cost_usd > 0
    assert answered.price_source is not None and answered.price_source.startswith("genai-prices ")
    assert len(answered.id) == 32


async def test_an_open_breaker_skips_its_model_but_never_the_last() -> None:
    breaker = LocalBreaker(failures=2, cooldown=60)
    first = provider("anthropic", "claude", OVERLOADED, OVERLOADED)
    last = provider("local", "qwen", ProviderError("x"), ProviderError("y"), answer("ok"))
    chain = ProviderChain(providers=[first, last], breaker=breaker)
    for _ in range(2):
        with pytest.raises(AllProvidersFailedError):
            await chain.ainvoke(QUESTION)
    message = await chain.ainvoke(QUESTION)  # anthropic is open: skipped; local is tried
    assert [a["provider"] for a in message.response_metadata["attempts"]] == ["local"]
    assert len(seen(first)) == 2


async def test_a_route_picks_and_orders_the_links() -> None:
    links = [
        provider("anthropic", "claude-sonnet-4-5", answer("sonnet")),
        Provider(
            "anthropic",
            "claude-haiku-4-5",
            FunctionChatModel(function=in_order(answer("haiku"))),
            False,
        ),
        provider("local", "qwen", answer("local")),
    ]
    chain = ProviderChain(providers=links)
    with use_route(["anthropic/claude-haiku-4-5", "local/qwen"]):
        assert (await chain.ainvoke(QUESTION)).text == "haiku"
    assert (await chain.ainvoke(QUESTION)).text == "sonnet"  # default links: haiku is not one
    with use_route(["openai/gpt"]), pytest.raises(NoProviderError, match="names no configured"):
        await chain.ainvoke(QUESTION)


def test_sync_calls_are_refused_with_a_clear_error() -> None:
    chain = ProviderChain(providers=[provider("local", "q", answer("ok"))])
    with pytest.raises(NotImplementedError, match="ainvoke"):
        chain.invoke(QUESTION)


async def test_programming_error_mid_stream_propagates_as_is() -> None:
    chain = ProviderChain(
        providers=[provider("anthropic", "claude", [AIMessageChunk("C0"), KeyError("bug")])]
    )
    with pytest.raises(KeyError):
        [c async for c in chain.astream(QUESTION)]


async def test_all_streams_failing_raise_all_providers_failed() -> None:
    chain = ProviderChain(
        providers=[
            provider("anthropic", "c", OVERLOADED),
            provider("local", "q", [ProviderError("x")]),
        ]
    )
    with pytest.raises(AllProvidersFailedError):
        [c async for c in chain.astream(QUESTION)]


async def test_langgraph_message_stream_sees_each_token_once() -> None:
    chain = ProviderChain(
        providers=[
            provider("anthropic", "c", OVERLOADED),
            provider("local", "qwen", chunks("C000", "17")),
        ]
    )

    async def node(state: MessagesState) -> dict[str, list[Any]]:
        return {"messages": [await chain.ainvoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("coordinator", node)
    graph.add_edge(START, "coordinator")
    streamed = [
        m.text
        async for m, _ in graph.compile().astream({"messages": QUESTION}, stream_mode="messages")
    ]
    assert "".join(streamed) == "C00017"
    assert [t for t in streamed if t] == ["C000", "17"]


async def test_fallback_event_reaches_astream_events_from_a_streamed_call() -> None:
    chain = ProviderChain(
        providers=[provider("anthropic", "c", OVERLOADED), provider("local", "qwen", chunks("ok"))]
    )

    async def step(messages: list[Any]) -> str:
        return "".join([c.text async for c in chain.astream(messages)])

    events = [e async for e in RunnableLambda(step).astream_events(QUESTION, version="v2")]
    custom = [e for e in events if e["name"] == "model_fallback"]
    assert [(e["name"], e["data"]["to_provider"]) for e in custom] == [("model_fallback", "local")]


def test_construction_is_cheap_and_providers_are_built_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built: list[int] = []

    def fake_build(settings: Any) -> list[Provider]:
        built.append(1)
        return [provider("local", "qwen", answer("a"), answer("b"), answer("c"), answer("d"))]

    monkeypatch.setattr(chain_module, "build_providers", fake_build)
    chain = ProviderChain()
    assert built == []
    threads = [threading.Thread(target=chain.resolved_providers) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert built == [1]


async def test_async_first_call_builds_providers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        chain_module,
        "build_providers",
        lambda s: [provider("local", "q", answer("a"), answer("b"))],
    )
    chain = ProviderChain()
    replies = await asyncio.gather(chain.ainvoke(QUESTION), chain.ainvoke(QUESTION))
    assert sorted(r.text for r in replies) == ["a", "b"]


def test_an_empty_provider_list_is_refused() -> None:
    with pytest.raises(NoProviderError):
        ProviderChain(providers=[]).resolved_providers()


async def test_a_prompt_beyond_max_input_tokens_is_refused_before_any_call() -> None:
    first = provider("anthropic", "claude", answer("never"))
    chain = ProviderChain(
        providers=[first], settings=Settings(max_input_tokens=1024, _env_file=None)
    )
    assert (await chain.ainvoke([HumanMessage("x" * 900)])).text == "never"
    with pytest.raises(InvalidInputError, match="max_input_tokens=1024"):
        await chain.ainvoke([HumanMessage("x" * 1100)])
    with pytest.raises(InvalidInputError, match="^messages: "):
        await chain.ainvoke([HumanMessage("é" * 600)])  # 1200 bytes: a token per byte at most
    assert len(seen(first)) == 1
