"""``/stats/cost`` and ``/stats/usage`` over HTTP, from the model-call ledger.

Tasks run through the real provider chain over scripted fake models: every provider attempt
(answered, fallen back from, of a failed or a cancelled run) is one ledger row with the
task's tenant, network, task, API key and user, and the statistics are exact sums of those
rows for the caller's tenant and period.
"""

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from statistics import fmean
from typing import Any

import pytest
from httpx_sse import aconnect_sse
from langchain_core.messages import AIMessage, BaseMessage
from pydantic import SecretStr
from sqlalchemy import select

from aimesh.config import ProviderName, Settings
from aimesh.errors import ProviderError
from aimesh.llm.chain import ProviderChain
from aimesh.llm.cost import price_usd
from aimesh.llm.providers import Provider
from aimesh.store.tables import LedgerEntry
from tests.fakes import USAGE, CallInfo, FunctionChatModel, Scripts, by_role
from tests.helpers.api import Running, key_id, serve
from tests.helpers.tasks import churn_script, new_network, submit, wait_done

MINI = "gpt-4.1-mini"
SONNET = "claude-sonnet-4-5"
MINI_KEY = f"openai/{MINI}"
SONNET_KEY = f"anthropic/{SONNET}"


@dataclass
class Reporting:
    """A fake model's function: it replies from ``scripts`` (``tests.fakes.by_role``),
    reporting ``reported`` as the model that answered (so the chain prices it with
    genai-prices), and fails its next ``failures`` calls with a provider error.
    """

    scripts: Scripts
    reported: str = MINI
    failures: int = 0

    def __call__(self, messages: list[BaseMessage], info: CallInfo) -> AIMessage | ProviderError:
        if self.failures:
            self.failures -= 1
            return ProviderError("HTTP 503 from the scripted provider")
        reply = by_role(self.scripts)(messages, info)
        assert isinstance(reply, AIMessage)
        reply.response_metadata = {**reply.response_metadata, "model_name": self.reported}
        return reply


Serve = Callable[..., contextlib.AbstractAsyncContextManager[Running]]


@pytest.fixture
def serve_chain(service_settings: Settings) -> Serve:
    """Serve the app with a provider chain of remote links (provider, model, fake), each
    provider configured with that one model, so that a task's default route is exactly them.
    """

    @contextlib.asynccontextmanager
    async def start(
        *links: tuple[ProviderName, str, Reporting], token_delay_s: float = 0.0
    ) -> AsyncIterator[Running]:
        configured: dict[str, Any] = {"providers": [name for name, _, _ in links]}
        for name, model, _ in links:
            configured |= {f"{name}_api_key": SecretStr("sk-test"), f"{name}_models": [model]}
        settings = service_settings.model_copy(update=configured)
        providers = [
            Provider(
                name,
                model,
                FunctionChatModel(function=reporting, streaming=True, token_delay_s=token_delay_s),
            )
            for name, model, reporting in links
        ]
        chain = ProviderChain(providers=providers, settings=settings, streaming=True)
        async with serve(settings, chain) as running:
            yield running

    return start


async def ledger_rows(api: Running, task_id: str | None = None) -> list[LedgerEntry]:
    """The ledger's rows (of one task), oldest attempt first."""
    query = select(LedgerEntry).order_by(LedgerEntry.at)
    if task_id is not None:
        query = query.where(LedgerEntry.task_id == task_id)
    async with api.app.state.services.db.sessions() as session:
        return list(await session.scalars(query))


def usd(figures: dict[str, str]) -> dict[str, Decimal]:
    return {name: Decimal(value) for name, value in figures.items()}


