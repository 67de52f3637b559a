"""The provider chain's fault matrix, over the real SDKs and the wire-level fake providers.

Each fault of the first link, for a plain ``ainvoke`` and a streaming chain's ``ainvoke``
(tokens and events reach the caller's callback handler), for each provider first in the
chain: the next link (or the same one, after a ``Retry-After`` that fits the wait budget)
answers; the requests, the ``model_attempt`` ledger events (tokens, genai-prices USD,
latency), the ``model_fallback`` events (``discard_partial``) and the text the client saw
are checked. Malformed SSE exists only on streamed calls. Then plain ``astream``, and all
links failing, with one ledger row per attempt written to SQLite.
"""

import gc
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import reduce
from operator import add
from pathlib import Path
from typing import Any

import genai_prices
import pytest
from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.messages import AIMessageChunk
from langchain_core.runnables import RunnableConfig, RunnableLambda
from sqlalchemy import select

from aimesh.billing.ledger import Ledger, RunContext
from aimesh.config import Settings
from aimesh.errors import AllProvidersFailedError
from aimesh.events import MODEL_ATTEMPT, EventName
from aimesh.llm.attempt import ModelAttempt
from aimesh.llm.chain import ProviderChain
from aimesh.store.database import Database
from aimesh.store.tables import LedgerEntry
from tests.wire.fake_providers import PARTIAL, FakeProviders, Fault, Reply

PROVIDERS = ["anthropic", "openai", "google"]
MODELS = {"anthropic": "claude-sonnet-4-6", "openai": "gpt-4.1-mini", "google": "gemini-2.5-flash"}
# Dated variants as the providers report them; genai-prices knows each (it has no price for
# the fake's default "gpt-4.1-mini-2025-01-01").
REPORTED = {
    "anthropic": "claude-sonnet-4-6-20250101",
    "openai": "gpt-4.1-mini-2025-04-14",
    "google": "gemini-2.5-flash",
}
FIRST_BYTE = 0.5  # seconds: the settings' first_byte_timeout_s (the fixture's default)
HANG = 2.0  # seconds a hanging fake stalls before it closes the connection
QUESTION = "Which clients may churn?"
ANSWER = "Three clients are at high churn risk."
# Gemini sends usageMetadata with every chunk, so a broken stream has reported usage;
# langchain-anthropic reports usage only from message_delta, OpenAI only in the last chunk.
USAGE_IN_EVERY_CHUNK = {"google"}
USAGE = Reply(ANSWER, input_tokens=1200, output_tokens=80, cached_tokens=1000, reasoning_tokens=30)
REPLIES = {name: replace(USAGE, model=model) for name, model in REPORTED.items()}


@pytest.fixture(autouse=True)
def no_gc_pauses() -> Iterator[None]:
    """No cyclic GC during a test: on this process's heap a full collection takes 0.3-0.7 s
    (measured), longer than the 0.5 s first-byte timeout the chain's attempts run under."""
    gc.disable()
    yield
    gc.enable()


@dataclass(frozen=True)
class Case:
    """A fault of the first link and what the chain must make of it.

    Attributes:
        fault: The scripted fault.
        error: Regex the failed attempt's ``error`` must match (the failure's class).
        retried: Retry-After fits the wait budget: the same link answers a second request.
        hang: The fake stalls: the attempt ends by a timeout.
        partial: A stream sends tokens before it fails.
        stream_only: The fault exists only on streamed calls.
    """

    fault: Fault
    error: str
    retried: bool = False
    hang: bool = False
    partial: bool = False
    stream_only: bool = False


RATE_LIMITED = r"RateLimitError.*\b429\b"
CASES = {
    "429": Case(Fault.http(429), RATE_LIMITED),
    "429-retry-after-fits": Case(Fault.http(429, retry_after=0.2), RATE_LIMITED, retried=True),
    "429-retry-after-60s": Case(Fault.http(429, retry_after=60), RATE_LIMITED),
    "500": Case(Fault.http(500), r"Error.*\b500\b"),
    "503": Case(Fault.http(503), r"Error.*\b503\b"),
    "529": Case(Fault.http(529), r"Error.*\b529\b"),
    "hang-before-headers": Case(Fault.hang_before_headers(HANG), "Timeout", hang=True),
    "hang-mid-stream": Case(Fault.hang_mid_stream(HANG), "Timeout", hang=True, partial=True),
    "reset": Case(Fault.reset(), "Connection"),
    "malformed-json": Case(Fault.malformed_json(), r"JSON|No generation chunks"),
    "malformed-sse": Case(Fault.malformed_sse(), "JSON", partial=True, stream_only=True),
    "cut-stream": Case(
        Fault.cut_stream(), r"Connection|peer closed|payload is not completed", partial=True
    ),
}


def matrix() -> list[Any]:
    """Every (fault, mode, first provider) cell."""
    cells = []
    for name, case in CASES.items():
        for mode in ["invoke", "stream"][case.stream_only :]:
            for first in PROVIDERS:
                cell = (name, mode, first)
                cells.append(pytest.param(*cell, id="-".join(cell)))
    return cells


