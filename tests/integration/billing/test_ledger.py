"""The model-call ledger on SQLite and PostgreSQL: rows written whole or not at all,
append-only, exact USD aggregates per period and tenant, and attempts reaching it from a run's
callbacks with their agent."""

import asyncio
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.tools import tool
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from aimesh.billing.ledger import (
    Ledger,
    LedgerFilter,
    ModelHistory,
    RunContext,
    TokenCounts,
    cost_totals,
    model_history,
    usage_per_model,
)
from aimesh.errors import LedgerPayloadError
from aimesh.events import MODEL_ATTEMPT
from aimesh.graphs.events import DELEGATE_KEY, Event, EventRecorder
from aimesh.llm.attempt import ModelAttempt
from aimesh.store.database import Database
from aimesh.store.tables import LedgerEntry
from tests.attempts import T0, attempt, failure
from tests.fakes import NO_TOOLS, CallInfo, FunctionChatModel, ModelFunction, by_role, dispatch

ACME = RunContext("acme", "net-a", "task-1", "key-1", "alice")


async def rows(db: Database) -> list[LedgerEntry]:
    async with db.sessions() as session:
        return list(await session.scalars(select(LedgerEntry).order_by(LedgerEntry.at)))


async def count(db: Database) -> int:
    async with db.engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(LedgerEntry)) or 0)


async def test_an_attempt_is_written_with_its_run_context(db: Database) -> None:
    ledger = Ledger(db.engine)
    ok = attempt(at=T0, cost_usd=Decimal("0.000123456789012345"))
    half_past_one = datetime.fromisoformat("2026-03-01T13:30:00.250000+01:30")
    failed = failure(at=half_past_one)  # 12:00:00.25 UTC
    await ledger.record(ok, ACME, agent="churn_analyst")
    await ledger.record(failed, ACME, agent="coordinator", tool="ask_churn_analyst")

    first, second = await rows(db)
    assert first.at == T0 and first.at.tzinfo is not None
    assert first.cost_usd == Decimal("0.000123456789012345")  # every digit kept
    assert (first.tenant, first.network_id, first.task_id, first.key_id, first.user_id) == (
        "acme",
        "net-a",
        "task-1",
        "key-1",
        "alice",
    )
    assert (first.agent, first.tool) == ("churn_analyst", None)
    assert (first.provider, first.model_requested, first.model_used) == (
        "openai",
        "gpt-4.1-mini",
        "gpt-4.1-mini-2025-04-14",
    )
    assert (first.input_tokens, first.output_tokens, first.cached_tokens) == (1200, 300, 1000)
    assert first.reasoning_tokens is None
    assert (first.status, first.error, first.streamed) == ("success", None, True)
    assert (first.price_source, first.latency_s) == ("genai-prices 0.0.40", 0.75)

    assert second.at == T0 + timedelta(milliseconds=250)
    assert (second.status, second.error) == ("error", "APIStatusError: Error code: 503")
    assert second.cost_usd is None and second.input_tokens is None  # unknown, not 0
    assert (second.agent, second.tool) == ("coordinator", "ask_churn_analyst")


async def test_concurrent_attempts_are_all_written(db: Database) -> None:
    ledger = Ledger(db.engine)
    payloads = [attempt(latency_s=i / 10) for i in range(30)]
    await asyncio.gather(*(ledger.record(p, ACME, agent="coordinator") for p in payloads))
    assert sorted(r.id for r in await rows(db)) == sorted(p.id for p in payloads)


async def test_the_ledger_refuses_updates(db: Database) -> None:
    await Ledger(db.engine).record(attempt(), ACME)
    with pytest.raises(DBAPIError, match="append-only"):
        async with db.sessions.begin() as session:
            await session.execute(update(LedgerEntry).values(cost_usd=Decimal("0")))
    with pytest.raises(DBAPIError, match="append-only"):
        async with db.sessions.begin() as session:
            row = await session.scalar(select(LedgerEntry))
            assert row is not None
            row.tenant = "someone-else"
    (row,) = await rows(db)
    assert (row.tenant, row.cost_usd) == ("acme", Decimal("0.00093"))
    async with db.sessions.begin() as session:  # retention may delete old rows
        await session.execute(delete(LedgerEntry))
    assert await count(db) == 0


TOO_LONG = {
    "model_requested": {"model_requested": "m" * 101},
    "model_used": {"model_used": "m" * 101},
    "price_source": {"price_source": "genai-prices " + "9" * 60},
}


@pytest.mark.parametrize("field", TOO_LONG)
async def test_a_value_longer_than_its_column_is_refused_naming_it_and_writes_nothing(
    db: Database, field: str
) -> None:
    with pytest.raises(LedgerPayloadError, match=rf"\b{field}\b"):
        await Ledger(db.engine).record(attempt(**TOO_LONG[field]), ACME, agent="coordinator")
    assert await count(db) == 0


