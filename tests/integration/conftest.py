"""Fixtures shared by the integration tests: a fresh database on the PostgreSQL server."""

from collections.abc import Iterator

import pytest

from tests.helpers.servers import fresh_database


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database on the tests' server, dropped afterwards."""
    with fresh_database() as url:
        yield url
