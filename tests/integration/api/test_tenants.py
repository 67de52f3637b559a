"""Tenant isolation: every route with an id in its path answers 404 to another tenant.

Tenant A builds a network, a custom agent, a thread with a finished task and an API key;
tenant B (an admin) then tries every method of every route with a path parameter (taken from
``app.routes``, so a new route cannot be forgotten) on A's ids. Each answer must be the same
404 a missing id gets, A's records must be unchanged, and B's lists must show none of them.
"""

from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute

from aimesh.api.app import PREFIX
from aimesh.store.tables import new_id
from tests.fakes import Scripts
from tests.helpers.api import PARAM, Running, app_routes, key_id, wait_book
from tests.helpers.exports import telco_export
from tests.helpers.tasks import churn_script, wait_done

# Valid bodies of the POST routes with a path parameter, so that only ownership decides the
# answer (None: the route takes no body). A new POST route must be added here.
POST_BODIES: dict[str, dict[str, Any] | None] = {
    "/networks/{network_id}/agents": {
        "name": "intruder",
        "description": "An agent another tenant tries to plant.",
        "prompt": "You rank churn risks for the intruder.",
        "tools": ["top_churn_risks"],
    },
    "/networks/{network_id}/tasks": {"task": "Who will churn?"},
    "/networks/{network_id}/tasks/stream": {"task": "Who will churn?"},
    "/networks/{network_id}/tasks/{task_id}/process": None,
    "/networks/{network_id}/tasks/{task_id}/cancel": None,
    "/networks/{network_id}/threads": {"title": "intrusion"},
    "/threads/{thread_id}/messages": {"content": "Who will churn?"},
    "/networks/{network_id}/memory": {"type": "fact", "content": "Planted by another tenant"},
    "/portfolio/clients/{client_id}/price-recommendation": {"max_change_pct": 5},
}
RANDOM_IDS = {
    "network_id": new_id,
    "agent_id": new_id,
    "task_id": new_id,
    "thread_id": new_id,
    "item_id": new_id,
    "budget_id": new_id,
    "client_id": lambda: f"X-{new_id()[:12]}",
}


async def build_tenant(client: httpx.AsyncClient, name: str) -> dict[str, str]:
    """A network with a custom agent, a thread whose question ran, a memory item, a key, a
    budget and a client book of 200 clients (ids ``<name>-0001``...)."""
    r = await client.post("/networks", json={"name": f"{name} network"})
    assert r.status_code == 201, r.text
    network_id = r.json()["id"]
    agent = {
        "name": f"{name}_ranker",
        "description": f"Ranks the clients of {name} by churn risk.",
        "prompt": "You rank clients by churn risk and cite the model's numbers.",
        "tools": ["top_churn_risks"],
    }
    r = await client.post(f"/networks/{network_id}/agents", json=agent)
    assert r.status_code == 201, r.text
    assert r.json()["kind"] == "custom" and r.json()["tools"] == ["top_churn_risks"]
    agent_id = r.json()["id"]
    r = await client.post(f"/networks/{network_id}/threads", json={"title": f"{name} chat"})
    assert r.status_code == 201, r.text
    thread_id = r.json()["id"]
    r = await client.post(f"/threads/{thread_id}/messages", json={"content": "Who will churn?"})
    assert r.status_code == 202, r.text
    task = await wait_done(client, r.json())
    assert task["status"] == "succeeded", task
    assert task["thread_id"] == thread_id
    r = await client.post(
        f"/networks/{network_id}/memory", json={"type": "fact", "content": f"{name} note"}
    )
    assert r.status_code == 201, r.text
    item_id = r.json()["id"]
    r = await client.post("/security/api-keys", json={"user_id": f"{name}-svc", "role": "service"})
    assert r.status_code == 201, r.text
    key = r.json()
    budget = {"scope": "network", "scope_id": network_id, "period": "month", "limit_usd": "100"}
    r = await client.post("/budgets", json=budget)
    assert r.status_code == 201, r.text
    budget_id = r.json()["id"]
    book = telco_export().head(200).assign(account_id=[f"{name}-{i:04d}" for i in range(200)])
    rows = {"mapping": {"client_id": "account_id"}, "rows": book.to_dict(orient="records")}
    r = await client.post("/portfolio/imports", json=rows)
    assert r.status_code == 202, r.text
    await wait_book(client, 1)
    return {
        "network_id": network_id,
        "agent_id": agent_id,
        "thread_id": thread_id,
        "task_id": task["id"],
        "item_id": item_id,
        "key_id": key["id"],
        "service_key": key["api_key"],
        "budget_id": budget_id,
        "client_id": f"{name}-0007",
    }


async def snapshot(client: httpx.AsyncClient, ids: dict[str, str]) -> dict[str, Any]:
    """Everything a tenant can read about its records."""
    network, thread = ids["network_id"], ids["thread_id"]
    paths = [
        "/networks",
        f"/networks/{network}",
        f"/networks/{network}/agents",
        f"/networks/{network}/tasks",
        f"/networks/{network}/tasks/{ids['task_id']}",
        f"/networks/{network}/threads",
        f"/threads/{thread}",
        f"/threads/{thread}/messages",
        f"/networks/{network}/memory",
        f"/networks/{network}/memory/{ids['item_id']}",
        "/security/api-keys?include_revoked=true",
        "/budgets",
        "/portfolio",
    ]
    out = {}
    for path in paths:
        r = await client.get(path)
        assert r.status_code == 200, (path, r.text)
        out[path] = r.json()
    return out