async def test_a_bad_row_among_concurrent_ones_fails_alone(db: Database) -> None:
    ledger = Ledger(db.engine)
    good = [attempt() for _ in range(5)]
    taken = attempt(id=good[0].id)  # valid attempt, but its id is written already
    too_long = attempt(**TOO_LONG["model_used"])
    await ledger.record(good[0], ACME)
    outcomes = await asyncio.gather(
        *(ledger.record(p, ACME) for p in [*good[1:], taken, too_long]),
        return_exceptions=True,
    )
    assert outcomes[:4] == [None] * 4
    assert isinstance(outcomes[4], IntegrityError)
    assert isinstance(outcomes[5], LedgerPayloadError)
    assert sorted(r.id for r in await rows(db)) == sorted(p.id for p in good)


async def test_an_overlong_agent_name_is_refused(db: Database) -> None:
    with pytest.raises(LedgerPayloadError, match="agent"):
        await Ledger(db.engine).record(attempt(), ACME, agent="a" * 41)
    assert await count(db) == 0


# --- aggregates ----------------------------------------------------------------------------

BOB = RunContext("acme", "net-b", "task-2", "key-2", "bob")
OTHER = RunContext("globex", "net-g", "task-3", "key-3", "gina")


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


LOCAL = {
    "provider": "local",
    "model_requested": "qwen",
    "model_used": "qwen",
    "cost_usd": Decimal(0),
}
SONNET = {"provider": "anthropic", "model_requested": "claude-sonnet-4-5"}
CALLS: list[tuple[RunContext, ModelAttempt]] = [
    (ACME, attempt(at=at(0), cost_usd=Decimal("0.000012"), latency_s=0.5)),
    (ACME, attempt(at=at(1), cost_usd=Decimal("0.1000005"), latency_s=1.5, reasoning_tokens=7)),
    (ACME, failure(at=at(2), latency_s=0.25)),  # failed, no tokens: costs 0
    (BOB, attempt(at=at(3), cost_usd=Decimal("0.3"), latency_s=2.0)),
    (BOB, attempt(at=at(4), **LOCAL, latency_s=4.0)),
    (BOB, attempt(at=at(5), **SONNET, cost_usd=None, latency_s=1.0)),  # price unknown
    # failed mid-stream after the provider billed tokens, priced by the chain
    (
        ACME,
        failure(at=at(6), **SONNET, input_tokens=50, output_tokens=5, cost_usd=Decimal("0.000225")),
    ),
    (ACME, failure(at=at(7), **SONNET, input_tokens=50, output_tokens=9, cost_usd=None)),
    (OTHER, attempt(at=at(1), cost_usd=Decimal("9.99"))),  # another tenant
]


async def write_calls(db: Database) -> None:
    ledger = Ledger(db.engine)
    for context, payload in CALLS:
        await ledger.record(payload, context, agent="coordinator")


async def test_cost_totals_are_exact_per_model_user_and_network(db: Database) -> None:
    await write_calls(db)
    async with db.sessions() as session:
        totals = await cost_totals(session, LedgerFilter("acme"))
    mini, sonnet = "openai/gpt-4.1-mini", "anthropic/claude-sonnet-4-5"
    assert totals.per_model == {
        mini: Decimal("0.4000125"),
        "local/qwen": Decimal(0),
        sonnet: Decimal("0.000225"),
    }
    assert totals.total_usd == Decimal("0.4002375")
    assert (totals.calls, totals.calls_with_unknown_cost) == (8, 2)
    assert totals.unknown_per_model == {sonnet: 2}
    assert totals.per_user == {"alice": Decimal("0.1002375"), "bob": Decimal("0.3")}
    assert totals.per_network == {"net-a": Decimal("0.1002375"), "net-b": Decimal("0.3")}

    async with db.sessions() as session:
        window = await cost_totals(
            session,
            LedgerFilter("acme", since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=4)),
        )
        other = await cost_totals(session, LedgerFilter("globex"))
        nobody = await cost_totals(session, LedgerFilter("initech"))
    assert window.per_model == {mini: Decimal("0.4000005")}  # at(1), at(2), at(3)
    assert (window.calls, window.calls_with_unknown_cost) == (3, 0)
    assert (other.total_usd, other.per_user) == (Decimal("9.99"), {"gina": Decimal("9.99")})
    assert (nobody.total_usd, nobody.calls, nobody.per_model) == (Decimal(0), 0, {})


