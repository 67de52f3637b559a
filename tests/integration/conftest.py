"""Fixtures shared by the integration tests: a fresh PostgreSQL database, a migrated one."""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from aimesh.store.database import Database
from tests.helpers.servers import fresh_database


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database on the tests' server, dropped afterwards."""
    with fresh_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """The migrated database: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'aimesh.sqlite'}"
    else:
        url = request.getfixturevalue("postgres_url")
    database = Database(url)
    await database.migrate()
    yield database
    await database.close()
