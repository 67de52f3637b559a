"""Tasks over HTTP: run, record, time out, cancel, queue by priority; chat threads; custom
agents; networks that delete what hangs off them."""

import asyncio
import json
from decimal import Decimal

from httpx_sse import aconnect_sse
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, HumanMessage

from aimesh.llm.catalog import local_model_name
from tests.fakes import NO_TOOLS, FunctionChatModel, call, calls
from tests.helpers.tasks import churn_script, new_network, submit, wait_done


async def test_a_task_runs_and_its_calls_reach_the_audit_log_ledger_and_stats(api, model, scripts):
    scripts.update(churn_script())
    key = await api.key()
    async with api.client(key) as client:
        network = await new_network(client)
        assert [a["name"] for a in network["agents"]] == [
            "coordinator",
            "churn_analyst",
            "billing_analyst",
            "pricing_analyst",
        ]
        task = await wait_done(client, await submit(client, network, context={"region": "EU"}))
        assert task["status"] == "succeeded", task
        assert task["agents"] == ["churn_analyst"]
        assert task["result"]["answer"].startswith("The churn analyst ranked")
        assert [c["tool"] for c in task["result"]["tool_calls"]] == ["top_churn_risks"]
        assert (task["tokens_input"], task["tokens_output"]) == (30, 15)  # 3 scripted calls
        assert Decimal(task["cost_usd"]) == 0  # the chain's price of the local link
        coordinator_prompt = model.seen[0][0][-1]
        assert isinstance(coordinator_prompt, HumanMessage)
        assert coordinator_prompt.text.endswith('Context (JSON): {"region": "EU"}')

        audit = (await client.get("/security/audit-logs", params={"limit": 100})).json()
        calls_logged = [
            (e["action"], e["resource_id"], e["result"])
            for e in reversed(audit["items"])
            if e["task_id"] == task["id"]
        ]
        assert calls_logged == [  # model calls are in the ledger, not the audit log
            ("tool.call", "top_churn_risks", "success"),
            ("agent.call", "churn_analyst", "success"),
        ]
        usage = (await client.get("/stats/usage")).json()
        local = f"local/{local_model_name(api.app.state.services.settings)}"
        assert (usage["total_calls"], usage["failed_calls"]) == (3, 0)
        assert usage["per_model"] == {local: 3}
        cost = (await client.get("/stats/cost")).json()
        assert {m: Decimal(v) for m, v in cost["per_model"].items()} == {local: 0}
        assert list(cost["per_network"]) == [network["id"]]


async def test_timeout_and_cancel_end_a_running_task(api, model, scripts):
    slow = " ".join(["word"] * 400)
    model.token_delay_s = 0.02
    scripts[NO_TOOLS] = []
    scripts["ask_churn_analyst"] = [AIMessage(slow), AIMessage(slow)]
    key = await api.key()
    async with api.client(key) as client:
        network = await new_network(client, timeout_seconds=1)
        # the coordinator must delegate first: give it a direct answer instead, slowly
        scripts["ask_churn_analyst"] = [AIMessage(slow)]
        timed_out = await wait_done(client, await submit(client, network))
        assert timed_out["status"] == "timed_out"
        assert timed_out["error"] == {"type": "TaskTimeout", "message": "1 s"}

        scripts["ask_churn_analyst"] = [AIMessage(slow)]
        patient = await new_network(client, name="patient", timeout_seconds=600)
        task = await submit(client, patient)
        async with aconnect_sse(client, "GET", f"/tasks/{task['id']}/events") as source:
            names = []
            async for sse in source.aiter_sse():
                if not sse.data:
                    continue
                names.append(sse.event)
                if sse.event == "token" and names.count("token") == 3:
                    r = await client.post(f"/networks/{patient['id']}/tasks/{task['id']}/cancel")
                    assert r.status_code == 202, r.text
        assert names[0] == "started" and names[-1] == "error"
        assert json.loads(sse.data)["data"]["type"] == "TaskCancelled"
        cancelled = await wait_done(client, task)
        assert cancelled["status"] == "cancelled"
        r = await client.post(f"/networks/{patient['id']}/tasks/{task['id']}/cancel")
        assert r.status_code == 409


async def test_queued_tasks_run_by_priority_once_however_often_processed(api, model, scripts):
    gate = asyncio.Event()
    order: list[str] = []
    scripts.update(churn_script(times=3))
    reply = model.function

    async def gated(messages, info):
        order.append(messages[-1].text)
        if messages[-1].text == "block":
            await asyncio.wait_for(gate.wait(), 30)
        return reply(messages, info)

    model.function = gated
    key = await api.key()
    async with api.client(key) as client:
        network = await new_network(client)
        blocker = await submit(client, network, "block")
        while "block" not in order:  # the only worker is now busy with it
            await asyncio.sleep(0.02)
        low = await submit(client, network, "low", priority=1)
        high = await submit(client, network, "high", priority=9)
        for task in (low, high, high):
            r = await client.post(f"/networks/{network['id']}/tasks/{task['id']}/process")
            assert r.status_code == 202 and r.json()["status"] == "pending"
        gate.set()
        done = [await wait_done(client, t) for t in (blocker, low, high)]
    assert [t["status"] for t in done] == ["succeeded"] * 3  # each ran once: scripts suffice
    assert [text for text in order if text in ("low", "high")] == ["high", "low"]
    assert done[2]["started_at"] <= done[1]["started_at"]