async def test_usage_per_model_counts_failures_latency_and_reported_tokens(db: Database) -> None:
    await write_calls(db)
    async with db.sessions() as session:
        usage = await usage_per_model(session, LedgerFilter("acme"))
        late = await usage_per_model(session, LedgerFilter("acme", since=T0 + timedelta(minutes=6)))
    assert list(usage) == ["anthropic/claude-sonnet-4-5", "local/qwen", "openai/gpt-4.1-mini"]
    mini = usage["openai/gpt-4.1-mini"]
    assert (mini.calls, mini.failures) == (4, 1)
    assert mini.mean_latency_s == pytest.approx((0.5 + 1.5 + 0.25 + 2.0) / 4)
    assert mini.tokens == TokenCounts(input=3600, output=900, cached=3000, reasoning=7)
    sonnet = usage["anthropic/claude-sonnet-4-5"]
    assert (sonnet.calls, sonnet.failures) == (3, 2)
    assert sonnet.tokens == TokenCounts(input=1300, output=314, cached=1000, reasoning=None)
    assert list(late) == ["anthropic/claude-sonnet-4-5"]
    assert (
        late["anthropic/claude-sonnet-4-5"].calls,
        late["anthropic/claude-sonnet-4-5"].failures,
    ) == (2, 2)


async def test_model_history_has_success_rate_and_median_latency(db: Database) -> None:
    await write_calls(db)
    async with db.sessions() as session:
        acme = await model_history(session, LedgerFilter("acme"))
        everyone = await model_history(session, LedgerFilter(None))
    assert acme["openai/gpt-4.1-mini"] == ModelHistory(
        provider="openai",
        model="gpt-4.1-mini",
        calls=4,
        failures=1,
        success_rate=0.75,
        median_latency_s=pytest.approx((0.5 + 1.5) / 2),  # 0.25 0.5 | 1.5 2.0
        mean_latency_s=pytest.approx(4.25 / 4),
    )
    assert acme["local/qwen"].median_latency_s == 4.0
    sonnet = acme["anthropic/claude-sonnet-4-5"]
    assert (sonnet.calls, sonnet.failures, sonnet.median_latency_s) == (3, 2, 0.75)
    assert everyone["openai/gpt-4.1-mini"].calls == 5  # globex's call too
    assert everyone["openai/gpt-4.1-mini"].median_latency_s == 0.75  # 0.25 0.5 0.75 1.5 2.0


# --- from a run's callbacks to the ledger --------------------------------------------------


def attempting(replies: list[AIMessage]) -> ModelFunction:
    """Replies in order, each call reported as one ``model_attempt``, as the chain does."""
    reply = by_role({NO_TOOLS: replies})

    async def function(messages: list[BaseMessage], info: CallInfo) -> AIMessage:
        answer = reply(messages, info)
        if info.run is not None:  # on the model's own run, as the chain dispatches it
            await dispatch(info.run, MODEL_ATTEMPT, attempt(**LOCAL))
        return answer

    return function


async def test_attempts_of_a_run_reach_the_ledger_with_their_agent_and_no_event(
    db: Database,
) -> None:
    replies = [AIMessage("top three"), AIMessage("done"), AIMessage("again")]
    model = FunctionChatModel(function=attempting(replies))

    @tool
    async def ask_churn_analyst(request: str) -> str:
        """Delegate to the churn analyst."""
        return (await model.ainvoke(request)).text

    ask_churn_analyst.metadata = {DELEGATE_KEY: "churn_analyst"}
    ledger = Ledger(db.engine)
    events: list[Event] = []
    writes: list[asyncio.Task[None]] = []

    def on_attempt(made: ModelAttempt, agent: str) -> None:
        writes.append(asyncio.create_task(ledger.record(made, ACME, agent=agent)))

    recorder = EventRecorder("task-1", events.append, on_attempt=on_attempt)
    config = {"callbacks": [recorder]}
    await ask_churn_analyst.ainvoke({"request": "top risks"}, config)
    await model.ainvoke("summarise", config)
    await asyncio.gather(*writes)

    assert [(r.agent, r.provider, r.cost_usd) for r in await rows(db)] == [
        ("churn_analyst", "local", Decimal(0)),
        ("coordinator", "local", Decimal(0)),
    ]
    assert [(e.event, e.agent, e.data["status"]) for e in events] == [
        ("agent", "churn_analyst", "started"),
        ("agent", "churn_analyst", "model_call"),
        ("agent", "churn_analyst", "finished"),
        ("agent", "coordinator", "model_call"),
    ]

    events.clear()
    silent = EventRecorder("cli", events.append)  # no attempt sink (the CLI): ignored
    assert (await model.ainvoke("again", {"callbacks": [silent]})).text == "again"
    assert [(e.event, e.data["status"]) for e in events] == [("agent", "model_call")]
    assert len(writes) == 2 and await count(db) == 2
