"""Tasks over the API: the churn question's script for the fake model, networks, tasks."""

import asyncio

import httpx
from langchain_core.messages import AIMessage

from tests.fakes import Scripts, call, calls

CHURN = {
    "ask_churn_analyst": [
        calls(call("ask_churn_analyst", "c1", request="Top churn risks")),
        AIMessage("The churn analyst ranked the clients most likely to leave."),
    ],
    "top_churn_risks": [calls(call("top_churn_risks", "t1", limit=3))],
}


def churn_script(times: int = 1) -> Scripts:
    """Scripts (:func:`tests.fakes.by_role`) of ``times`` runs of the churn question: the
    coordinator asks the churn analyst, which ranks 3 clients, then answers."""
    return {role: [m for _ in range(times) for m in replies] for role, replies in CHURN.items()}


async def new_network(client: httpx.AsyncClient, **body) -> dict:
    r = await client.post("/networks", json={"name": "MSP", **body})
    assert r.status_code == 201, r.text
    return r.json()


async def submit(
    client: httpx.AsyncClient, network: dict, text: str = "Who will churn?", **body
) -> dict:
    r = await client.post(f"/networks/{network['id']}/tasks", json={"task": text, **body})
    assert r.status_code == 202, r.text
    return r.json()


async def wait_done(client: httpx.AsyncClient, task: dict, timeout: float = 60.0) -> dict:
    """The task once it has left pending/running (``timeout`` seconds at most)."""
    path = f"/networks/{task['network_id']}/tasks/{task['id']}"
    for _ in range(int(timeout / 0.05)):
        r = await client.get(path)
        assert r.status_code == 200, r.text
        if r.json()["status"] not in ("pending", "running"):
            return r.json()
        await asyncio.sleep(0.05)
    raise AssertionError(f"task {task['id']} still {r.json()['status']}")
