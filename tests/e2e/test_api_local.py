"""The service end to end: a churn question over HTTP, answered by the real local model."""

import json

import pytest
from httpx_sse import aconnect_sse

from aimesh.llm.gguf import packaged_gguf_path
from tests.helpers.api import api_settings, serve

pytestmark = pytest.mark.e2e


async def test_churn_question_streams_over_sse_and_is_stored_with_its_evidence(
    settings, sample, default_home, tmp_path
):
    local = api_settings(settings.home, tmp_path, gguf_path=packaged_gguf_path(default_home))
    sample.churn()  # trained once for the session, outside the timed run
    async with serve(local, model=None) as api:
        key = await api.key(tenant="acme", role="user")
        async with api.client(key, timeout=900) as client:
            network = (await client.post("/networks", json={"name": "Acme MSP"})).json()
            body = {"task": "Which of our clients are most likely to churn, and why?"}
            async with aconnect_sse(
                client, "POST", f"/networks/{network['id']}/tasks/stream", json=body
            ) as source:
                events = [json.loads(sse.data) async for sse in source.aiter_sse() if sse.data]
            task_id = events[0]["task_id"]
            task = (await client.get(f"/networks/{network['id']}/tasks/{task_id}")).json()
            memory = await client.get(f"/networks/{network['id']}/memory", params={"type": "fact"})
    names = [e["event"] for e in events]
    assert names[0] == "started" and names[-2:] == ["result", "complete"], names
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    assert "token" in names  # the answer streamed token by token
    assert task["status"] == "succeeded"
    assert task["agents"] == ["churn_analyst"]
    assert task["result"]["tool_calls"][0]["tool"] == "top_churn_risks"
    assert task["tokens_input"] > 0 and float(task["cost_usd"]) == 0.0
    assert events[-2]["data"]["answer"] == task["result"]["answer"]
    operations = [e["data"]["operation"] for e in events if e["event"] == "memory"]
    found = [c for c in task["result"]["tool_calls"] if isinstance(c["result"], dict)]
    assert operations == ["recall"] + ["write"] * len(found), operations  # one per finding
    facts = memory.json()["items"]
    assert len(facts) == len(found) >= 1
    assert {f["source"]["name"] for f in facts} == {"churn_analyst"}
    assert {f["source"]["task_id"] for f in facts} == {task_id}
