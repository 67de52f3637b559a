"""Security of the API: keys, scopes, secrets, rate and size limits, validation, CORS,
audit log and retention, against the real app served on loopback."""

import asyncio
import hashlib
import hmac
import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError

from aimesh.api.app import PREFIX
from aimesh.memory.items import MemoryScope, Source
from aimesh.store.tables import ApiKey, AuditEntry, Task, new_id, utcnow
from tests.fakes import Scripts
from tests.helpers.api import PARAM, Running, ServeWith, app_routes, key_id
from tests.helpers.tasks import churn_script, wait_done


async def network(client: httpx.AsyncClient, name: str = "MSP one") -> str:
    r = await client.post("/networks", json={"name": name})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def error_fields(response: httpx.Response) -> list[list[Any]]:
    """The ``loc`` of each error of a 422 answer."""
    return [error["loc"] for error in response.json()["detail"]]


# --- authentication ------------------------------------------------------------------------


async def test_requests_without_a_valid_key_get_401(api: Running) -> None:
    key = await api.key(tenant="acme", role="admin")
    real_id = key_id(key)
    async with api.client() as anonymous:
        r = await anonymous.get("/networks")
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == "Bearer"
        assert "X-API-Key" in r.json()["detail"]
        bad_keys = {
            "malformed": "not-a-key",
            "malformed id": "amk_XYZ.abc",
            "unknown id": f"amk_{new_id()[:16]}.{'a' * 43}",
            "wrong secret": f"amk_{real_id}.{'b' * 43}",
            "truncated": key[:-1],
        }
        for label, bad in bad_keys.items():
            for headers in ({"X-API-Key": bad}, {"Authorization": f"Bearer {bad}"}):
                r = await anonymous.get("/networks", headers=headers)
                assert r.status_code == 401, (label, headers, r.text)
                assert r.headers["www-authenticate"] == "Bearer"
        # the real key works in either header
        for headers in ({"X-API-Key": key}, {"Authorization": f"Bearer {key}"}):
            r = await anonymous.get("/networks", headers=headers)
            assert r.status_code == 200, r.text
            assert r.json()["total"] == 0


async def test_revoked_and_expired_keys_get_401_at_once(api: Running) -> None:
    admin = await api.key(tenant="acme", role="admin")
    async with api.client(admin) as client:
        r = await client.post("/security/api-keys", json={"user_id": "svc", "role": "service"})
        assert r.status_code == 201, r.text
        service = r.json()["api_key"]
        async with api.client(service) as svc:
            assert (await svc.get("/networks")).status_code == 200
            r = await client.delete(f"/security/api-keys/{r.json()['id']}")
            assert r.status_code == 204
            r = await svc.get("/networks")
            assert r.status_code == 401
            assert r.headers["www-authenticate"] == "Bearer"
        r = await client.get("/security/api-keys", params={"include_revoked": True})
        revoked = [k for k in r.json()["items"] if k["id"] == key_id(service)]
        assert revoked[0]["revoked_at"] is not None
        r = await client.get("/security/api-keys")
        assert key_id(service) not in [k["id"] for k in r.json()["items"]]

        # an expiry in the past is refused; a future one works until it passes
        past = (utcnow() - timedelta(minutes=1)).isoformat()
        r = await client.post("/security/api-keys", json={"user_id": "x", "expires_at": past})
        assert r.status_code == 422
        assert error_fields(r) == [["body", "expires_at"]]
        expiry = utcnow() + timedelta(seconds=2)
        r = await client.post(
            "/security/api-keys", json={"user_id": "tmp", "expires_at": expiry.isoformat()}
        )
        assert r.status_code == 201, r.text
        temporary = r.json()["api_key"]
    async with api.client(temporary) as tmp:
        assert (await tmp.get("/networks")).status_code == 200  # verified and cached
        await asyncio.sleep((expiry - utcnow()).total_seconds() + 0.1)
        r = await tmp.get("/networks")
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == "Bearer"


# --- scopes --------------------------------------------------------------------------------