async def test_every_attempt_of_a_task_is_a_priced_row_and_the_stats_sum_them_exactly(
    serve_chain: Serve,
) -> None:
    async with serve_chain(("openai", MINI, Reporting(churn_script()))) as api:
        key = await api.key(tenant="acme", user_id="alice")
        async with api.client(key) as client:
            network = await new_network(client)
            task = await wait_done(client, await submit(client, network))
            assert task["status"] == "succeeded", task["error"]
            rows = await ledger_rows(api)
            cost = (await client.get("/stats/cost")).json()
            usage = (await client.get("/stats/usage")).json()

    unit = price_usd("openai", MINI, USAGE)  # type: ignore[arg-type]
    assert unit is not None and unit > 0
    assert [r.agent for r in rows] == ["coordinator", "churn_analyst", "coordinator"]
    for row in rows:
        context = (row.tenant, row.network_id, row.task_id, row.key_id, row.user_id)
        assert context == ("acme", network["id"], task["id"], key_id(key), "alice")
        assert (row.provider, row.model_requested, row.model_used) == ("openai", MINI, MINI)
        assert (row.status, row.error, row.streamed) == ("success", None, True)
        assert (row.input_tokens, row.output_tokens) == (10, 5)
        assert row.cost_usd == unit and row.price_source.startswith("genai-prices ")
        assert row.tool is None and row.latency_s >= 0
    assert Decimal(task["cost_usd"]) == 3 * unit

    assert Decimal(cost["total_cost_usd"]) == 3 * unit
    assert (cost["total_calls"], cost["calls_with_unknown_cost"]) == (3, 0)
    assert usd(cost["per_model"]) == {MINI_KEY: 3 * unit}
    assert usd(cost["per_user"]) == {"alice": 3 * unit}
    assert usd(cost["per_network"]) == {network["id"]: 3 * unit}
    assert cost["unknown_cost_per_model"] == {}
    assert cost["source"] == "model_ledger: one row per model call attempt"

    assert (usage["total_calls"], usage["successful_calls"], usage["failed_calls"]) == (3, 3, 0)
    assert (usage["per_model"], usage["failed_per_model"]) == ({MINI_KEY: 3}, {MINI_KEY: 0})
    # rounded to 3 places from the database's own mean, which may differ in the last bits
    latency = pytest.approx(fmean(r.latency_s for r in rows), abs=0.0005 + 1e-9)
    assert usage["average_latency_s"] == {MINI_KEY: latency}
    cached = [r.cached_tokens for r in rows if r.cached_tokens is not None]
    tokens = {"input": 30, "output": 15, "cached": sum(cached) if cached else None}
    assert usage["tokens"] == {**tokens, "reasoning": None}
    assert usage["tokens_per_model"] == {MINI_KEY: usage["tokens"]}


async def test_fallbacks_and_failed_runs_are_counted_and_cost_nothing_unbilled(
    serve_chain: Serve,
) -> None:
    down = Reporting({}, reported=SONNET, failures=2)
    answering = Reporting({}, reported="scripted-unpriced")
    async with serve_chain(("anthropic", SONNET, down), ("openai", MINI, answering)) as api:
        key = await api.key(tenant="acme", user_id="alice")
        async with api.client(key) as client:
            network = await new_network(client)
            answering.scripts["ask_churn_analyst"] = [AIMessage("Nobody is likely to churn.")]
            answered = await wait_done(client, await submit(client, network))
            assert answered["status"] == "succeeded", answered
            answering.failures = 1  # both links fail: the run fails
            failed = await wait_done(client, await submit(client, network))
            assert failed["status"] == "failed", failed
            assert failed["error"]["type"] == "AllProvidersFailedError"
            cost = (await client.get("/stats/cost")).json()
            usage = (await client.get("/stats/usage")).json()
        first, second = await ledger_rows(api, answered["id"]), await ledger_rows(api, failed["id"])

    assert [(r.provider, r.status, r.cost_usd) for r in first] == [
        ("anthropic", "error", None),
        ("openai", "success", None),  # "scripted-unpriced": genai-prices has no price
    ]
    assert first[0].error == "ProviderError: HTTP 503 from the scripted provider"
    assert (first[0].input_tokens, first[0].output_tokens, first[0].model_used) == (None,) * 3
    assert [(r.provider, r.status) for r in second] == [("anthropic", "error"), ("openai", "error")]
    assert {r.user_id for r in [*first, *second]} == {"alice"}

    # failed attempts without tokens cost 0; the unpriced answer is unknown, never 0
    assert Decimal(cost["total_cost_usd"]) == 0
    assert (cost["total_calls"], cost["calls_with_unknown_cost"]) == (4, 1)
    assert usd(cost["per_model"]) == {SONNET_KEY: Decimal(0), MINI_KEY: Decimal(0)}
    assert cost["unknown_cost_per_model"] == {MINI_KEY: 1}
    assert (usage["total_calls"], usage["successful_calls"], usage["failed_calls"]) == (4, 1, 3)
    assert usage["per_model"] == {SONNET_KEY: 2, MINI_KEY: 2}
    assert usage["failed_per_model"] == {SONNET_KEY: 2, MINI_KEY: 1}
    assert usage["tokens_per_model"][SONNET_KEY]["input"] is None  # none reported
    assert usage["tokens_per_model"][MINI_KEY]["input"] == 10


