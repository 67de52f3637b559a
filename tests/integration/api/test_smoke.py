import asyncio

from langchain_core.messages import AIMessage

from tests.fakes import call, calls


async def wait_done(client, network_id, task_id, timeout=30.0):
    for _ in range(int(timeout / 0.05)):
        r = await client.get(f"/networks/{network_id}/tasks/{task_id}")
        if r.json()["status"] not in ("pending", "running"):
            return r.json()
        await asyncio.sleep(0.05)
    raise AssertionError(f"task {task_id} still {r.json()['status']}")


async def test_network_task_roundtrip(api, model):
    model.scripts.update(
        {
            "ask_churn_analyst": [
                calls(call("ask_churn_analyst", "c1", request="Top churn risks")),
                AIMessage("The churn analyst ranked the clients most likely to leave."),
            ],
            "top_churn_risks": [calls(call("top_churn_risks", "t1", limit=3))],
        }
    )
    key = await api.key()
    async with api.client(key) as client:
        r = await client.post("/networks", json={"name": "MSP one"})
        assert r.status_code == 201, r.text
        network = r.json()
        assert [a["name"] for a in network["agents"]] == [
            "coordinator",
            "churn_analyst",
            "billing_analyst",
            "pricing_analyst",
        ] or sorted(a["name"] for a in network["agents"]) == sorted(
            ["coordinator", "churn_analyst", "billing_analyst", "pricing_analyst"]
        )
        r = await client.post(f"/networks/{network['id']}/tasks", json={"task": "Who will churn?"})
        assert r.status_code == 202, r.text
        task = await wait_done(client, network["id"], r.json()["id"])
        assert task["status"] == "succeeded", task
        assert task["agents"] == ["churn_analyst"]
        r = await client.get(f"/tasks/{task['id']}/events")
        assert r.status_code == 200
        print(r.text[:3000])