async def test_scopes_limit_what_a_key_may_do(api: Running) -> None:
    admin = await api.key(tenant="acme", role="admin")
    user = await api.key(tenant="acme", role="user")
    reader = await api.key(tenant="acme", role="service", scopes=["read"])
    async with api.client(admin) as a, api.client(user) as u, api.client(reader) as r_:
        network_id = await network(a)
        r = await u.delete(f"/networks/{network_id}")
        assert r.status_code == 403
        assert r.json()["detail"] == "this key (role user) lacks scope delete"
        assert (await u.get("/security/audit-logs")).status_code == 403
        assert (await u.get("/security/api-keys")).status_code == 403
        r = await r_.post("/networks", json={"name": "read only"})
        assert r.status_code == 403
        assert r.json()["detail"] == "this key (role service) lacks scope create"
        assert (await r_.get(f"/networks/{network_id}")).status_code == 200
        # nothing was deleted or created by the refused requests
        r = await a.get("/networks")
        assert [n["id"] for n in r.json()["items"]] == [network_id]

        r = await a.post(
            "/security/api-keys", json={"user_id": "u", "role": "user", "scopes": ["delete"]}
        )
        assert r.status_code == 422
        assert error_fields(r) == [["body", "scopes"]]
        assert "cannot hold ['delete']" in r.json()["detail"][0]["msg"]
        r = await a.post("/security/api-keys", json={"user_id": "u", "scopes": ["root"]})
        assert r.status_code == 422
        assert error_fields(r) == [["body", "scopes", 0]]
        r = await a.post(
            "/security/api-keys", json={"user_id": "u", "role": "user", "scopes": ["read"]}
        )
        assert r.status_code == 201, r.text
        assert (r.json()["role"], r.json()["scopes"]) == ("user", ["read"])
        r = await a.post("/security/api-keys", json={"user_id": "u2", "role": "service"})
        assert r.json()["scopes"] == ["create", "delete", "read", "write"]


UNSECURED = {"/health", "/openapi.json", "/docs", "/docs/oauth2-redirect"}


@pytest.mark.parametrize("backend", ["embedded"])
async def test_every_route_declares_a_scope(api: Running) -> None:
    async with api.client() as client:
        spec = (await client.get("/openapi.json")).json()
    checked, skipped = set(), set()
    for method, path, route in app_routes(api.app):
        if path.removeprefix(PREFIX) in UNSECURED:
            skipped.add(path.removeprefix(PREFIX))
            continue
        assert isinstance(route, APIRoute), path
        operation = spec["paths"][path][method.lower()]
        security = operation.get("security")
        assert security, f"{method} {path} declares no security"
        for requirement in security:
            for scheme, scopes in requirement.items():
                assert scopes, f"{method} {path}: {scheme} without a scope"
        checked.add((method, path))
    assert skipped == UNSECURED
    assert len(checked) >= 31
    assert "security" not in spec["paths"][f"{PREFIX}/health"]["get"]


@pytest.mark.parametrize("backend", ["embedded"])
async def test_every_route_refuses_a_key_without_scopes(api: Running) -> None:
    """The declared scopes are enforced: no key -> 401, a key with no scope -> 403."""
    no_scopes = await api.key(tenant="acme", role="admin", scopes=[])
    async with api.client() as anonymous, api.client(no_scopes) as scopeless:
        for method, path, _ in app_routes(api.app):
            if path.removeprefix(PREFIX) in UNSECURED or method == "HEAD":
                continue
            url = PARAM.sub(lambda m: new_id()[:16] if m[1] == "key_id" else new_id(), path)
            url = url.removeprefix(PREFIX)
            body = {} if method == "POST" else None
            r = await anonymous.request(method, url, json=body)
            assert r.status_code == 401, (method, url, r.text)
            r = await scopeless.request(method, url, json=body)
            assert r.status_code == 403, (method, url, r.text)
            assert "lacks scope" in r.json()["detail"]


# --- API key secrets -----------------------------------------------------------------------


