"""Model selection over HTTP: ``GET /stats/models`` (links, capabilities, prices, the tenant's
measured history) and tasks that run on the route chosen for their ``model_selection``."""

import json
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from httpx_sse import aconnect_sse
from langchain_core.messages import BaseMessage
from pydantic import SecretStr

from aimesh.config import Settings
from aimesh.llm.cost import price_source
from aimesh.llm.route import current_route
from aimesh.store.tables import LedgerEntry
from tests.fakes import CallInfo, FunctionChatModel, Scripts, by_role
from tests.helpers.api import Running, serve
from tests.helpers.tasks import churn_script, new_network, submit, wait_done

SONNET = "anthropic/claude-sonnet-4-6"
HAIKU = "anthropic/claude-haiku-4-5"
MINI = "openai/gpt-4.1-mini"
GPT41 = "openai/gpt-4.1"
LOCAL = "local/qwen2.5-coder-1.5b-instruct-q4_k_m"


@pytest.fixture
def routes() -> list[tuple[str, ...] | None]:
    """The route in force at each call of the agents' model."""
    return []


@pytest.fixture
def model(scripts: Scripts, routes: list[tuple[str, ...] | None]) -> FunctionChatModel:
    """The agents' model: it streams the replies of ``scripts``, each call's route in ``routes``."""
    reply = by_role(scripts)

    def recording(messages: list[BaseMessage], info: CallInfo) -> Any:
        routes.append(current_route())
        return reply(messages, info)

    return FunctionChatModel(function=recording, streaming=True)


@pytest.fixture
async def chain_api(service_settings: Settings, model: FunctionChatModel) -> AsyncIterator[Running]:
    """The app with Anthropic and OpenAI (a fake key each, never called: the agents' model is
    the scripted one) and the local model, in that order."""
    settings = service_settings.model_copy(
        update={
            "providers": ["anthropic", "openai", "local"],
            "anthropic_api_key": SecretStr("test-key"),
            "openai_models": ["gpt-4.1-mini", "gpt-4.1", "my-vllm-model"],
        }
    )
    async with serve(settings, model) as running:
        yield running


async def add_calls(api: Running, tenant: str, key: str, *calls: tuple[str, float]) -> None:
    """Ledger rows of ``tenant`` for link ``key``: one per (status, latency seconds)."""
    provider, model = key.split("/")
    async with api.app.state.services.db.sessions.begin() as session:
        session.add_all(
            LedgerEntry(
                id=uuid.uuid4().hex,
                tenant=tenant,
                provider=provider,
                model_requested=model,
                status=status,
                error=None if status == "success" else "InternalServerError: 500",
                latency_s=latency,
            )
            for status, latency in calls
        )


def decimals(prices: dict[str, Any]) -> tuple[Decimal | None, ...]:
    return tuple(
        None if prices[name] is None else Decimal(prices[name])
        for name in ("input", "output", "cached_input")
    )


async def test_model_stats_show_every_link_with_capabilities_prices_and_history(
    chain_api: Running,
) -> None:
    await add_calls(chain_api, "acme", SONNET, ("success", 1.0), ("error", 6.0), ("success", 2.0))
    await add_calls(chain_api, "acme", LOCAL, ("success", 4.5))
    await add_calls(chain_api, "other", SONNET, *[("success", 9.0)] * 5)
    async with chain_api.client(await chain_api.key(tenant="acme")) as client:
        r = await client.get("/stats/models")
    assert r.status_code == 200, r.text
    models = r.json()
    assert [
        (m["provider"], m["model"], m["position"], m["default"], m["configured"]) for m in models
    ] == [
        ("anthropic", "claude-sonnet-4-6", 1, True, True),
        ("anthropic", "claude-haiku-4-5", 2, False, True),
        ("openai", "gpt-4.1-mini", 3, True, False),  # no OpenAI key
        ("openai", "gpt-4.1", 4, False, False),
        ("openai", "my-vllm-model", 5, False, False),
        ("local", "qwen2.5-coder-1.5b-instruct-q4_k_m", 6, True, True),
    ]
    sonnet, haiku, mini, _, vllm, local = models

    assert sonnet["capabilities"] == {
        "vision": True,
        "function_calling": True,
        "context_window": 200_000,
        "tier": "HIGH",
        "source": "https://platform.claude.com/docs/en/models/sonnet-4-6/overview",
    }
    assert vllm["capabilities"] == {
        "vision": None,
        "function_calling": None,
        "context_window": None,
        "tier": None,
        "source": None,
    }
    assert (local["capabilities"]["tier"], local["capabilities"]["vision"]) == ("LOW", False)
    assert local["capabilities"]["context_window"] == 8192  # settings.local_n_ctx

    assert decimals(sonnet["prices"]) == (Decimal(3), Decimal(15), Decimal("0.3"))
    assert decimals(mini["prices"]) == (Decimal("0.4"), Decimal("1.6"), Decimal("0.1"))
    assert sonnet["prices"]["source"] == price_source()
    assert decimals(vllm["prices"]) == (None, None, None)
    assert decimals(local["prices"]) == (0, 0, 0)

    # the caller's tenant only: acme's 3 Sonnet calls, not the other tenant's 5
    assert sonnet["history"] == {
        "calls": 3,
        "failures": 1,
        "success_rate": 0.6667,
        "mean_latency_s": 3.0,
        "median_latency_s": 2.0,
        "source": "model_ledger: one row per model call attempt",
    }
    assert local["history"] == {
        "calls": 1,
        "failures": 0,
        "success_rate": 1.0,
        "mean_latency_s": 4.5,
        "median_latency_s": 4.5,
        "source": "model_ledger: one row per model call attempt",
    }
    assert (haiku["history"]["calls"], haiku["history"]["success_rate"]) == (0, None)
    assert haiku["history"]["median_latency_s"] is None


