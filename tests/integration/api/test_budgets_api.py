"""Budgets over HTTP: admin routes, 50 concurrent runs against a budget that fits 10, 402 at
submission, downgrades to cheaper models, direct generations, and the model-call bound the
reservations use."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from sqlalchemy import select

from aimesh.agents.specialist import MAX_MODEL_CALLS
from aimesh.billing.amounts import to_nusd, to_usd
from aimesh.billing.budgets import Spender
from aimesh.billing.run_bound import RunBound, max_model_calls
from aimesh.config import Settings
from aimesh.events import MODEL_ATTEMPT
from aimesh.llm.attempt import ModelAttempt
from aimesh.llm.route import current_route
from aimesh.llm.selection import choose_route
from aimesh.store.tables import BudgetHold, LedgerEntry, utcnow
from tests.attempts import attempt
from tests.fakes import (
    NO_TOOLS,
    USAGE,
    CallInfo,
    FunctionChatModel,
    Scripts,
    call,
    calls,
    dispatch,
)
from tests.helpers.api import REDIS, Running, api_settings, key_id, serve
from tests.helpers.tasks import new_network, wait_done

CALLS_PER_RUN = 3  # the churn script: coordinator, specialist, coordinator's answer


@dataclass
class Priced:
    """The agents' model's function for any number of interleaved runs of the churn question:
    the coordinator delegates to the churn analyst, which ranks 3 clients, then answers
    (``CALLS_PER_RUN`` calls).

    It answers as the first link of the run's route would (``routes``: the route of each
    call), at ``call_usd`` per call, and reports each call as the provider chain does (a
    ``model_attempt`` event: one ledger row). With ``gate`` set, calls wait for it.
    """

    call_usd: Decimal = Decimal(0)
    routes: list[tuple[str, ...] | None] = field(default_factory=list)
    gate: asyncio.Event | None = None

    async def __call__(self, messages: list[BaseMessage], info: CallInfo) -> AIMessage:
        assert not info.tools or {"ask_churn_analyst", "top_churn_risks"} & set(info.tools), (
            f"no script for a model bound to {info.tools}"
        )
        route = current_route()
        self.routes.append(route)
        if self.gate is not None:
            await self.gate.wait()
        provider, _, model = (route[0] if route else "openai/unrouted").partition("/")
        started = utcnow()
        reply: AIMessage
        if "top_churn_risks" in info.tools:
            reply = calls(call("top_churn_risks", uuid.uuid4().hex, limit=3))
        elif isinstance(messages[-1], HumanMessage):
            request = "Top churn risks"
            reply = calls(call("ask_churn_analyst", uuid.uuid4().hex, request=request))
        else:
            reply = AIMessage("The churn analyst ranked the clients most likely to leave.")
        reply.usage_metadata = dict(USAGE)
        reply.response_metadata = {
            "provider": provider,
            "model_name": model,
            "cost_usd": str(self.call_usd),
        }
        await dispatch(info.run, MODEL_ATTEMPT, _attempt(provider, model, self.call_usd, started))
        return reply


def _attempt(provider: str, model: str, cost: Decimal, started: datetime) -> ModelAttempt:
    """The chain's attempt record of one successful streamed call."""
    return attempt(
        at=started,
        provider=provider,
        model_requested=model,
        model_used=model,
        input_tokens=10,
        output_tokens=5,
        cached_tokens=None,
        cost_usd=cost,
        price_source="test",
        latency_s=0.0,
    )


@pytest.fixture
def priced() -> Priced:
    return Priced()


@pytest.fixture
def priced_model(priced: Priced) -> FunctionChatModel:
    return FunctionChatModel(function=priced, streaming=True)


@pytest.fixture
async def budget_api(
    backend: str,
    settings: Settings,
    tmp_path: Path,
    priced_model: FunctionChatModel,
    request: pytest.FixtureRequest,
) -> AsyncIterator[Running]:
    """The app with an OpenAI-compatible provider (priced; the fake model answers for it),
    the local model, and a worker per task so that 50 tasks run at once."""
    servers = {}
    if backend == "servers":
        servers = {"database_url": request.getfixturevalue("postgres_url"), "redis_url": REDIS}
    config = api_settings(
        settings.home,
        tmp_path,
        openai_base_url="http://127.0.0.1:9/v1",
        openai_models=["gpt-4.1-mini", "gpt-4.1"],
        task_workers=50,
        rate_limit="100000/minute",
        **servers,
    ).model_copy(update={"providers": ["openai", "local"]})
    async with serve(config, priced_model) as running:
        yield running


