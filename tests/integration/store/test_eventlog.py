import asyncio
import json
import random
from contextlib import aclosing

import pytest
import redis.asyncio

from aimesh.store.eventlog import EventLog


def event(n: int, name: str = "token") -> str:
    return json.dumps({"id": n, "event": name})


def is_complete(payload: str) -> bool:
    return json.loads(payload)["event"] == "complete"


async def fill(log: EventLog, task_id: str, last: int) -> None:
    for n in range(1, last + 1):
        await log.append(task_id, n, event(n))


async def test_append_then_read_returns_events_in_order(redis_client: redis.asyncio.Redis) -> None:
    log = EventLog(redis_client)
    await fill(log, "t1", 5)

    assert await log.read("t1") == [(n, event(n)) for n in range(1, 6)]
    assert await log.last_id("t1") == 5
    assert await redis_client.xlen("aimesh:events:t1") == 5


async def test_read_after_n_returns_exactly_the_later_events(
    redis_client: redis.asyncio.Redis,
) -> None:
    log = EventLog(redis_client)
    await fill(log, "t1", 10)

    assert [n for n, _ in await log.read("t1", after=4)] == [5, 6, 7, 8, 9, 10]
    assert [n for n, _ in await log.read("t1", after=4, count=3)] == [5, 6, 7]
    assert await log.read("t1", after=9) == [(10, event(10))]
    assert await log.read("t1", after=10) == []
    assert await log.read("missing") == []
    assert await log.last_id("missing") == 0


async def test_blocking_read_wakes_up_on_an_append(redis_client: redis.asyncio.Redis) -> None:
    log = EventLog(redis_client)
    await fill(log, "t1", 2)

    async def produce() -> None:
        await asyncio.sleep(0.2)
        await log.append("t1", 3, event(3))

    got, _ = await asyncio.gather(log.read("t1", after=2, block_ms=10_000), produce())

    assert got == [(3, event(3))]


async def test_blocking_read_returns_nothing_on_timeout(redis_client: redis.asyncio.Redis) -> None:
    log = EventLog(redis_client)
    await fill(log, "t1", 2)

    assert await log.read("t1", after=2, block_ms=50) == []


async def test_follow_yields_heartbeats_when_idle_and_stops_at_the_last_event(
    redis_client: redis.asyncio.Redis,
) -> None:
    log = EventLog(redis_client)
    await log.append("t1", 1, event(1, "started"))
    heartbeat_seen = asyncio.Event()
    items: list[tuple[int, str] | None] = []

    async def consume() -> None:
        async with aclosing(log.follow("t1", heartbeat_s=0.05, is_last=is_complete)) as events:
            async for item in events:
                items.append(item)
                if item is None:
                    heartbeat_seen.set()

    async def produce() -> None:
        await heartbeat_seen.wait()
        await log.append("t1", 2, event(2, "result"))
        await log.append("t1", 3, event(3, "complete"))
        await log.append("t1", 4, event(4, "token"))

    await asyncio.wait_for(asyncio.gather(consume(), produce()), timeout=10)

    assert items[0] == (1, event(1, "started"))
    assert items[1] is None
    assert [item for item in items if item is not None] == [
        (1, event(1, "started")),
        (2, event(2, "result")),
        (3, event(3, "complete")),
    ]


async def test_follow_of_a_finished_log_returns_without_waiting(
    redis_client: redis.asyncio.Redis,
) -> None:
    log = EventLog(redis_client)
    await fill(log, "t1", 3)
    await log.append("t1", 4, event(4, "complete"))

    items = [i async for i in log.follow("t1", after=2, heartbeat_s=60, is_last=is_complete)]

    assert items == [(3, event(3)), (4, event(4, "complete"))]