async def test_a_cancelled_run_keeps_the_attempts_it_made(serve_chain: Serve) -> None:
    slow = " ".join(["word"] * 4000)  # 80 s: the cancel always lands mid-answer
    scripts = churn_script()
    scripts["ask_churn_analyst"][-1] = AIMessage(slow)
    async with serve_chain(("openai", MINI, Reporting(scripts)), token_delay_s=0.02) as api:
        key = await api.key()
        async with api.client(key) as client:
            network = await new_network(client)
            task = await submit(client, network)
            async with aconnect_sse(client, "GET", f"/tasks/{task['id']}/events") as source:
                tokens = 0
                async for sse in source.aiter_sse():
                    tokens += sse.event == "token"
                    if tokens == 3:
                        path = f"/networks/{network['id']}/tasks/{task['id']}/cancel"
                        assert (await client.post(path)).status_code == 202
                        tokens += 1
            assert (await wait_done(client, task))["status"] == "cancelled"
            rows = await ledger_rows(api, task["id"])
            usage = (await client.get("/stats/usage")).json()

    # the delegation and the specialist's call ended; the cancelled answer never did
    assert [(r.agent, r.status) for r in rows] == [
        ("coordinator", "success"),
        ("churn_analyst", "success"),
    ]
    assert usage["total_calls"] == 2


async def test_period_filters_and_tenants_split_the_rows(serve_chain: Serve) -> None:
    async with serve_chain(("openai", MINI, Reporting(churn_script(times=2)))) as api:
        a_key = await api.key(tenant="tenant-a", user_id="alice")
        b_key = await api.key(tenant="tenant-b", user_id="bob")
        async with api.client(a_key) as a, api.client(b_key) as b:
            a_net, b_net = await new_network(a), await new_network(b)
            for client, network in ((a, a_net), (b, b_net)):
                done = await wait_done(client, await submit(client, network))
                assert done["status"] == "succeeded", done
            a_rows = [r for r in await ledger_rows(api) if r.tenant == "tenant-a"]
            b_rows = [r for r in await ledger_rows(api) if r.tenant == "tenant-b"]
            assert (len(a_rows), len(b_rows)) == (3, 3)

            async def stats(client: Any, kind: str, **period: Any) -> dict[str, Any]:
                params = {k: v.isoformat() for k, v in period.items()}
                r = await client.get(f"/stats/{kind}", params=params)
                assert r.status_code == 200, r.text
                return r.json()

            b_cost = await stats(b, "cost")
            middle = a_rows[1].at  # since: inclusive, until: exclusive
            before = await stats(a, "usage", until=middle)
            after = await stats(a, "usage", since=middle)
            none = await stats(a, "cost", since=a_rows[-1].at + timedelta(microseconds=1))
            window = await stats(a, "cost", since=a_rows[0].at, until=a_rows[-1].at)
            r = await a.get("/stats/cost", params={"since": "yesterday"})
            assert r.status_code == 422 and "since" in r.text

    unit = a_rows[0].cost_usd
    assert unit is not None and all(r.cost_usd == unit for r in [*a_rows, *b_rows])
    assert usd(b_cost["per_user"]) == {"bob": 3 * unit}
    assert usd(b_cost["per_network"]) == {b_net["id"]: 3 * unit}
    assert Decimal(b_cost["total_cost_usd"]) == 3 * unit
    assert (before["total_calls"], after["total_calls"]) == (1, 2)
    assert (none["total_calls"], none["per_model"], Decimal(none["total_cost_usd"])) == (0, {}, 0)
    assert (window["total_calls"], Decimal(window["total_cost_usd"])) == (2, 2 * unit)
    assert window["time_period"]["since"] is not None