async def test_api_key_secret_is_shown_once_and_stored_as_hmac(api: Running) -> None:
    admin = await api.key(tenant="acme", role="admin")
    async with api.client(admin) as client:
        r = await client.post(
            "/security/api-keys", json={"user_id": "ops@msp", "role": "user", "name": "ops"}
        )
        assert r.status_code == 201, r.text
        created = r.json()
        api_key = created["api_key"]
        assert re.fullmatch(r"amk_[0-9a-f]{16}\.[A-Za-z0-9_-]{43}", api_key)
        assert api_key.startswith(f"amk_{created['id']}.")
        assert (created["user_id"], created["role"], created["name"]) == ("ops@msp", "user", "ops")
        assert created["scopes"] == ["create", "read", "write"]
        assert "secret_hash" not in created

        async with api.app.state.services.db.sessions() as session:
            row = await session.get_one(ApiKey, created["id"])
        assert re.fullmatch(r"[0-9a-f]{64}", row.secret_hash)
        assert row.secret_hash != api_key
        assert api_key not in row.secret_hash
        secret = (api.app.state.services.settings.home_dir / "key_secret").read_bytes()
        assert row.secret_hash == hmac.new(secret, api_key.encode(), hashlib.sha256).hexdigest()

        r = await client.get("/security/api-keys")
        listed = [k for k in r.json()["items"] if k["id"] == created["id"]]
        assert listed == [{k: v for k, v in created.items() if k != "api_key"}]
        assert all("api_key" not in k for k in r.json()["items"])
        secret_part = api_key.split(".", 1)[1]
        assert secret_part not in r.text
        assert row.secret_hash not in r.text
    async with api.client(api_key) as new:
        assert (await new.get("/networks")).status_code == 200


# --- rate limit ----------------------------------------------------------------------------


async def test_rate_limit_per_key_answers_429_with_retry_after(serve_with: ServeWith) -> None:
    async with serve_with(rate_limit="5/minute") as api:
        first = await api.key(tenant="acme", role="admin")
        second = await api.key(tenant="acme", role="admin")
        async with api.client(first) as one, api.client(second) as two:
            for _ in range(5):
                assert (await one.get("/networks")).status_code == 200
            r = await one.get("/networks")
            assert r.status_code == 429
            assert re.fullmatch(r"[1-9][0-9]*", r.headers["retry-after"])
            assert 1 <= int(r.headers["retry-after"]) <= 60
            assert "5/minute" in r.json()["detail"]
            assert (await one.post("/networks", json={"name": "n"})).status_code == 429
            assert (await two.get("/networks")).status_code == 200
            r = await two.get("/security/audit-logs", params={"result": "rate_limited"})
            assert [(e["key_id"], e["status_code"]) for e in r.json()["items"]] == [
                (key_id(first), 429),
                (key_id(first), 429),
            ]


# --- request size --------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["embedded"])
async def test_bodies_over_the_limit_get_413(serve_with: ServeWith) -> None:
    async with serve_with(max_body_bytes=2048) as api:
        key = await api.key(tenant="acme", role="admin")

        def body(name: str, size: int) -> bytes:
            """A JSON body of exactly ``size`` bytes (padded with whitespace)."""
            head = f'{{"name": "{name}"'.encode()
            return head + b" " * (size - len(head) - 1) + b"}"

        big, small = body("big", 2049), body("small", 2048)

        async def chunked(body: bytes) -> AsyncIterator[bytes]:
            for start in range(0, len(body), 500):
                yield body[start : start + 500]

        headers = {"content-type": "application/json"}
        async with api.client(key) as client:
            r = await client.post("/networks", content=big, headers=headers)
            assert r.status_code == 413
            assert r.json() == {"detail": "request body over 2048 bytes"}
            r = await client.post("/networks", content=chunked(big), headers=headers)
            assert r.request.headers["transfer-encoding"] == "chunked"
            assert r.status_code == 413, r.text
            assert r.json() == {"detail": "request body over 2048 bytes"}
            # bodies within the limit pass, declared or chunked
            r = await client.post("/networks", content=small, headers=headers)
            assert r.status_code == 201, r.text
            r = await client.post("/networks", content=chunked(small), headers=headers)
            assert r.status_code == 201, r.text
            r = await client.get("/networks")
            assert sorted(n["name"] for n in r.json()["items"]) == ["small", "small"]


# --- strict validation ---------------------------------------------------------------------


