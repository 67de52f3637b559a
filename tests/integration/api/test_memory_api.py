"""A network's shared memory over HTTP, and memory read and written by a task's agents."""

import json

from httpx_sse import aconnect_sse

from tests.helpers.tasks import churn_script, new_network, submit, wait_done


async def test_add_list_recall_get_and_delete_memory(api):
    key = await api.key(user_id="ada")
    async with api.client(key) as client:
        net = (await new_network(client))["id"]
        base = f"/networks/{net}/memory"
        r = await client.post(base, json={"type": "fact", "content": "C01234 pays 40 days late"})
        assert r.status_code == 201, r.text
        fact = r.json()
        assert fact["source"] == {"kind": "user", "name": "ada", "task_id": None}
        r = await client.post(
            base,
            json={"type": "feedback", "content": "Show churn risks as a table", "ttl_days": 2},
        )
        feedback = r.json()
        lifetime = feedback["expires_at"][:10], feedback["created_at"][:10]
        assert lifetime[0] > lifetime[1]

        r = await client.get(base)
        assert [i["id"] for i in r.json()["items"]] == [feedback["id"], fact["id"]]
        r = await client.get(base, params={"type": "fact"})
        assert [i["id"] for i in r.json()["items"]] == [fact["id"]]
        r = await client.get(base, params={"query": "which client is slow to pay?", "limit": 1})
        hit = r.json()["items"][0]
        assert hit["id"] == fact["id"] and 0 <= hit["distance"] < 1

        assert (await client.get(f"{base}/{fact['id']}")).json() == fact
        assert (await client.delete(f"{base}/{fact['id']}")).status_code == 204
        assert (await client.get(f"{base}/{fact['id']}")).status_code == 404
        assert (await client.delete(f"{base}/{fact['id']}")).status_code == 404
        r = await client.get(base, params={"query": "slow payer"})
        assert [i["id"] for i in r.json()["items"]] == [feedback["id"]]


async def test_bad_memory_input_is_refused_with_the_field_named(api):
    key = await api.key()
    async with api.client(key) as client:
        net = (await new_network(client))["id"]
        base = f"/networks/{net}/memory"
        for body, field in [
            ({"type": "rumour", "content": "x"}, "type"),
            ({"type": "fact", "content": ""}, "content"),
            ({"type": "fact", "content": "x" * 4001}, "content"),
            ({"type": "fact", "content": "x", "ttl_days": 0}, "ttl_days"),
            ({"type": "fact", "content": "x", "task_id": "../etc"}, "task_id"),
            ({"type": "fact", "content": "x", "tenant": "globex"}, "tenant"),
        ]:
            r = await client.post(base, json=body)
            assert r.status_code == 422, body
            assert field in json.dumps(r.json()), r.text
        assert (await client.get(base)).json()["items"] == []
        assert (await client.get(base, params={"limit": 0})).status_code == 422


async def test_another_tenants_memory_answers_404(api):
    mine, theirs = await api.key(tenant="acme"), await api.key(tenant="globex")
    async with api.client(mine) as client:
        net = (await new_network(client))["id"]
        r = await client.post(f"/networks/{net}/memory", json={"type": "fact", "content": "x"})
        item = r.json()["id"]
    async with api.client(theirs) as client:
        assert (await client.get(f"/networks/{net}/memory")).status_code == 404
        assert (await client.get(f"/networks/{net}/memory/{item}")).status_code == 404
        assert (await client.delete(f"/networks/{net}/memory/{item}")).status_code == 404
        r = await client.post(f"/networks/{net}/memory", json={"type": "fact", "content": "y"})
        assert r.status_code == 404


async def test_a_task_recalls_memory_first_and_records_what_its_specialist_found(
    api, model, scripts
):
    scripts.update(churn_script(times=2))
    key = await api.key()
    async with api.client(key) as client:
        network = await new_network(client)
        base = f"/networks/{network['id']}/memory"
        note = "Feedback: for churn questions, list the client ids first"
        await client.post(base, json={"type": "feedback", "content": note})

        task = await wait_done(client, await submit(client, network, "Who will churn?"))
        assert task["status"] == "succeeded", task
        events = []
        async with aconnect_sse(client, "GET", f"/tasks/{task['id']}/events") as source:
            events = [json.loads(e.data) async for e in source.aiter_sse()]
        memory = [e for e in events if e["event"] == "memory"]
        assert [e["data"]["operation"] for e in memory] == ["recall", "write"]
        assert memory[0]["agent"] == "coordinator"
        assert [i["type"] for i in memory[0]["data"]["items"]] == ["feedback"]
        assert memory[1]["agent"] == "churn_analyst"
        coordinator_prompt = model.seen[0][0]
        assert any(note in str(m.content) for m in coordinator_prompt)

        facts = (await client.get(base, params={"type": "fact"})).json()["items"]
        assert len(facts) == 1 and facts[0]["id"] == memory[1]["data"]["items"][0]["id"]
        assert facts[0]["source"] == {
            "kind": "agent",
            "name": "churn_analyst",
            "task_id": task["id"],
        }
        assert "top_churn_risks" in facts[0]["content"]

        await wait_done(client, await submit(client, network, "Who will churn now?"))
        coordinator = [msgs for msgs, info in model.seen if "ask_churn_analyst" in info.tools]
        assert len(coordinator) == 4  # delegate + answer, twice
        recalled = [m for m in coordinator[2] if "Shared memory" in str(m.content)]
        assert recalled and "top_churn_risks" in str(recalled[0].content)


async def test_health_reports_chroma_idle_until_memory_is_used_then_ok(api):
    key = await api.key()
    async with api.client(key) as client:
        r = await client.get("/health")
        checks = r.json()["checks"]
        assert checks["database"]["status"] == "ok" and checks["redis"]["status"] == "ok"
        assert checks["chroma"]["status"] == "idle", checks["chroma"]
        assert "first use" in checks["chroma"]["detail"]
        net = (await new_network(client))["id"]
        await client.post(f"/networks/{net}/memory", json={"type": "fact", "content": "x"})
        chroma = (await client.get("/health")).json()["checks"]["chroma"]
        assert chroma["status"] == "ok" and chroma["latency_ms"] >= 0, chroma
