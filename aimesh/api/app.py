"""The FastAPI app serving aimesh under ``/api/mesh``.

``create_app()`` builds it; the services (database, Redis, event log, checkpointer, task
runner, rate limiter, retention sweeper) open in ``lifespan``, never at import.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from langchain_core.language_models import BaseChatModel

from aimesh.api import errors
from aimesh.api.middleware import AuditMiddleware, BodyLimitMiddleware, SingleQueryMiddleware
from aimesh.api.ratelimit import RateLimit
from aimesh.api.routes import (
    agents,
    audit,
    budgets,
    health,
    keys,
    memory,
    networks,
    portfolio,
    retention,
    scores,
    stats,
    streaming,
    tasks,
    threads,
)
from aimesh.api.schemas import REPEATABLE_QUERY
from aimesh.config import Settings, get_settings
from aimesh.service.retention import sweeping
from aimesh.service.services import open_services

PREFIX = "/api/mesh"
ROUTERS = (
    networks,
    agents,
    tasks,
    threads,
    streaming,
    memory,
    health,
    stats,
    keys,
    audit,
    retention,
    budgets,
    portfolio,
    scores,
)


def create_app(settings: Settings | None = None, model: BaseChatModel | None = None) -> FastAPI:
    """Build the API app.

    Args:
        settings: Default: from the environment.
        model: Chat model of the agents; default: the provider chain.

    Returns:
        The app; its services open when it starts (``lifespan``).
    """
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_services(settings, model) as services:
            app.state.services = services
            app.state.rate_limit = RateLimit(settings.rate_limit, settings.redis_url)
            async with sweeping(services):
                yield

    app = FastAPI(
        title="aimesh",
        summary="An AI agent mesh for Managed Service Providers.",
        version="0.1.0",
        lifespan=lifespan,
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=f"{PREFIX}/docs",
        swagger_ui_oauth2_redirect_url=f"{PREFIX}/docs/oauth2-redirect",
        redoc_url=None,
    )
    for module in ROUTERS:
        # Every route but health needs an API key; declare the errors they share once.
        shared = errors.REQUEST_ERRORS if module is health else errors.ROUTE_ERRORS
        app.include_router(module.router, prefix=PREFIX, responses=shared)
    errors.install(app)
    app.add_middleware(SingleQueryMiddleware, repeatable=REPEATABLE_QUERY)
    app.add_middleware(AuditMiddleware)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        uploads={f"{PREFIX}/portfolio/imports": settings.max_upload_bytes},
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["X-API-Key", "Authorization", "Content-Type", "Last-Event-ID"],
        )
    return app
