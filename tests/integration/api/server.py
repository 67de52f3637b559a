"""Run the real app on a loopback port for tests: uvicorn in this event loop."""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import uvicorn
from fastapi import FastAPI
from langchain_core.language_models import BaseChatModel

from aimesh.api.app import PREFIX, create_app
from aimesh.config import Settings
from aimesh.store.keys import create_key


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