async def test_strict_validation_names_the_field(api: Running) -> None:
    key = await api.key(tenant="acme", role="admin")
    async with api.client(key) as client:
        net = await network(client)
        nets, task_url = "/networks", f"/networks/{net}/tasks"
        agent = {
            "name": "auditor",
            "description": "Checks invoices for anomalies.",
            "prompt": "You check invoices carefully.",
            "tools": ["top_churn_risks"],
        }
        cases: list[tuple[str, str, Any, list[Any]]] = [
            ("POST", nets, {"name": "n", "bogus": 1}, ["body", "bogus"]),
            ("POST", nets, {"name": "x" * 101}, ["body", "name"]),
            ("POST", nets, {"name": "   "}, ["body", "name"]),
            ("POST", nets, {"name": "n", "max_iterations": 0}, ["body", "max_iterations"]),
            ("POST", nets, {"name": "n", "max_iterations": 10**6}, ["body", "max_iterations"]),
            ("POST", nets, {"name": "n", "timeout_seconds": -1}, ["body", "timeout_seconds"]),
            ("POST", nets, ["a list"], ["body"]),
            ("POST", task_url, {"task": "t", "priority": 10}, ["body", "priority"]),
            ("POST", task_url, {"task": "t", "priority": -1}, ["body", "priority"]),
            ("POST", task_url, {"task": "x" * 2001}, ["body", "task"]),
            ("POST", task_url, {"task": "t", "context": {"a": "x" * 10_001}}, ["body", "context"]),
            ("POST", task_url, {"task": "t", "context": "text"}, ["body", "context"]),
            (
                "POST",
                task_url,
                {"task": "t", "model_selection": {"task_complexity": "EXTREME"}},
                ["body", "model_selection", "task_complexity"],
            ),
            ("POST", task_url, {"task": "t", "extra": True}, ["body", "extra"]),
            ("POST", f"/networks/{net}/agents", {**agent, "name": "Bad Name"}, ["body", "name"]),
            ("POST", f"/networks/{net}/agents", {**agent, "tools": ["rm_rf"]}, ["body", "tools"]),
            ("POST", f"/networks/{net}/agents", {**agent, "tools": []}, ["body", "tools"]),
            ("POST", f"/networks/{net}/threads", {"title": "t" * 201}, ["body", "title"]),
            ("GET", "/networks/not-an-id", None, ["path", "network_id"]),
            ("GET", "/networks/" + "a" * 300, None, ["path", "network_id"]),
            ("GET", f"/networks/{net}/tasks/{net.upper()}", None, ["path", "task_id"]),
            ("DELETE", "/security/api-keys/xyz", None, ["path", "key_id"]),
            ("GET", "/networks?limit=0", None, ["query", "limit"]),
            ("GET", f"{task_url}?status=done", None, ["query", "status"]),
            ("GET", "/security/audit-logs?since=yesterday", None, ["query", "since"]),
            ("POST", "/security/api-keys", {"user_id": "a b"}, ["body", "user_id"]),
            ("POST", "/security/api-keys", {"user_id": "u", "role": "root"}, ["body", "role"]),
        ]
        for method, url, body, field in cases:
            r = await client.request(method, url, json=body)
            assert r.status_code == 422, (method, url, r.status_code, r.text)
            assert error_fields(r)[0] == field, (method, url, r.text)
            assert "Traceback" not in r.text
        # nothing half-written by the refused requests
        assert (await client.get("/networks")).json()["total"] == 1
        assert (await client.get(task_url)).json()["total"] == 0
        assert len((await client.get(f"/networks/{net}/agents")).json()) == 4
        # every refusal is audited as invalid, the over-long id included
        r = await client.get("/security/audit-logs", params={"result": "invalid", "limit": 100})
        assert r.json()["total"] == len(cases)
        assert {e["status_code"] for e in r.json()["items"]} == {422}
        r = await client.post(
            "/networks", content=b'{"name": ', headers={"content-type": "application/json"}
        )
        assert r.status_code == 422
        assert r.json()["detail"][0]["type"] == "json_invalid"


# --- CORS ----------------------------------------------------------------------------------

PREFLIGHT = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-api-key"}


@pytest.mark.parametrize("backend", ["embedded"])
async def test_cors_is_closed_by_default(api: Running) -> None:
    key = await api.key()
    async with api.client(key) as client:
        for origin in ("https://msp.example", "https://evil.example"):
            r = await client.options("/networks", headers={"Origin": origin, **PREFLIGHT})
            assert "access-control-allow-origin" not in r.headers
            r = await client.get("/networks", headers={"Origin": origin})
            assert r.status_code == 200
            assert "access-control-allow-origin" not in r.headers


