"""A network's shared memory: add an item, list or recall by meaning, read, delete."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status

from aimesh.api.auth import Principal
from aimesh.api.deps import (
    AuditDep,
    Creator,
    Deleter,
    IdPath,
    Reader,
    ServicesDep,
    SessionDep,
    owned,
)
from aimesh.api.errors import NOT_FOUND
from aimesh.api.schemas import MemoryCreate, MemoryList, MemoryPublic
from aimesh.memory.items import MemoryItem, MemoryScope, MemoryType, Source
from aimesh.memory.shared import DAY_S
from aimesh.service.retention import policy_days
from aimesh.store.tables import Network

router = APIRouter(prefix="/networks/{network_id}/memory", tags=["memory"], responses=NOT_FOUND)


def public(item: MemoryItem, distance: float | None = None) -> MemoryPublic:
    """An item as the API shows it (times as UTC datetimes)."""
    return MemoryPublic(
        id=item.id,
        type=item.type,
        content=item.content,
        source=item.source.model_dump(),
        network_id=item.network_id,
        created_at=datetime.fromtimestamp(item.created_at, UTC),
        expires_at=datetime.fromtimestamp(item.expires_at, UTC),
        distance=distance,
    )


async def scope_of(session: SessionDep, network_id: str, caller: Principal) -> MemoryScope:
    """The caller's network as a memory scope; 404 when it is not the caller's."""
    await owned(session, Network, network_id, caller)
    return MemoryScope(caller.tenant, network_id)


@router.post("", status_code=status.HTTP_201_CREATED)
async def add_memory(
    network_id: IdPath,
    body: MemoryCreate,
    caller: Creator,
    session: SessionDep,
    services: ServicesDep,
    audit: AuditDep,
) -> MemoryPublic:
    """Remember an item; agents recall it by meaning from the next task on.

    User feedback on an answer is ``type: feedback`` with the answer's ``task_id``.
    """
    scope = await scope_of(session, network_id, caller)
    policy = await policy_days(session, caller.tenant)
    await session.commit()  # end the read before the (slower) memory write
    source = Source(kind="user", name=caller.user_id, task_id=body.task_id)
    ttl_s = body.ttl_days * DAY_S if body.ttl_days else None
    item = await services.memory.add(
        scope, body.type, body.content, source, policy=policy, ttl_s=ttl_s
    )
    audit.resource_id = item.id
    return public(item)


@router.get("")
async def list_memory(
    network_id: IdPath,
    caller: Reader,
    session: SessionDep,
    services: ServicesDep,
    type_: Annotated[MemoryType | None, Query(alias="type")] = None,
    query: Annotated[
        str | None, Query(min_length=1, max_length=1000, description="Recall by meaning.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> MemoryList:
    """The network's items, newest first; with ``query``, the nearest in meaning first."""
    scope = await scope_of(session, network_id, caller)
    await session.commit()
    if query is None:
        items = [public(i) for i in await services.memory.newest(scope, type_, limit)]
    else:
        kinds = [type_] if type_ else []
        hits = await services.memory.recall(scope, query, kinds, limit)
        items = [public(h.item, h.distance) for h in hits]
    return MemoryList(items=items, query=query, limit=limit)


@router.get("/{item_id}")
async def get_memory(
    network_id: IdPath, item_id: IdPath, caller: Reader, session: SessionDep, services: ServicesDep
) -> MemoryPublic:
    """One item of the network's memory."""
    scope = await scope_of(session, network_id, caller)
    item = await services.memory.get(scope, item_id)
    if item is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"memory item {item_id} not found")
    return public(item)


@router.delete("/{item_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_memory(
    network_id: IdPath, item_id: IdPath, caller: Deleter, session: SessionDep, services: ServicesDep
) -> Response:
    """Forget an item (from Redis and from the semantic index)."""
    scope = await scope_of(session, network_id, caller)
    await session.commit()
    if not await services.memory.delete(scope, item_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"memory item {item_id} not found")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
