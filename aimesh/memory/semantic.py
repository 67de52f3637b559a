"""Semantic recall with Chroma: every item's content embedded, one collection per tenant.

Chroma's client is synchronous; each call runs in a worker thread. Queries always filter
on the tenant's network and on ``expires_at`` (an expired item is never recalled, even
before the sweeper removes it).
"""

import asyncio
import hashlib
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlparse

from aimesh.memory.items import MemoryItem, Scope


def collection_name(tenant: str) -> str:
    """The tenant's collection: ``t_`` + 32 hex digits of SHA-256 (Chroma's name rules)."""
    return "t_" + hashlib.sha256(tenant.encode()).hexdigest()[:32]


def open_chroma(url: str | None, path: str) -> Any:
    """A Chroma client: an HTTP client for ``url``, else a PersistentClient at ``path``.

    Telemetry is off (no network calls of Chroma's own).

    Raises:
        ValueError: ``url`` is not ``http(s)://host[:port]``.
    """
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    settings = ChromaSettings(anonymized_telemetry=False)
    if url is None:
        return chromadb.PersistentClient(path=path, settings=settings)
    parts = urlparse(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"AIMESH_CHROMA_URL {url!r}: expected http(s)://host[:port]")
    return chromadb.HttpClient(
        host=parts.hostname,
        port=parts.port or (443 if parts.scheme == "https" else 8000),
        ssl=parts.scheme == "https",
        settings=settings,
    )


class SemanticMemory:
    """Embeds and recalls items by meaning.

    Args:
        client: A Chroma client (:func:`open_chroma`).
        embed: The embedding function (:func:`aimesh.memory.embeddings.embedding_function`).
    """

    def __init__(self, client: Any, embed: Any) -> None:
        self.client = client
        self.embed = embed
        self._collections: dict[str, Any] = {}

    def _collection(self, tenant: str) -> Any:
        name = collection_name(tenant)
        if name not in self._collections:
            self._collections[name] = self.client.get_or_create_collection(
                name,
                embedding_function=self.embed,
                metadata={"tenant": tenant},
                configuration={"hnsw": {"space": "cosine"}},
            )
        return self._collections[name]

    async def add(self, items: Sequence[MemoryItem]) -> None:
        """Embed and index items (upsert by id); all of one tenant."""
        if not items:
            return
        tenant = items[0].tenant
        if any(item.tenant != tenant for item in items):
            raise ValueError("add() takes the items of one tenant at a time")
        await asyncio.to_thread(
            lambda: self._collection(tenant).upsert(
                ids=[i.id for i in items],
                documents=[i.content for i in items],
                metadatas=[i.metadata() for i in items],
            )
        )

    async def query(
        self, scope: Scope, text: str, kinds: Sequence[str] = (), limit: int = 5
    ) -> list[tuple[str, float]]:
        """Ids of the ``limit`` items nearest ``text`` in meaning, with cosine distances.

        Args:
            scope: The tenant's network searched.
            text: What to recall.
            kinds: Types to keep; empty for all.
            limit: Results wanted (1-100).
        """
        where = _where(scope, kinds, time.time())
        found = await asyncio.to_thread(
            lambda: self._collection(scope.tenant).query(
                query_texts=[text], n_results=limit, where=where, include=["distances"]
            )
        )
        return list(zip(found["ids"][0], found["distances"][0], strict=True))

    async def delete(self, scope: Scope, ids: Sequence[str]) -> None:
        """Remove items of the tenant's network from the index."""
        if ids:
            await asyncio.to_thread(
                lambda: self._collection(scope.tenant).delete(
                    ids=list(ids), where=_where(scope, (), None)
                )
            )

    async def purge_expired(self, tenant: str, now: float | None = None) -> int:
        """Delete the tenant's items past ``expires_at``; returns how many were removed."""
        cutoff = time.time() if now is None else now

        def purge() -> int:
            collection = self._collection(tenant)
            expired = collection.get(where={"expires_at": {"$lte": cutoff}}, include=[])["ids"]
            if expired:
                collection.delete(ids=expired)
            return len(expired)

        return await asyncio.to_thread(purge)


def _where(scope: Scope, kinds: Sequence[str], now: float | None) -> dict[str, Any]:
    """Chroma filter: the tenant's network, optionally some types and only live items."""
    clauses: list[dict[str, Any]] = [
        {"tenant": scope.tenant},
        {"network_id": scope.network_id},
    ]
    if kinds:
        clauses.append({"type": {"$in": list(kinds)}})
    if now is not None:
        clauses.append({"expires_at": {"$gt": now}})
    return {"$and": clauses}