@pytest.mark.parametrize("backend", ["embedded"])
async def test_cors_allows_the_configured_origins_only(serve_with: ServeWith) -> None:
    async with serve_with(cors_origins=["https://msp.example"]) as api:
        key = await api.key()
        async with api.client(key) as client:
            ok = {"Origin": "https://msp.example"}
            r = await client.options("/networks", headers={**ok, **PREFLIGHT})
            assert r.status_code == 200
            assert r.headers["access-control-allow-origin"] == "https://msp.example"
            assert "POST" in r.headers["access-control-allow-methods"]
            assert "x-api-key" in r.headers["access-control-allow-headers"].lower()
            r = await client.get("/networks", headers=ok)
            assert r.headers["access-control-allow-origin"] == "https://msp.example"

            bad = {"Origin": "https://evil.example"}
            r = await client.options("/networks", headers={**bad, **PREFLIGHT})
            assert r.status_code == 400
            assert "access-control-allow-origin" not in r.headers
            r = await client.get("/networks", headers=bad)
            assert "access-control-allow-origin" not in r.headers


# --- audit log -----------------------------------------------------------------------------

AUDIT_FIELDS = (
    "key_id",
    "user_id",
    "role",
    "action",
    "resource_type",
    "resource_id",
    "client_ip",
    "result",
    "status_code",
)


def audit_rows(response: httpx.Response) -> list[tuple]:
    assert response.status_code == 200, response.text
    return [tuple(e[f] for f in AUDIT_FIELDS) for e in response.json()["items"]]


async def test_audit_log_records_every_request(api: Running) -> None:
    admin = await api.key(tenant="acme", role="admin", user_id="ada")
    user = await api.key(tenant="acme", role="user", user_id="uma")
    other = await api.key(tenant="globex", role="admin", user_id="gil")
    admin_id, user_id = key_id(admin), key_id(user)
    missing = new_id()
    async with api.client(admin) as a, api.client(user) as u, api.client() as anonymous:
        net = await network(a)
        assert (await a.get(f"/networks/{net}")).status_code == 200
        assert (await a.get(f"/networks/{missing}")).status_code == 404
        assert (await a.post("/networks", json={"name": ""})).status_code == 422
        assert (await u.delete(f"/networks/{net}")).status_code == 403
        # in the log as soon as the client has its answer
        r = await a.get("/security/audit-logs", params={"result": "denied"})
        assert [e["action"] for e in r.json()["items"]] == ["delete_network"]
        # each 401 is in the database at once, with no tenant: no tenant's admin sees it
        sessions = api.app.state.services.db.sessions
        for count, headers in enumerate(
            ({}, {"X-API-Key": "nope"}, {"Authorization": f"Bearer {admin[:-1]}"}), start=1
        ):
            assert (await anonymous.get("/networks", headers=headers)).status_code == 401
            async with sessions() as session:
                query = select(AuditEntry).where(AuditEntry.tenant.is_(None))
                denied = (await session.scalars(query)).all()
            assert len(denied) == count
        assert {
            (e.key_id, e.user_id, e.role, e.action, e.result, e.status_code, e.client_ip)
            for e in denied
        } == {(None, None, None, "list_networks", "denied", 401, "127.0.0.1")}
        assert denied[0].detail == {"method": "GET", "path": f"{PREFIX}/networks"}

        ip = "127.0.0.1"
        expected = [
            (user_id, "uma", "user", "delete_network", "network", net, ip, "denied", 403),
            (admin_id, "ada", "admin", "create_network", "network", None, ip, "invalid", 422),
            (admin_id, "ada", "admin", "get_network", "network", missing, ip, "not_found", 404),
            (admin_id, "ada", "admin", "get_network", "network", net, ip, "success", 200),
            (admin_id, "ada", "admin", "create_network", "network", net, ip, "success", 201),
        ]
        listing = (admin_id, "ada", "admin", "list_audit_logs", "audit", None, ip, "success", 200)
        r = await a.get("/security/audit-logs")
        assert audit_rows(r) == [listing, *expected]
        entries = r.json()["items"][1:]
        assert entries[0]["detail"] == {"method": "DELETE", "path": f"{PREFIX}/networks/{net}"}
        ats = [datetime.fromisoformat(e["at"]) for e in entries]
        assert ats == sorted(ats, reverse=True)

        async def query(**params: Any) -> list[tuple]:
            return audit_rows(await a.get("/security/audit-logs", params=params))

        assert await query(user_id="uma") == expected[:1]
        assert await query(key_id=user_id) == expected[:1]
        assert await query(result="denied") == expected[:1]
        assert await query(result="not_found") == expected[2:3]
        assert await query(action="create_network") == [expected[1], expected[4]]
        assert await query(resource_type="network") == expected
        assert await query(resource_type="audit") == [listing] * 8
        assert await query(since=entries[3]["at"], until=entries[1]["at"]) == expected[2:4]
        assert await query(since=entries[0]["at"], resource_type="network") == expected[:1]
        assert await query(until=entries[4]["at"]) == []
        r = await a.get(
            "/security/audit-logs", params={"resource_type": "network", "limit": 2, "offset": 1}
        )
        assert audit_rows(r) == expected[1:3]
        assert (r.json()["total"], r.json()["limit"], r.json()["offset"]) == (5, 2, 1)
        r = await a.get("/security/audit-logs", params={"limit": 501})
        assert r.status_code == 422

    async with api.client(other) as g:
        r = await g.get("/security/audit-logs")
        assert r.json()["total"] == 0
        assert r.json()["items"] == []