def routes_with_ids(app: FastAPI) -> list[tuple[str, str]]:
    """``(method, path)`` of every route with a path parameter, path without the prefix."""
    found = []
    for method, path, route in app_routes(app):
        if PARAM.search(path):
            assert isinstance(route, APIRoute), f"{path}: not an APIRoute, cover it here"
            found.append((method, path.removeprefix(PREFIX)))
    return found


def masked(detail: Any, ids: list[str]) -> str:
    """A 404 detail with the ids in it replaced, to compare answers for different ids."""
    text = str(detail)
    for id_ in ids:
        text = text.replace(id_, "<id>")
    return text


async def test_other_tenant_gets_404_on_every_route_with_an_id(
    api: Running, scripts: Scripts
) -> None:
    scripts.update(churn_script(times=2))
    a_key = await api.key(tenant="tenant-a", user_id="alice")
    b_key = await api.key(tenant="tenant-b", user_id="bob")
    async with api.client(a_key) as a, api.client(b_key) as b:
        ours = await build_tenant(a, "alpha")
        theirs = await build_tenant(b, "beta")
        before = await snapshot(a, ours)
        a_ids = {name: ours[name] for name in (*RANDOM_IDS, "key_id")}

        routes = routes_with_ids(api.app)
        assert len(routes) >= 19, routes  # the 19 routes of issue 3, and any new ones
        attempts = 0
        for method, template in routes:
            params = PARAM.findall(template)
            unknown = set(params) - a_ids.keys()
            assert not unknown, f"{method} {template}: give tenant A a record for {unknown}"
            if method == "POST":
                assert template in POST_BODIES, f"POST {template}: add its body to POST_BODIES"
            body = POST_BODIES.get(template) if method == "POST" else None
            random = {"key_id": new_id()[:16], **{k: f() for k, f in RANDOM_IDS.items()}}
            cases = {
                "A's ids": a_ids,
                "missing ids": random,
                # B's own network with A's child record: the child must be checked too
                "B's network": {**a_ids, "network_id": theirs["network_id"]},
            }
            if "network_id" not in params or len(params) == 1:
                del cases["B's network"]
            details = {}
            for label, ids in cases.items():
                url = template.format(**{p: ids[p] for p in params})
                r = await b.request(method, url, json=body)
                attempts += 1
                assert r.status_code == 404, (label, method, url, r.status_code, r.text)
                assert r.headers["content-type"] == "application/json", (method, url)
                details[label] = masked(r.json()["detail"], [*ids.values(), *theirs.values()])
            # A's ids get exactly the answer of ids that do not exist: nothing leaks
            assert details["A's ids"] == details["missing ids"], (method, template, details)

        assert await snapshot(a, ours) == before
        async with api.client(ours["service_key"]) as service:
            assert (await service.get("/networks")).status_code == 200

        # B's lists show B's records only
        r = await b.get("/networks")
        assert [n["id"] for n in r.json()["items"]] == [theirs["network_id"]]
        assert r.json()["total"] == 1
        r = await b.get(f"/networks/{theirs['network_id']}/tasks")
        assert [t["id"] for t in r.json()["items"]] == [theirs["task_id"]]
        r = await b.get(f"/networks/{theirs['network_id']}/threads")
        assert [t["id"] for t in r.json()["items"]] == [theirs["thread_id"]]
        r = await b.get("/security/api-keys", params={"include_revoked": True})
        assert {k["id"] for k in r.json()["items"]} == {key_id(b_key), theirs["key_id"]}
        r = await b.get("/budgets")
        assert [x["id"] for x in r.json()["items"]] == [theirs["budget_id"]]
        r = await b.get("/portfolio")
        assert [v["info"]["tenant"] for v in r.json()["versions"]] == ["tenant-b"]
        r = await b.get("/portfolio/clients", params={"limit": 500})
        assert not [c for c in r.json()["clients"] if c["client_id"].startswith("alpha")]
        secret_words = [*ours.values(), key_id(a_key), "alice", "alpha", "tenant-a"]
        for path in ("/networks", "/security/api-keys", "/budgets", "/stats/cost", "/stats/usage"):
            text = (await b.get(path)).text
            assert not [w for w in secret_words if w in text], (path, text)
        r = await b.get("/stats/cost")
        assert r.json()["per_user"] == {"bob": "0"}
        assert r.json()["per_network"] == {theirs["network_id"]: "0"}
        assert (await b.get("/stats/usage")).json()["total_calls"] == 3
        assert (await a.get("/stats/cost")).json()["per_network"] == {ours["network_id"]: "0"}

        # B's audit log: its own requests only; A's ids appear only in B's refused attempts
        r = await b.get("/security/audit-logs", params={"limit": 500})
        entries = r.json()["items"]
        assert r.json()["total"] == len(entries)
        assert {e["key_id"] for e in entries} == {key_id(b_key)}
        assert {e["user_id"] for e in entries} == {"bob"}
        refused = [e for e in entries if e["result"] == "not_found"]
        assert len(refused) == attempts
        assert {e["status_code"] for e in refused} == {404}
        leaked = [
            e for e in entries if e["result"] != "not_found" and e["resource_id"] in ours.values()
        ]
        assert leaked == []
        # ...while A's own log has A's records
        r = await a.get("/security/audit-logs", params={"action": "create_network"})
        assert [e["resource_id"] for e in r.json()["items"]] == [ours["network_id"]]
