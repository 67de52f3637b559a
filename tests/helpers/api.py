"""The app under test: its settings, served on a loopback port (uvicorn in this event loop),
its routes and API keys."""

import asyncio
import contextlib
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from langchain_core.language_models import BaseChatModel
from starlette.routing import BaseRoute

from aimesh.api.app import PREFIX, create_app
from aimesh.config import Settings
from aimesh.store.keys import create_key, parse_key
from tests.helpers.servers import redis_url

REDIS = redis_url(14)  # the API tests' database on the tests' Redis server
PARAM = re.compile(r"{(\w+)}")  # a path parameter of a route


def api_settings(home: Path, tmp_path: Path, **overrides) -> Settings:
    """Settings of one test: its own database, the session's trained models."""
    database = overrides.pop("database_url", f"sqlite+aiosqlite:///{tmp_path / 'aimesh.sqlite'}")
    return Settings(
        home=home,
        providers=["local"],
        plan_providers=[],  # the scripted model stands in for the local one: native tool calls
        database_url=database,
        retention_sweep_s=3600,
        **overrides,
    )


ServeWith = Callable[..., contextlib.AbstractAsyncContextManager["Running"]]
"""The ``serve_with`` fixture: serve the app with some settings overridden."""


@dataclass
class Running:
    """A served app: its base URL and the app (``app.state.services`` is open)."""

    app: FastAPI
    url: str

    async def key(self, tenant: str = "acme", role: str = "admin", **kwargs) -> str:
        """A new API key of ``tenant`` with ``role`` (created as the CLI does)."""
        services = self.app.state.services
        async with services.db.sessions.begin() as session:
            new = await create_key(
                session,
                services.secret,
                tenant=tenant,
                user_id=kwargs.pop("user_id", f"u-{uuid.uuid4().hex[:6]}"),
                role=role,
                **kwargs,
            )
        return new.api_key

    def client(self, key: str | None = None, timeout: float = 30) -> httpx.AsyncClient:
        """An HTTP client of the API, authenticated with ``key`` when given."""
        headers = {"X-API-Key": key} if key else {}
        return httpx.AsyncClient(base_url=self.url + PREFIX, headers=headers, timeout=timeout)


@contextlib.asynccontextmanager
async def serve(settings: Settings, model: BaseChatModel) -> AsyncIterator[Running]:
    """Serve ``create_app(settings, model)`` on 127.0.0.1 (a free port) until the block ends."""
    app = create_app(settings, model)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    job = asyncio.create_task(server.serve())
    while not server.started:
        if job.done():
            job.result()
            raise RuntimeError("server stopped before it started")
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Running(app, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        await job


def app_routes(app: FastAPI) -> list[tuple[str, str, BaseRoute]]:
    """``(method, full path, route)`` of every route of ``app.routes``, included routers too."""
    return [
        (method, context.path or "", context.original_route)
        for context in iter_route_contexts(app.routes)
        for method in sorted(context.methods or ())
    ]


def key_id(api_key: str) -> str:
    """The id of an API key (its record's, as the audit log and ledger show it)."""
    found = parse_key(api_key)
    assert found is not None, api_key
    return found


async def wait_book(client: httpx.AsyncClient, version: int, timeout_s: float = 240) -> dict:
    """``GET /portfolio`` once ``version`` answers (its models trained in the background)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        view = (await client.get("/portfolio")).json()
        if view["current_version"] == version:
            return view
        failed = [v for v in view["versions"] if v["status"] == "failed"]
        assert not failed, failed
        await asyncio.sleep(0.5)
    raise AssertionError(f"version {version} not ready after {timeout_s} s: {view}")
