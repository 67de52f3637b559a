"""A network's shared memory: typed items in Redis, recall by meaning in Chroma.

Redis holds the item (and its TTL); Chroma holds its embedding for recall. Writes go to
Chroma first and are undone there if Redis refuses, so an item is in both stores or in
neither; deletes and expiry remove it from both (recall checks each hit against Redis).
"""

import asyncio
import time
from collections.abc import Callable, Sequence

from pydantic import BaseModel

from aimesh.memory.items import MemoryItem, MemoryScope, MemoryType, Source, ttl_days
from aimesh.memory.redis_store import RedisMemory
from aimesh.memory.semantic import SemanticMemory

DAY_S = 86_400


class Recalled(BaseModel):
    """An item recalled for a query, with its cosine distance (0 = same meaning, 2 = opposite)."""

    item: MemoryItem
    distance: float


MAX_LISTED = 1_000_000
"""Most items one network's memory is read back in full (deletions of derived items)."""


class SharedMemory:
    """Memory of every tenant's networks, in one process.

    Args:
        redis: The Redis item store.
        open_semantic: Builds the semantic index (loads the embedding model: seconds); called
            once, in a worker thread, on the first write or recall.
    """

    def __init__(self, redis: RedisMemory, open_semantic: Callable[[], SemanticMemory]) -> None:
        self.items = redis
        self._open_semantic = open_semantic
        self._semantic: SemanticMemory | None = None
        self._lock = asyncio.Lock()

    @property
    def opened(self) -> SemanticMemory | None:
        """The semantic index if it has been built in this process, else None."""
        return self._semantic

    async def semantic(self) -> SemanticMemory:
        """The semantic index, built on first use."""
        async with self._lock:
            if self._semantic is None:
                self._semantic = await asyncio.to_thread(self._open_semantic)
        return self._semantic

    async def add(
        self,
        scope: MemoryScope,
        kind: MemoryType,
        content: str,
        source: Source,
        *,
        policy: dict[str, int] | None = None,
        ttl_s: float | None = None,
    ) -> MemoryItem:
        """Remember ``content`` in the network's memory; returns the stored item.

        Args:
            scope: The tenant's network.
            kind: fact, context, decision or feedback.
            content: The text (1-4000 characters).
            source: Who or what it came from.
            policy: The tenant's retention days (``memory_<type>`` keys); defaults otherwise.
            ttl_s: Seconds to live; default: the policy's days for ``kind``.

        Raises:
            pydantic.ValidationError: ``content`` or ``source`` is out of bounds.
            redis.RedisError, chromadb errors: A store failed; nothing is left written.
        """
        now = time.time()
        life = ttl_s if ttl_s is not None else ttl_days(policy or {}, kind) * DAY_S
        item = MemoryItem(
            type=kind,
            content=content,
            source=source,
            tenant=scope.tenant,
            network_id=scope.network_id,
            created_at=now,
            expires_at=now + life,
        )
        semantic = await self.semantic()
        await semantic.add([item])
        try:
            await self.items.put(scope, item)
        except BaseException:
            await semantic.delete(scope, [item.id])
            raise
        return item

    async def newest(
        self, scope: MemoryScope, kind: MemoryType | None = None, limit: int = 20
    ) -> list[MemoryItem]:
        """The network's items, newest first; ``kind`` keeps one type."""
        return await self.items.newest(scope, kind, limit)

    async def recall(
        self, scope: MemoryScope, query: str, kinds: Sequence[MemoryType] = (), limit: int = 5
    ) -> list[Recalled]:
        """The live items nearest ``query`` in meaning, nearest first.

        Hits whose item Redis no longer has (expired or deleted) are dropped from the index.
        """
        semantic = await self.semantic()
        hits = await semantic.query(scope, query, kinds, limit)
        items = await self.items.get_many(scope, [item_id for item_id, _ in hits])
        stale = [item_id for (item_id, _), item in zip(hits, items, strict=True) if item is None]
        await semantic.delete(scope, stale)
        return [
            Recalled(item=item, distance=distance)
            for (_, distance), item in zip(hits, items, strict=True)
            if item is not None
        ]

    async def get(self, scope: MemoryScope, item_id: str) -> MemoryItem | None:
        """One item of the network, or None."""
        return await self.items.get(scope, item_id)

    async def delete(self, scope: MemoryScope, item_id: str) -> bool:
        """Forget one item (both stores); False when the network has no such item."""
        deleted = await self.items.delete(scope, item_id)
        await (await self.semantic()).delete(scope, [item_id])
        return deleted

    async def forget_agent_items(self, scope: MemoryScope) -> int:
        """Forget every item the network's agents wrote (their tool results and decisions).

        What a deleted client book leaves behind: people's items (``user``) stay.

        Returns:
            How many items were forgotten.
        """
        items = await self.items.newest(scope, None, MAX_LISTED)
        doomed = [item.id for item in items if item.source.kind == "agent"]
        for item_id in doomed:
            await self.items.delete(scope, item_id)
        await (await self.semantic()).delete(scope, doomed)
        return len(doomed)