@pytest.mark.parametrize("backend", ["embedded"])
async def test_a_task_runs_on_the_route_chosen_for_its_model_selection(
    chain_api: Running,
    scripts: Scripts,
    routes: list[tuple[str, ...] | None],
) -> None:
    scripts.update(churn_script(times=3))
    await add_calls(chain_api, "acme", SONNET, *[("error", 30.0)] * 4)  # Sonnet has been failing
    async with chain_api.client(await chain_api.key(tenant="acme")) as client:
        network = await new_network(client)
        cases = [
            (None, [(SONNET, LOCAL)]),  # no selection: the default chain, as before
            # HIGH: Sonnet is the only configured HIGH model, and it has been failing, but
            # fitness comes before history; the MEDIUM Haiku next; the local model last
            ({"task_complexity": "HIGH"}, [(SONNET, HAIKU, LOCAL)]),
            ({"task_complexity": "MEDIUM"}, [(HAIKU, SONNET, LOCAL)]),
        ]
        for selection, _ in cases:
            body = {} if selection is None else {"model_selection": selection}
            task = await wait_done(client, await submit(client, network, **body))
            assert task["status"] == "succeeded", task
            assert task["model_selection"] == (
                None
                if selection is None
                else {
                    "task_complexity": selection["task_complexity"],
                    "requires_vision": False,
                    "requires_function_calling": True,
                    "cost_sensitive": False,
                }
            )
    per_task = [routes[i : i + 3] for i in range(0, len(routes), 3)]  # 3 model calls per task
    assert per_task == [expected * 3 for _, expected in cases]


@pytest.mark.parametrize("backend", ["embedded"])
async def test_a_task_no_configured_model_can_serve_fails_naming_the_requirement(
    api: Running,
) -> None:
    async with api.client(await api.key()) as client:
        network = await new_network(client)
        body = {"model_selection": {"requires_vision": True}}
        task = await wait_done(client, await submit(client, network, **body))
        async with aconnect_sse(client, "GET", f"/tasks/{task['id']}/events") as source:
            events = [
                (sse.event, json.loads(sse.data)) async for sse in source.aiter_sse() if sse.data
            ]
    assert task["status"] == "failed"
    assert task["error"]["type"] == "NoProviderError"
    assert task["error"]["message"].startswith(
        "no configured model supports vision (model_selection.requires_vision is true); "
        f"configured: {LOCAL};"
    )
    # the event log ends with the error, so SSE clients are told and the stream closes
    assert [name for name, _ in events] == ["started", "error"]
    assert events[-1][1]["data"] == task["error"]


@pytest.mark.parametrize("backend", ["embedded"])
async def test_a_bad_model_selection_is_refused_naming_the_field(api: Running) -> None:
    cases = [
        ({"task_complexity": "EXTREME"}, "task_complexity", "'LOW', 'MEDIUM' or 'HIGH'"),
        ({"requires_vision": "yes"}, "requires_vision", "valid boolean"),
        ({"requires_function_calling": 0}, "requires_function_calling", "valid boolean"),
        ({"cost_sensitive": "true"}, "cost_sensitive", "valid boolean"),
        ({"max_cost": 1}, "max_cost", "Extra inputs are not permitted"),
    ]
    async with api.client(await api.key()) as client:
        network = await new_network(client)
        for selection, field, message in cases:
            r = await client.post(
                f"/networks/{network['id']}/tasks", json={"task": "t", "model_selection": selection}
            )
            assert r.status_code == 422, r.text
            (error,) = r.json()["detail"]
            assert error["loc"] == ["body", "model_selection", field], r.text
            assert message in error["msg"], r.text
        r = await client.post(
            f"/networks/{network['id']}/tasks", json={"task": "t", "model_selection": "HIGH"}
        )
        assert r.status_code == 422
        assert r.json()["detail"][0]["loc"] == ["body", "model_selection"]
        assert (await client.get(f"/networks/{network['id']}/tasks")).json()["total"] == 0
