"""Fixtures shared by the integration tests: a fresh database on the PostgreSQL server."""

import uuid
from collections.abc import Iterator

import psycopg
import pytest

POSTGRES = "postgresql://postgres@127.0.0.1:5432"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database on the machine's server, dropped afterwards."""
    name = f"aimesh_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
