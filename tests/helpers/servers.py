"""The PostgreSQL and Redis servers the integration tests use, from the environment.

``AIMESH_TEST_DATABASE_URL``: a PostgreSQL server on which the tests create (and drop) their
own databases; ``AIMESH_TEST_REDIS_URL``: a Redis server, without a db number (each test
module picks its db and flushes it).
"""

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from sqlalchemy.engine import make_url

DATABASE_URL = os.environ.get("AIMESH_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("AIMESH_TEST_REDIS_URL", "redis://127.0.0.1:6379")


def redis_url(db: int) -> str:
    """The URL of database ``db`` on the tests' Redis server."""
    return f"{REDIS_URL.rstrip('/')}/{db}"


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new database on the tests' PostgreSQL server (its SQLAlchemy URL), dropped after."""
    server = make_url(DATABASE_URL)
    admin = server.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False
    )
    name = f"aimesh_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(drivername="postgresql+psycopg", database=name).render_as_string(
            hide_password=False
        )
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