async def test_audit_log_is_append_only(api: Running) -> None:
    key = await api.key(tenant="acme", role="admin")
    async with api.client(key) as client:
        await network(client)
        before = audit_rows(await client.get("/security/audit-logs"))
    assert [row[3] for row in before] == ["create_network"]
    sessions = api.app.state.services.db.sessions
    with pytest.raises(DBAPIError, match="append-only"):
        async with sessions.begin() as session:
            await session.execute(update(AuditEntry).values(result="success", key_id=None))
    with pytest.raises(DBAPIError, match="append-only"):
        async with sessions.begin() as session:
            entry = await session.scalar(select(AuditEntry).limit(1))
            assert entry is not None
            entry.user_id = "someone-else"
    async with sessions() as session:
        rows = (await session.scalars(select(AuditEntry).order_by(AuditEntry.id))).all()
    assert [(e.action, e.key_id) for e in rows][0] == ("create_network", key_id(key))


# --- retention -----------------------------------------------------------------------------


async def test_retention_policy_days(api: Running) -> None:
    key = await api.key(tenant="acme", role="admin")
    async with api.client(key) as client:
        r = await client.get("/security/retention-policy")
        assert r.status_code == 200
        days = {k: v for k, v in r.json().items() if k not in ("updated_at", "last_sweep")}
        assert days == {
            "tasks": 90,
            "events": 30,
            "memory_fact": 90,
            "memory_context": 30,
            "memory_decision": 180,
            "memory_feedback": 365,
            "audit": 365,
        }
        assert r.json()["updated_at"] is None and r.json()["last_sweep"] is None

        r = await client.post("/security/retention-policy", json={"retention_days": 30})
        assert r.status_code == 200, r.text
        everything = dict.fromkeys(days, 30)
        assert {k: r.json()[k] for k in everything} == everything
        r = await client.get("/security/retention-policy")
        assert {k: r.json()[k] for k in everything} == everything
        assert r.json()["updated_at"] is not None

        r = await client.post("/security/retention-policy", json={"tasks": 7})
        assert r.status_code == 200, r.text
        r = await client.get("/security/retention-policy")
        assert {k: r.json()[k] for k in everything} == {**everything, "tasks": 7}

        for body, field in (
            ({"retention_days": 0}, "retention_days"),
            ({"retention_days": 5000}, "retention_days"),
            ({"audit": 0}, "audit"),
            ({"tasks": "a week"}, "tasks"),
            ({"logs": 5}, "logs"),
        ):
            r = await client.post("/security/retention-policy", json=body)
            assert r.status_code == 422, (body, r.text)
            assert error_fields(r) == [["body", field]]
        r = await client.get("/security/retention-policy")
        assert {k: r.json()[k] for k in everything} == {**everything, "tasks": 7}

        r = await client.post(
            "/security/retention-policy", json={"memory": 10, "memory_feedback": 400}
        )
        assert r.status_code == 200, r.text
        memory = {k: r.json()[k] for k in everything if k.startswith("memory_")}
        assert memory == {**dict.fromkeys(memory, 10), "memory_feedback": 400}

    other = await api.key(tenant="globex", role="admin")
    async with api.client(other) as client:
        r = await client.get("/security/retention-policy")
        assert r.json()["tasks"] == 90