async def test_append_of_an_old_id_raises_value_error_naming_both_ids(
    redis_client: redis.asyncio.Redis,
) -> None:
    plain, expiring = EventLog(redis_client), EventLog(redis_client, ttl_s=60)
    await fill(plain, "t1", 7)

    for log in (plain, expiring):
        with pytest.raises(ValueError, match=r"event id 7 of task 't1' .* last id 7$"):
            await log.append("t1", 7, event(7))
        with pytest.raises(ValueError, match=r"event id 3 of task 't1' .* last id 7$"):
            await log.append("t1", 3, event(3))
    with pytest.raises(ValueError, match="event id 0 of task 't2': ids start at 1"):
        await plain.append("t2", 0, event(0))

    assert await plain.read("t1") == [(n, event(n)) for n in range(1, 8)]
    assert await redis_client.exists("aimesh:events:t2") == 0


async def test_ttl_is_refreshed_on_every_append(redis_client: redis.asyncio.Redis) -> None:
    await EventLog(redis_client).append("plain", 1, event(1))
    log = EventLog(redis_client, ttl_s=100)
    await log.append("t1", 1, event(1))
    await redis_client.expire("aimesh:events:t1", 5)

    await log.append("t1", 2, event(2))

    assert 95 <= await redis_client.ttl("aimesh:events:t1") <= 100
    assert await redis_client.ttl("aimesh:events:plain") == -1


async def test_delete_removes_the_logs_and_counts_those_that_existed(
    redis_client: redis.asyncio.Redis,
) -> None:
    log = EventLog(redis_client)
    for task_id in ("a", "b", "keep"):
        await fill(log, task_id, 3)

    assert await log.delete(["a", "b", "never-existed"]) == 2
    assert await log.delete([]) == 0
    assert await log.read("a") == []
    assert await log.last_id("b") == 0
    assert await log.last_id("keep") == 3
    await log.append("a", 1, event(1))
    assert await log.read("a") == [(1, event(1))]


async def test_tasks_and_prefixes_do_not_see_each_others_events(
    redis_client: redis.asyncio.Redis,
) -> None:
    tenant_a = EventLog(redis_client, prefix="aimesh:events:tenant-a:")
    tenant_b = EventLog(redis_client, prefix="aimesh:events:tenant-b:")
    await tenant_a.append("t1", 1, '"a-t1-1"')
    await tenant_a.append("t2", 1, '"a-t2-1"')
    await tenant_a.append("t2", 2, '"a-t2-2"')
    await tenant_b.append("t1", 5, '"b-t1-5"')

    assert await tenant_a.read("t1") == [(1, '"a-t1-1"')]
    assert await tenant_a.read("t2") == [(1, '"a-t2-1"'), (2, '"a-t2-2"')]
    assert await tenant_b.read("t1") == [(5, '"b-t1-5"')]
    assert await tenant_b.read("t2") == []
    assert sorted(await redis_client.keys("*")) == [
        b"aimesh:events:tenant-a:t1",
        b"aimesh:events:tenant-a:t2",
        b"aimesh:events:tenant-b:t1",
    ]


async def test_reconnecting_follower_sees_every_event_once_in_order(
    redis_client: redis.asyncio.Redis,
) -> None:
    rng = random.Random(20240601)
    total = 200
    cuts = set(rng.sample(range(1, total), 50))
    delays = [rng.uniform(0, 0.004) for _ in range(total)]
    log = EventLog(redis_client)

    async def produce() -> None:
        for n in range(1, total + 1):
            await asyncio.sleep(delays[n - 1])
            await log.append("t1", n, event(n, "complete" if n == total else "token"))

    async def consume() -> tuple[list[int], int]:
        seen: list[int] = []
        follows = 0
        while not seen or seen[-1] != total:
            follows += 1
            after = seen[-1] if seen else 0
            async with aclosing(log.follow("t1", after, heartbeat_s=1, is_last=is_complete)) as es:
                async for item in es:
                    if item is None:
                        continue
                    seen.append(item[0])
                    if item[0] in cuts:
                        break
        return seen, follows

    (seen, follows), _ = await asyncio.wait_for(asyncio.gather(consume(), produce()), timeout=60)

    assert seen == list(range(1, total + 1))
    assert follows == 51
