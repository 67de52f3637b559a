"""Typed memory items in Redis: per tenant and network, listed by type and recency.

Keys (``{t}`` tenant, ``{n}`` network; both checked by :class:`MemoryScope`, so no ``:`` or
``*`` can reach a key): ``aimesh:mem:{t}:{n}:item:{id}`` holds the item as JSON with a
Redis TTL; ``aimesh:mem:{t}:{n}:idx:{type}`` and ``...:idx:all`` are sorted sets of ids by
creation time. Writes and deletes are MULTI/EXEC transactions. An expired item vanishes
with its key; its index entries are dropped the next time a listing meets them.
"""

from redis.asyncio import Redis

from aimesh.memory.items import MEMORY_TYPES, MemoryItem, MemoryScope

PREFIX = "aimesh:mem:"


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _base(scope: MemoryScope) -> str:
    return f"{PREFIX}{scope.tenant}:{scope.network_id}:"


class RedisMemory:
    """The item store. Every method takes the tenant's network (:class:`MemoryScope`).

    Args:
        redis: Client (server or embedded).
    """

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def put(self, scope: MemoryScope, item: MemoryItem) -> None:
        """Store ``item`` with its TTL (at least 1 ms) and index it, atomically.

        Raises:
            ValueError: ``item`` belongs to another tenant or network than ``scope``.
        """
        if not scope.owns(item):
            raise ValueError(f"item {item.id} is not of {scope}")
        base = _base(scope)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(
                f"{base}item:{item.id}", item.model_dump_json(), px=max(1, int(item.ttl_s * 1000))
            )
            for index in (item.type, "all"):
                pipe.zadd(f"{base}idx:{index}", {item.id: item.created_at})
            await pipe.execute()

    async def get(self, scope: MemoryScope, item_id: str) -> MemoryItem | None:
        """The item, or None when it is missing, expired or not of ``scope``."""
        raw = await self.redis.get(f"{_base(scope)}item:{item_id}")
        return self._owned(scope, raw)

    async def get_many(self, scope: MemoryScope, ids: list[str]) -> list[MemoryItem | None]:
        """Items by id, in order; None for each missing or expired one."""
        if not ids:
            return []
        raws = await self.redis.mget([f"{_base(scope)}item:{i}" for i in ids])
        return [self._owned(scope, raw) for raw in raws]

    async def newest(
        self, scope: MemoryScope, kind: str | None = None, limit: int = 20
    ) -> list[MemoryItem]:
        """Newest first, up to ``limit``; ``kind`` keeps one type. Drops expired index entries."""
        index = f"{_base(scope)}idx:{kind or 'all'}"
        found: list[MemoryItem] = []
        start = 0
        while len(found) < limit:
            ids = [_text(i) for i in await self.redis.zrevrange(index, start, start + limit - 1)]
            if not ids:
                break
            items = await self.get_many(scope, ids)
            gone = [i for i, item in zip(ids, items, strict=True) if item is None]
            if gone:
                await self.redis.zrem(index, *gone)
            found += [item for item in items if item is not None]
            start += len(ids) - len(gone)
        return found[:limit]

    async def delete(self, scope: MemoryScope, item_id: str) -> bool:
        """Delete one item and its index entries; False when there was no such item."""
        base = _base(scope)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(f"{base}item:{item_id}")
            for kind in (*MEMORY_TYPES, "all"):
                pipe.zrem(f"{base}idx:{kind}", item_id)
            deleted, *_ = await pipe.execute()
        return bool(deleted)

    @staticmethod
    def _owned(scope: MemoryScope, raw: bytes | str | None) -> MemoryItem | None:
        if raw is None:
            return None
        item = MemoryItem.model_validate_json(raw)
        return item if scope.owns(item) else None