async def test_retention_sweep_removes_expired_data(api: Running, scripts: Scripts) -> None:
    scripts.update(churn_script())
    key = await api.key(tenant="acme", role="admin", user_id="ada")
    services = api.app.state.services
    now = utcnow()
    async with api.client(key) as client:
        r = await client.post("/security/retention-policy", json={"retention_days": 30, "tasks": 7})
        assert r.status_code == 200
        net = await network(client)
        r = await client.post(f"/networks/{net}/tasks", json={"task": "Who will churn?"})
        old_task = (await wait_done(client, r.json()))["id"]
        assert await services.events.last_id(old_task) > 0
        recent_task, stuck_task = new_id(), new_id()
        async with services.db.sessions.begin() as session:
            await session.execute(
                update(Task).where(Task.id == old_task).values(finished_at=now - timedelta(days=8))
            )
            common = {"tenant": "acme", "network_id": net, "task": "t"}
            session.add_all(
                [
                    Task(
                        id=recent_task,
                        thread_id=recent_task,
                        status="succeeded",
                        finished_at=now - timedelta(days=6),
                        **common,
                    ),
                    Task(
                        id=stuck_task,
                        thread_id=stuck_task,
                        status="running",
                        created_at=now - timedelta(days=400),
                        **common,
                    ),
                ]
            )
            old = {"action": "get_network", "resource_type": "network", "result": "success"}
            session.add_all(
                [
                    AuditEntry(tenant="acme", at=now - timedelta(days=400), **old),
                    AuditEntry(tenant="acme", at=now - timedelta(days=31), **old),
                    AuditEntry(tenant="acme", at=now - timedelta(days=29), **old),
                    AuditEntry(tenant="globex", at=now - timedelta(days=400), **old),
                ]
            )

        expired = await services.memory.add(
            MemoryScope("acme", net),
            "fact",
            "C00001 renewed early",
            Source(kind="user"),
            ttl_s=0.001,
        )
        kept = await services.memory.add(
            MemoryScope("acme", net), "fact", "C00002 renewed late", Source(kind="user")
        )

        r = await client.post("/security/retention-policy/sweep")
        assert r.status_code == 200, r.text
        report = r.json()
        assert report["removed"] == {"tasks": 1, "events": 1, "memory": 1, "audit": 2}
        semantic = await services.memory.semantic()
        hits = [i for i, _ in await semantic.query(MemoryScope("acme", net), "renewed", limit=5)]
        assert expired.id not in hits and kept.id in hits
        assert report["days"] == {
            "tasks": 7,
            "events": 30,
            **{f"memory_{kind}": 30 for kind in ("fact", "context", "decision", "feedback")},
            "audit": 30,
        }

        assert (await client.get(f"/networks/{net}/tasks/{old_task}")).status_code == 404
        assert await services.events.last_id(old_task) == 0
        r = await client.get(f"/networks/{net}/tasks")
        assert sorted(t["id"] for t in r.json()["items"]) == sorted([recent_task, stuck_task])
        async with services.db.sessions() as session:
            ages = (
                await session.scalars(
                    select(AuditEntry.tenant).where(AuditEntry.at < now - timedelta(days=1))
                )
            ).all()
        assert sorted(ages) == ["acme", "globex"]  # the 29-day-old one and the other tenant's

        r = await client.get("/security/audit-logs", params={"action": "retention.sweep"})
        sweeps = r.json()["items"]
        assert len(sweeps) == 1
        assert (sweeps[0]["user_id"], sweeps[0]["role"], sweeps[0]["result"]) == (
            "system",
            "system",
            "success",
        )
        assert sweeps[0]["detail"] == report
        r = await client.get("/security/retention-policy")
        assert r.json()["last_sweep"] == report

        # a second sweep finds nothing more to remove
        r = await client.post("/security/retention-policy/sweep")
        assert r.json()["removed"] == {"tasks": 0, "events": 0, "memory": 0, "audit": 0}


async def test_a_query_parameter_given_twice_is_refused_not_half_read(api: Running) -> None:
    async with api.client(await api.key()) as client:
        refused = await client.get(
            "/security/audit-logs", params=[("key_id", "a"), ("key_id", "b")]
        )
        listed = await client.get(
            "/portfolio/clients", params=[("filter", "contract=One year"), ("filter", "churned=0")]
        )
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["query", "key_id"]
    assert listed.status_code == 200, listed.text
