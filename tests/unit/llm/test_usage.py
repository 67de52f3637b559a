import threading
from decimal import Decimal
from uuid import uuid4

import httpx2
import openai
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage
from langchain_core.outputs import ChatGeneration, LLMResult

from aimesh.llm.chain import ProviderChain
from aimesh.llm.usage import UsageCallback, UsageTotals
from tests.fakes import answer, provider

QUESTION = [HumanMessage("hi")]


def chain_answer(
    cost: str | None, provider_name: str = "anthropic", model: str = "claude-sonnet-4-5"
) -> AIMessage:
    return AIMessage(
        "ok",
        usage_metadata={"input_tokens": 100, "output_tokens": 10, "total_tokens": 110},
        response_metadata={
            "provider": provider_name,
            "model_name": model,
            "cost_usd": cost,
            "attempts": [],
        },
    )


def end(callback: UsageCallback, *messages: AIMessage) -> None:
    callback.on_llm_end(
        LLMResult(generations=[[ChatGeneration(message=m)] for m in messages]), run_id=uuid4()
    )


def test_totals_add_tokens_cost_calls_and_models_in_order() -> None:
    callback = UsageCallback()
    end(callback, chain_answer("0.01"), chain_answer("0", "local", "qwen"), chain_answer("0.02"))
    totals = callback.totals
    assert (totals.input_tokens, totals.output_tokens, totals.calls) == (300, 30, 3)
    assert totals.cost_usd == Decimal("0.03")
    assert totals.models == ("anthropic/claude-sonnet-4-5", "local/qwen")


def test_one_unknown_price_makes_the_total_unknown() -> None:
    callback = UsageCallback()
    end(
        callback,
        chain_answer("0.01"),
        chain_answer(None, "openai", "my-vllm"),
        chain_answer("0.01"),
    )
    assert callback.totals.cost_usd is None and callback.totals.calls == 3


def test_other_models_are_ignored() -> None:
    callback = UsageCallback()
    end(
        callback,
        AIMessage(
            "plain", usage_metadata={"input_tokens": 5, "output_tokens": 5, "total_tokens": 10}
        ),
    )
    assert callback.totals == UsageTotals()


def test_totals_are_thread_safe() -> None:
    callback = UsageCallback()
    threads = [
        threading.Thread(target=lambda: [end(callback, chain_answer("0.001")) for _ in range(200)])
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert callback.totals.calls == 1600 and callback.totals.cost_usd == Decimal("1.600")


async def test_counts_chain_calls_once_including_fallbacks_and_streams() -> None:
    request = httpx2.Request("POST", "http://x")
    failure = openai.RateLimitError(
        "slow", response=httpx2.Response(429, request=request), body=None
    )
    reply = answer("ok", input_tokens=1000, output_tokens=100, model_name="claude-sonnet-4-5")
    chunks = [
        AIMessageChunk("streamed", response_metadata={"model_name": "claude-sonnet-4-5"}),
        AIMessageChunk(
            "",
            usage_metadata={"input_tokens": 1000, "output_tokens": 100, "total_tokens": 1100},
            response_metadata={"stop_reason": "end_turn"},
        ),
    ]
    chain = ProviderChain(
        providers=[
            provider("openai", "gpt-4.1-mini", failure, failure),
            provider("anthropic", "claude-sonnet-4-5", reply, chunks),
        ]
    )
    callback = UsageCallback()
    await chain.ainvoke(QUESTION, config={"callbacks": [callback]})
    [c async for c in chain.astream(QUESTION, config={"callbacks": [callback]})]
    totals = callback.totals
    assert (totals.calls, totals.input_tokens, totals.output_tokens) == (2, 2000, 200)
    assert totals.cost_usd == 2 * Decimal("0.0045") and totals.models == (
        "anthropic/claude-sonnet-4-5",
    )