class Client(AsyncCallbackHandler):
    """What the chain's caller sees: its events in order, and the text streamed to it.

    ``text`` is what was streamed since the last ``discard_partial`` fallback; each
    discarded text is kept in ``discarded``.
    """

    raise_error = True  # a failed check in a callback fails the test

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.discarded: list[str] = []
        self.text = ""

    async def on_custom_event(self, name: str, data: Any, **kwargs: Any) -> None:
        self.events.append((name, data))
        if name == EventName.MODEL_FALLBACK and data["discard_partial"]:
            self.discarded.append(self.text)
            self.text = ""

    async def on_llm_new_token(self, token: str | list[Any], **kwargs: Any) -> None:
        assert isinstance(token, str), token  # text answers stream as strings
        self.text += token

    def of(self, name: str) -> list[Any]:
        return [data for event, data in self.events if event == name]


def rotated(first: str) -> list[str]:
    """The three providers in chain order, starting with ``first``."""
    index = PROVIDERS.index(first)
    return PROVIDERS[index:] + PROVIDERS[:index]


def settings(fake: FakeProviders, home: Path, order: list[str]) -> Settings:
    models = {f"{name}_models": [MODELS[name]] for name in PROVIDERS}
    return fake.settings(home, providers=order, first_byte_timeout_s=FIRST_BYTE, **models)


def price(provider: str, model: str, answer: Reply) -> Decimal:
    """genai-prices' price of ``answer`` (USD)."""
    usage = genai_prices.Usage(
        input_tokens=answer.input_tokens,
        output_tokens=answer.output_tokens,
        cache_read_tokens=answer.cached_tokens,
    )
    return genai_prices.calc_price(usage, model_ref=model, provider_id=provider).total_price


def assert_usage(attempt: ModelAttempt, model: str, answer: Reply | None) -> None:
    """Tokens and USD of an attempt: ``answer``'s as its protocol carries them, or None."""
    tokens = [getattr(attempt, f"{k}_tokens") for k in ("input", "output", "cached", "reasoning")]
    cost = attempt.cost_usd
    if answer is None:
        assert tokens == [None] * 4 and cost is None and attempt.price_source is None
        return
    # A zero reasoning count is omitted by the Anthropic and Gemini integrations.
    reasoning = answer.reasoning_tokens or (0 if attempt.provider == "openai" else None)
    assert tokens == [answer.input_tokens, answer.output_tokens, answer.cached_tokens, reasoning]
    assert cost == price(attempt.provider, model, answer)
    assert attempt.price_source == f"genai-prices {genai_prices.__version__}"


def assert_failed(attempt: ModelAttempt, case: Case, provider: str, streamed: bool) -> None:
    assert (attempt.provider, attempt.model_requested) == (provider, MODELS[provider])
    assert attempt.status == "error" and attempt.streamed is streamed
    assert re.search(case.error, attempt.error), attempt.error
    assert attempt.model_used in (None, REPORTED[provider])
    usage = streamed and case.partial and provider in USAGE_IN_EVERY_CHUNK
    assert_usage(attempt, attempt.model_used or MODELS[provider], PARTIAL if usage else None)
    floor = FIRST_BYTE if case.hang else 0.0
    assert floor <= attempt.latency_s < HANG  # the chain, not the server, ended it


def assert_answered(attempt: ModelAttempt, provider: str, streamed: bool) -> None:
    assert (attempt.provider, attempt.model_requested) == (provider, MODELS[provider])
    assert (attempt.status, attempt.error, attempt.streamed) == ("success", None, streamed)
    assert attempt.model_used == REPORTED[provider]
    assert_usage(attempt, REPORTED[provider], REPLIES[provider])
    assert 0 < attempt.latency_s < HANG


@pytest.mark.parametrize(("name", "mode", "first"), matrix())
async def test_a_fault_moves_the_call_on_and_is_accounted(
    fake_providers: FakeProviders, tmp_path: Path, name: str, mode: str, first: str
) -> None:
    case, streamed, order = CASES[name], mode == "stream", rotated(first)
    answering = first if case.retried else order[1]
    fake_providers.script(first, case.fault)
    fake_providers.script(answering, REPLIES[answering])
    chain = ProviderChain(settings=settings(fake_providers, tmp_path, order), streaming=streamed)
    client = Client()

    answer = await chain.ainvoke(QUESTION, config={"callbacks": [client]})

    assert answer.text == ANSWER
    metadata = answer.response_metadata
    assert (metadata["provider"], metadata["model_name"]) == (answering, REPORTED[answering])
    requests = {p: fake_providers.requests(p) for p in PROVIDERS}
    expected = {p: 0 for p in PROVIDERS} | {first: 1} | {answering: 1 + case.retried}
    assert {p: len(r) for p, r in requests.items()} == expected
    assert all(r.stream is streamed for r in fake_providers.requests())
    if case.retried:
        assert requests[first][1].at - requests[first][0].at >= 0.2  # Retry-After honoured

    names = [event for event, _ in client.events]
    between = [] if case.retried else [EventName.MODEL_FALLBACK]
    assert names == [MODEL_ATTEMPT, *between, MODEL_ATTEMPT]
    failed, answered = attempts = client.of(MODEL_ATTEMPT)
    assert_failed(failed, case, first, streamed)
    assert_answered(answered, answering, streamed)
    assert metadata["attempts"] == [attempt.wire() for attempt in attempts]
    assert metadata["cost_usd"] == str(answered.cost_usd)
    assert failed.at <= answered.at

    partial = streamed and case.partial
    if not case.retried:
        [fallback] = client.of(EventName.MODEL_FALLBACK)
        assert fallback == {
            "from_provider": first,
            "from_model": MODELS[first],
            "error": failed.error,
            "to_provider": answering,
            "to_model": MODELS[answering],
            "discard_partial": partial,
        }
    assert client.text == (ANSWER if streamed else "")
    if partial:  # the client saw a beginning of the failed answer, never all of it
        [seen] = client.discarded
        assert seen and PARTIAL.text.startswith(seen) and seen != PARTIAL.text
    else:
        assert client.discarded == []


