"""Circuit breakers shared through the tests' Redis server (db 12), as processes see."""

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from aimesh.llm.breaker import LocalBreaker, RedisBreaker
from tests.helpers.servers import redis_url

SERVER_URL = redis_url(12)
LINK = "anthropic/claude-sonnet-4-5"


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(SERVER_URL)
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


def processes(redis: Redis, cooldown: float = 0.3) -> tuple[RedisBreaker, RedisBreaker]:
    """Two breakers on their own connections: two processes sharing one Redis."""
    other = Redis.from_url(SERVER_URL)
    return RedisBreaker(redis, 3, cooldown), RedisBreaker(other, 3, cooldown)


async def test_failures_in_one_process_open_the_breaker_for_all(redis: Redis) -> None:
    first, second = processes(redis)
    assert [await first.failure(LINK) for _ in range(3)] == [False, False, True]
    assert not await second.allow(LINK) and not await first.allow(LINK)
    assert await second.allow("openai/gpt-4.1-mini")  # per link


async def test_a_success_resets_the_count_of_consecutive_failures(redis: Redis) -> None:
    first, second = processes(redis)
    await first.failure(LINK)
    await first.failure(LINK)
    await second.success(LINK)
    assert not await first.failure(LINK) and await second.allow(LINK)


async def test_after_the_cooldown_one_probe_across_processes(redis: Redis) -> None:
    first, second = processes(redis, cooldown=0.3)
    for _ in range(3):
        await first.failure(LINK)
    await asyncio.sleep(0.35)
    allowed = await asyncio.gather(*(b.allow(LINK) for b in (first, second) * 5))
    assert sorted(allowed) == [False] * 9 + [True]


async def test_a_failed_probe_reopens_and_a_good_probe_closes(redis: Redis) -> None:
    first, second = processes(redis, cooldown=0.3)
    for _ in range(3):
        await first.failure(LINK)
    await asyncio.sleep(0.35)
    assert await first.allow(LINK)
    assert await first.failure(LINK)  # the probe failed: open again at once
    assert not await second.allow(LINK)
    await asyncio.sleep(0.35)
    assert await second.allow(LINK)
    await second.success(LINK)
    assert await first.allow(LINK) and await second.allow(LINK)
    assert await redis.exists("aimesh:breaker:" + LINK) == 0


async def test_the_local_breaker_follows_the_same_rules() -> None:
    breaker = LocalBreaker(failures=2, cooldown=0.2)
    assert not await breaker.failure(LINK) and await breaker.failure(LINK)
    assert not await breaker.allow(LINK)
    await asyncio.sleep(0.25)
    assert await breaker.allow(LINK) and not await breaker.allow(LINK)  # one probe
    assert await breaker.failure(LINK) and not await breaker.allow(LINK)
    await asyncio.sleep(0.25)
    assert await breaker.allow(LINK)
    await breaker.success(LINK)
    assert await breaker.allow(LINK) and await breaker.allow(LINK)