async def test_a_thread_keeps_the_conversation_for_follow_ups(api, model, scripts):
    scripts.update(churn_script(times=2))
    key = await api.key()
    async with api.client(key) as client:
        network = await new_network(client)
        thread = (await client.post(f"/networks/{network['id']}/threads", json={})).json()
        for question in ("Who will churn?", "And the next ones?"):
            r = await client.post(f"/threads/{thread['id']}/messages", json={"content": question})
            assert r.status_code == 202, r.text
            assert (await wait_done(client, r.json()))["thread_id"] == thread["id"]
        history = (await client.get(f"/threads/{thread['id']}/messages")).json()
    assert [(m["role"], m["content"][:20]) for m in history] == [
        ("user", "Who will churn?"),
        ("assistant", "The churn analyst ra"),
        ("user", "And the next ones?"),
        ("assistant", "The churn analyst ra"),
    ]
    follow_up_to_specialist = [m for m, info in model.seen if "top_churn_risks" in info.tools][-1]
    assert "Earlier in this conversation" in follow_up_to_specialist[-1].text


async def test_a_custom_agent_becomes_a_specialist_with_its_settings(api, model, scripts):
    scripts.update(
        {
            "ask_retention_advisor": [
                calls(call("ask_retention_advisor", "r1", request="Risk of C00001")),
                AIMessage("The retention advisor looked at the client."),
            ],
            "client_churn_risk": [calls(call("client_churn_risk", "k1", client_id="C00001"))],
        }
    )
    agent = {
        "name": "retention_advisor",
        "description": "Retention advisor: one client's churn risk and what to do about it.",
        "prompt": "You advise on keeping one client. Call client_churn_risk for the client.",
        "tools": ["client_churn_risk"],
        "temperature": 0.3,
        "max_tokens": 300,
        "model": "local",
    }
    chain_calls = InvocationParams()  # the chain consumes ``prefer`` (it orders its links)
    api.app.state.services.model.callbacks = [chain_calls]
    key = await api.key()
    async with api.client(key) as client:
        network = await new_network(client, agents=[agent])
        assert [a["name"] for a in network["agents"]] == ["coordinator", "retention_advisor"]
        task = await wait_done(client, await submit(client, network, "Will C00001 leave?"))
        assert task["status"] == "succeeded", task
        assert task["agents"] == ["retention_advisor"]
        r = await client.post(f"/networks/{network['id']}/agents", json=agent)
        assert r.status_code == 409
        bad = {**agent, "name": "other_agent", "tools": ["rm_rf"]}
        r = await client.post(f"/networks/{network['id']}/agents", json=bad)
        assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] in ("tools", 0)
        coordinator = next(a for a in network["agents"] if a["name"] == "coordinator")
        path = f"/networks/{network['id']}/agents/{coordinator['id']}"
        assert (await client.delete(path)).status_code == 409
    specialist_call = next(
        info.kwargs for _, info in model.seen if "client_churn_risk" in info.tools
    )
    assert specialist_call["temperature"] == 0.3 and specialist_call["max_tokens"] == 300
    preferred = [p.get("prefer") for p in chain_calls.params if p.get("max_tokens") == 300]
    assert preferred == ["local"]


class InvocationParams(BaseCallbackHandler):
    """Records the keyword arguments of every call of the chat model it is attached to."""

    run_inline = True

    def __init__(self) -> None:
        self.params: list[dict] = []

    def on_chat_model_start(self, serialized, messages, **kwargs) -> None:
        self.params.append(kwargs.get("invocation_params") or {})


async def test_deleting_a_network_deletes_its_tasks_and_event_logs(api, scripts):
    scripts.update(churn_script())
    key = await api.key()
    async with api.client(key) as client:
        network = await new_network(client)
        task = await wait_done(client, await submit(client, network))
        events = api.app.state.services.events
        assert await events.last_id(task["id"]) > 0
        assert (await client.delete(f"/networks/{network['id']}")).status_code == 204
        assert (await client.get(f"/networks/{network['id']}")).status_code == 404
        assert (await client.get(f"/tasks/{task['id']}/events")).status_code == 404
        assert await events.last_id(task["id"]) == 0


def test_fake_model_is_the_streaming_one(model):
    assert isinstance(model, FunctionChatModel) and model.streaming