def run_cost(api: Running, delegations: int = 6) -> tuple[list[str], Decimal]:
    """The default route and its worst case per run, as the runner reserves it."""
    budgets = api.app.state.services.budgets
    route = choose_route(None, budgets.links, {})
    cost = budgets.bound(delegations).run_usd(route)
    assert cost is not None and cost > 0
    return route, cost


def fitting(times: int, amount: Decimal) -> str:
    """A limit (6 decimals) fitting ``times`` runs of worst case ``amount``, not one more."""
    limit = ((times + Decimal("0.5")) * amount).quantize(Decimal("0.000001"), ROUND_DOWN)
    assert times * to_nusd(amount) <= to_nusd(limit) < (times + 1) * to_nusd(amount)
    return str(limit)


async def new_budget(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    r = await client.post("/budgets", json={"period": "day", **body})
    assert r.status_code == 201, r.text
    return r.json()


async def events(api: Running, task_id: str) -> list[dict[str, Any]]:
    log = api.app.state.services.events
    return [json.loads(payload) for _, payload in await log.read(task_id, count=1000)]


async def test_fifty_concurrent_runs_against_a_budget_that_fits_ten(
    budget_api: Running, priced: Priced
) -> None:
    api = budget_api
    priced.call_usd = Decimal("0.001")
    priced.gate = asyncio.Event()
    route, cost = run_cost(api)
    async with api.client(await api.key()) as client:
        network = await new_network(client)
        budget = await new_budget(
            client, scope="network", scope_id=network["id"], limit_usd=fitting(10, cost)
        )
        path = f"/networks/{network['id']}/tasks"
        answers = await asyncio.gather(
            *(client.post(path, json={"task": f"Who will churn? ({i})"}) for i in range(50))
        )
        assert [r.status_code for r in answers] == [202] * 50  # nothing spent yet
        # every task has now either reserved its worst case or been refused
        for _ in range(600):
            failed = (await client.get(path, params={"status": "failed"})).json()["total"]
            if failed >= 40:
                break
            await asyncio.sleep(0.1)
        listed = (await client.get("/budgets")).json()["items"]
        assert [(b["id"], Decimal(b["reserved_usd"])) for b in listed] == [
            (budget["id"], to_usd(10 * to_nusd(cost)))
        ]
        async with api.app.state.services.db.sessions() as session:
            held = (await session.scalars(select(BudgetHold))).all()
        priced.gate.set()
        done = [await wait_done(client, r.json()) for r in answers]

        ran = [t for t in done if t["status"] == "succeeded"]
        refused = [t for t in done if t["status"] == "failed"]
        assert (len(ran), len(refused)) == (10, 40)
        # each running task's hold names it and outlives its time limit (600 s) by the grace
        assert sorted(h.task_id for h in held) == sorted(t["id"] for t in ran)
        grace = api.app.state.services.settings.budget_hold_grace_s
        for hold in held:
            task = next(t for t in ran if t["id"] == hold.task_id)
            started = datetime.fromisoformat(task["started_at"])
            assert (
                abs(hold.expires_at - started - timedelta(seconds=600 + grace)).total_seconds() < 30
            )
        assert {t["error"]["type"] for t in refused} == {"budget_exceeded"}
        assert len(priced.routes) == 10 * CALLS_PER_RUN
        assert set(priced.routes) == {tuple(route)}

        log = await events(api, refused[0]["id"])
        assert [e["event"] for e in log] == ["started", "budget", "error"]
        data = log[1]["data"]
        assert data["action"] == "refused"
        assert data["budget"]["id"] == budget["id"] and data["budget"]["scope"] == "network"
        assert data["budget"]["limit_usd"] == budget["limit_usd"]
        assert Decimal(data["budget"]["reserved_usd"]) == to_usd(10 * to_nusd(cost))
        assert Decimal(data["requested_usd"]) == to_usd(to_nusd(cost))
        assert log[2]["data"]["type"] == "budget_exceeded"

        (after,) = (await client.get("/budgets")).json()["items"]
        spent = 10 * to_nusd(CALLS_PER_RUN * priced.call_usd)
        assert (Decimal(after["spent_usd"]), Decimal(after["reserved_usd"])) == (
            to_usd(spent),
            0,
        )


async def test_submission_answers_402_when_the_budget_is_spent(
    budget_api: Running, priced: Priced
) -> None:
    api = budget_api
    _, cost = run_cost(api)
    priced.call_usd = cost / 4  # a run spends 3/4 of its worst case
    async with api.client(await api.key(tenant="acme")) as client:
        network = await new_network(client)
        budget = await new_budget(
            client, scope="tenant", scope_id="acme", period="month", limit_usd=fitting(1, cost)
        )
        first = await client.post(f"/networks/{network['id']}/tasks", json={"task": "Who?"})
        assert (await wait_done(client, first.json()))["status"] == "succeeded"

        thread = (await client.post(f"/networks/{network['id']}/threads", json={})).json()
        for path, body in (
            (f"/networks/{network['id']}/tasks", {"task": "Who else?"}),
            (f"/networks/{network['id']}/tasks/stream", {"task": "Who else?"}),
            (f"/threads/{thread['id']}/messages", {"content": "Who else?"}),
        ):
            r = await client.post(path, json=body)
            assert r.status_code == 402, (path, r.text)
            answer = r.json()
            assert answer["budget"]["id"] == budget["id"]
            assert answer["budget"]["scope"] == "tenant" and answer["budget"]["period"] == "month"
            assert Decimal(answer["budget"]["spent_usd"]) == to_usd(to_nusd(3 * cost / 4))
            assert Decimal(answer["requested_usd"]) == to_usd(to_nusd(cost))
            assert f"budget {budget['id']} (tenant acme, per month)" in answer["detail"]
        tasks = (await client.get(f"/networks/{network['id']}/tasks")).json()
        assert tasks["total"] == 1  # nothing half-written by the refusals
        audit = (await client.get("/security/audit-logs", params={"result": "invalid"})).json()
        assert {e["status_code"] for e in audit["items"]} == {402}

        # another tenant's budget does not apply to this tenant's networks
        async with api.client(await api.key(tenant="globex")) as other:
            their_network = await new_network(other)
            r = await other.post(f"/networks/{their_network['id']}/tasks", json={"task": "Who?"})
            assert r.status_code == 202, r.text
            assert (await wait_done(other, r.json()))["status"] == "succeeded"


async def test_a_downgrade_budget_runs_on_cheaper_models_then_the_local_one(
    budget_api: Running, priced: Priced
) -> None:
    api = budget_api
    budgets = api.app.state.services.budgets
    local = next(link.key for link in budgets.links if link.provider == "local")
    cheap = budgets.bound(6).run_usd(["openai/gpt-4.1-mini"])
    dear = budgets.bound(6).run_usd(["openai/gpt-4.1"])
    assert cheap is not None and dear is not None and cheap < dear
    priced.call_usd = cheap / 4
    async with api.client(await api.key()) as client:
        network = await new_network(client)
        r = await client.post("/security/api-keys", json={"user_id": "svc", "role": "service"})
        service_key = r.json()  # the tightest budget is this key's; the network's is loose
        await new_budget(
            client,
            scope="key",
            scope_id=service_key["id"],
            limit_usd=fitting(1, cheap),
            on_limit="downgrade",
        )
        await new_budget(client, scope="network", scope_id=network["id"], limit_usd="1000")
        async with api.client(service_key["api_key"]) as service:
            body = {"task": "Who will churn?", "model_selection": {"task_complexity": "HIGH"}}
            path = f"/networks/{network['id']}/tasks"
            first = await wait_done(service, (await service.post(path, json=body)).json())
            second = await wait_done(service, (await service.post(path, json=body)).json())
    assert first["status"] == second["status"] == "succeeded"
    # HIGH complexity puts gpt-4.1 first; the budget allows gpt-4.1-mini, then only local
    assert priced.routes[:CALLS_PER_RUN] == [("openai/gpt-4.1-mini", local)] * CALLS_PER_RUN
    assert priced.routes[CALLS_PER_RUN:] == [(local,)] * CALLS_PER_RUN
    first_log = await events(api, first["id"])
    assert [e["event"] for e in first_log][:2] == ["started", "budget"]
    downgrade = first_log[1]["data"]
    assert downgrade["action"] == "downgraded"
    assert downgrade["route"] == ["openai/gpt-4.1-mini", local]
    assert downgrade["budget"]["scope"] == "key"
    assert Decimal(downgrade["reserved_usd"]) == cheap
    async with api.app.state.services.db.sessions() as session:  # where the calls went
        used = await session.execute(
            select(LedgerEntry.task_id, LedgerEntry.provider, LedgerEntry.model_requested)
        )
        assert sorted(set(used)) == sorted(
            {(first["id"], "openai", "gpt-4.1-mini"), (second["id"], *local.split("/"))}
        )
    second_log = await events(api, second["id"])
    assert second_log[1]["data"]["route"] == [local]
    assert first["result"]["model"] == "gpt-4.1-mini"
    assert second["result"]["model"] == local.partition("/")[2]


async def test_budgets_are_admin_only_validated_and_tenant_isolated(api: Running) -> None:
    admin = await api.key(tenant="acme", role="admin")
    user = await api.key(tenant="acme", role="user")
    other = await api.key(tenant="globex", role="admin")
    async with api.client(admin) as a, api.client(user) as u, api.client(other) as g:
        network = await new_network(a)
        body = {"scope": "network", "scope_id": network["id"], "period": "month"}
        created = await new_budget(a, **body, limit_usd="25.50")
        assert created["limit_usd"] == "25.50" and created["on_limit"] == "refuse"
        assert (created["spent_usd"], created["reserved_usd"]) == ("0", "0")
        assert created["window_start"].startswith(utcnow().strftime("%Y-%m-01T00:00:00"))
        r = await a.post("/budgets", json={**body, "limit_usd": "30"})
        assert r.status_code == 409 and created["id"] in r.json()["detail"]

        assert (await u.get("/budgets")).status_code == 403
        assert (await u.post("/budgets", json={**body, "limit_usd": "1"})).status_code == 403
        assert (await u.delete(f"/budgets/{created['id']}")).status_code == 403

        cases = [
            ({**body, "limit_usd": "0"}, "limit_usd"),
            ({**body, "limit_usd": "1.1234567"}, "limit_usd"),
            ({**body, "limit_usd": 5}, "limit_usd"),
            ({**body, "limit_usd": "1000000"}, "limit_usd"),
            ({**body, "scope": "planet", "limit_usd": "1"}, "scope"),
            ({**body, "period": "week", "limit_usd": "1"}, "period"),
            ({**body, "on_limit": "shrug", "limit_usd": "1"}, "on_limit"),
            ({**body, "limit_usd": "1", "extra": 1}, "extra"),
        ]
        for case, field in cases:
            r = await a.post("/budgets", json=case)
            assert r.status_code == 422, (case, r.text)
            assert r.json()["detail"][0]["loc"] == ["body", field], (case, r.text)

        # an unknown scope id is not found, another tenant's neither
        r = await a.post("/budgets", json={**body, "scope_id": "a" * 32, "limit_usd": "1"})
        assert r.status_code == 404
        assert r.json()["detail"] == (
            f"scope_id: no network {'a' * 32!r} in your tenant "
            "(allowed: the id of one of your networks)"
        )
        # globex sees none of acme's budgets, cannot delete them nor budget acme's network
        assert (await g.get("/budgets")).json() == {
            "items": [],
            "total": 0,
            "limit": 50,
            "offset": 0,
        }
        assert (await g.delete(f"/budgets/{created['id']}")).status_code == 404
        r = await g.post("/budgets", json={**body, "period": "day", "limit_usd": "1"})
        assert r.status_code == 404 and r.json()["detail"].startswith("scope_id: no network")
        r = await g.post(
            "/budgets", json={**body, "scope": "tenant", "scope_id": "acme", "limit_usd": "1"}
        )
        assert r.status_code == 404

        listed = (await a.get("/budgets")).json()
        assert [b["id"] for b in listed["items"]] == [created["id"]]
        assert (await a.delete(f"/budgets/{created['id']}")).status_code == 204
        assert (await a.delete(f"/budgets/{created['id']}")).status_code == 404
        assert (await a.get("/budgets")).json()["total"] == 0


@pytest.mark.parametrize("backend", ["embedded"])
async def test_a_run_can_make_exactly_the_model_calls_budgets_reserve_for(
    api: Running, model: FunctionChatModel, scripts: Scripts
) -> None:
    """The bound (MAX_MODEL_CALLS + 1) * D + 2 is reached: D delegations whose specialists
    use all their calls, the answer, and the grounding check's rewrite."""
    delegations = 2
    scripts.update(
        {
            "ask_churn_analyst": [
                calls(call("ask_churn_analyst", "c1", request="Risk of client C99999")),
                calls(call("ask_churn_analyst", "c2", request="Risk of client C99998")),
                AIMessage("The risk is 4242 percent."),  # grounded in no tool result
            ],
            NO_TOOLS: [AIMessage("It is still 4242 percent.")],  # the rewrite, still not
            "top_churn_risks": [
                calls(call("client_churn_risk", f"k{i}", client_id=f"C9999{i}"))
                for i in range(3 * delegations)  # unknown clients: each call fails
            ],
        }
    )
    async with api.client(await api.key()) as client:
        network = await new_network(client, max_iterations=delegations)
        r = await client.post(f"/networks/{network['id']}/tasks", json={"task": "Who churns?"})
        task = await wait_done(client, r.json())
    assert task["status"] == "succeeded", task
    assert len(model.seen) == max_model_calls(delegations, MAX_MODEL_CALLS) == 10


async def test_a_direct_generation_is_reserved_and_reconciled_like_a_run(
    budget_api: Running, priced: Priced
) -> None:
    """``/generate/stream``: one chain call's worst case held against the key's and the
    tenant's budgets, reconciled with its ledger cost; 402 when a budget has no room."""
    api = budget_api
    services = api.app.state.services
    route = choose_route(None, services.links, {})
    one_call = RunBound.one_call(services.settings).run_usd(route)
    assert one_call is not None and one_call > 0
    priced.call_usd = one_call / 4
    key = await api.key(tenant="acme")
    async with api.client(key) as client:
        mine = await new_budget(
            client, scope="key", scope_id=key_id(key), limit_usd=fitting(1, one_call)
        )
        async with aconnect_sse(client, "POST", "/generate/stream", json={"prompt": "Hi"}) as sse:
            names = [event.event async for event in sse.aiter_sse() if event.data]
        assert names[0] == "started" and names[-1] == "complete", names
        (after,) = (await client.get("/budgets")).json()["items"]
        assert (Decimal(after["spent_usd"]), Decimal(after["reserved_usd"])) == (
            to_usd(to_nusd(one_call / 4)),
            0,
        )

        # the key's budget has room for the next call, the tenant's has none
        half = (one_call / 2).quantize(Decimal("0.000001"), ROUND_DOWN)
        tenant = await new_budget(client, scope="tenant", scope_id="acme", limit_usd=str(half))
        r = await client.post("/generate/stream", json={"prompt": "Hi again"})
        assert r.status_code == 402, r.text
        assert r.json()["budget"]["id"] == tenant["id"]
        assert Decimal(r.json()["requested_usd"]) == to_usd(to_nusd(one_call))
        items = {b["id"]: b for b in (await client.get("/budgets")).json()["items"]}
        assert Decimal(items[mine["id"]]["reserved_usd"]) == 0  # nothing left held
    assert len(priced.routes) == 1 and priced.routes[0] == tuple(route)


async def test_the_sweeper_releases_the_reservation_of_a_run_that_died(
    settings: Settings, tmp_path: Path, priced_model: FunctionChatModel
) -> None:
    """A reservation whose run never reconciled (its hold expired) is released by the
    running service's sweep loop, charged in full (no task: its cost is unknown)."""
    config = api_settings(
        settings.home,
        tmp_path,
        openai_base_url="http://127.0.0.1:9/v1",
        openai_models=["gpt-4.1-mini"],
    ).model_copy(
        update={
            "providers": ["openai", "local"],
            "retention_sweep_s": 0.1,
            "budget_hold_grace_s": 0.1,
        }
    )
    async with serve(config, priced_model) as api:
        key = await api.key(tenant="acme")
        async with api.client(key) as client:
            await new_budget(client, scope="tenant", scope_id="acme", limit_usd="1")
            budgets = api.app.state.services.budgets
            await budgets.reserve(Spender("acme", None), Decimal("0.25"))  # expires in 0.1 s
            for _ in range(100):
                (listed,) = (await client.get("/budgets")).json()["items"]
                if Decimal(listed["reserved_usd"]) == 0:
                    break
                await asyncio.sleep(0.05)
    assert (Decimal(listed["spent_usd"]), Decimal(listed["reserved_usd"])) == (Decimal("0.25"), 0)