async def stream(chain: ProviderChain, client: Client) -> list[AIMessageChunk]:
    """``chain.astream`` of the question inside a run, as a LangGraph node calls it (a bare
    ``astream`` has no run to carry the chain's events: see ProviderChain)."""

    async def chunks(question: str) -> list[AIMessageChunk]:
        return [chunk async for chunk in chain.astream(question, RunnableConfig())]

    return await RunnableLambda(chunks).ainvoke(QUESTION, {"callbacks": [client]})


async def test_astream_restarts_after_a_cut_stream(
    fake_providers: FakeProviders, tmp_path: Path
) -> None:
    fake_providers.script("anthropic", Fault.cut_stream())
    fake_providers.script("openai", REPLIES["openai"])
    chain = ProviderChain(settings=settings(fake_providers, tmp_path, PROVIDERS))
    client = Client()

    chunks = await stream(chain, client)

    assert "".join(chunk.text for chunk in chunks) == "".join(client.discarded) + client.text
    [fallback] = client.of(EventName.MODEL_FALLBACK)
    assert (fallback["to_provider"], fallback["discard_partial"]) == ("openai", True)
    assert client.text == ANSWER
    [seen] = client.discarded
    assert seen and PARTIAL.text.startswith(seen) and seen != PARTIAL.text
    merged = reduce(add, chunks)
    assert merged.response_metadata["provider"] == "openai"
    assert merged.usage_metadata is not None and merged.usage_metadata["input_tokens"] == 1200
    failed, answered = client.of(MODEL_ATTEMPT)
    assert_failed(failed, CASES["cut-stream"], "anthropic", streamed=True)
    assert_answered(answered, "openai", streamed=True)


async def test_all_links_failing_raises_and_every_attempt_is_a_ledger_row(
    fake_providers: FakeProviders, tmp_path: Path
) -> None:
    fake_providers.script("anthropic", Fault.http(503), Fault.http(429))
    fake_providers.script("openai", Fault.hang_before_headers(HANG), REPLIES["openai"])
    fake_providers.script("google", Fault.cut_stream())
    chain = ProviderChain(settings=settings(fake_providers, tmp_path, PROVIDERS), streaming=True)
    client = Client()

    with pytest.raises(AllProvidersFailedError) as caught:
        await chain.ainvoke(QUESTION, config={"callbacks": [client]})
    await chain.ainvoke(QUESTION, config={"callbacks": [client]})  # 429, then openai answers

    attempts = client.of(MODEL_ATTEMPT)
    assert caught.value.attempts == attempts[:3]
    for attempt, case in zip(
        attempts[:3], ("503", "hang-before-headers", "cut-stream"), strict=True
    ):
        assert_failed(attempt, CASES[case], attempt.provider, streamed=True)
        listed = f"{attempt.provider}/{attempt.model_requested}: {attempt.error}"
        assert f"{listed} after {attempt.latency_s:.2f}s" in str(caught.value)
    assert attempts[2].cost_usd is not None  # Gemini reported the broken stream's usage
    assert_failed(attempts[3], CASES["429"], "anthropic", streamed=True)
    assert_answered(attempts[4], "openai", streamed=True)
    assert [
        (f["from_provider"], f["to_provider"]) for f in client.of(EventName.MODEL_FALLBACK)
    ] == [
        ("anthropic", "openai"),
        ("openai", "google"),
        ("anthropic", "openai"),
    ]

    database = Database(f"sqlite+aiosqlite:///{tmp_path}/l.sqlite")
    await database.migrate()
    context = RunContext("acme", "net-a", "task-1", "key-1", "alice")
    try:
        ledger = Ledger(database.engine)
        for attempt in attempts:
            await ledger.record(attempt, context, agent="coordinator")
        async with database.sessions() as session:
            rows = {row.id: row for row in await session.scalars(select(LedgerEntry))}
    finally:
        await database.close()
    assert rows.keys() == {attempt.id for attempt in attempts}
    for attempt in attempts:
        row = rows[attempt.id]
        written = {key: getattr(row, key) for key in ModelAttempt.model_fields}
        assert written == attempt.model_dump()
        assert (row.tenant, row.task_id, row.agent) == ("acme", "task-1", "coordinator")
