"""Networks: a named mesh with its limits and agents."""

from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from sqlalchemy import delete, select
from sqlalchemy.orm import selectinload

from aimesh.api.deps import (
    AuditDep,
    Creator,
    Deleter,
    IdPath,
    Offset,
    Reader,
    ServicesDep,
    SessionDep,
    owned,
)
from aimesh.api.errors import NOT_FOUND
from aimesh.api.schemas import NetworkCreate, NetworkPublic, Page
from aimesh.errors import InvalidInputError
from aimesh.service.mesh import check_tools, default_agents
from aimesh.store.paging import page
from aimesh.store.tables import Agent, Network, Task, new_id

router = APIRouter(prefix="/networks", tags=["network"])
WITH_AGENTS = selectinload(Network.agents)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_network(
    body: NetworkCreate, caller: Creator, session: SessionDep, audit: AuditDep
) -> NetworkPublic:
    """Create a network; without ``agents`` it gets the coordinator and default specialists."""
    network = Network(
        id=new_id(),
        tenant=caller.tenant,
        name=body.name,
        description=body.description,
        max_iterations=body.max_iterations,
        timeout_seconds=body.timeout_seconds,
        created_by=caller.key_id,
    )
    rows = default_agents()[:1] if body.agents else default_agents()
    for agent in body.agents or []:
        rows.append({"kind": "custom", **agent.model_dump(), "tools": check_tools(agent.tools)})
    if len({r["name"] for r in rows}) < len(rows):
        raise InvalidInputError("agents", "two agents share a name", "unique agent names")
    session.add(network)
    session.add_all(Agent(tenant=caller.tenant, network_id=network.id, **row) for row in rows)
    await session.commit()
    await session.refresh(network, ["agents"])
    audit.resource_id = network.id
    return NetworkPublic.model_validate(network)


@router.get("")
async def list_networks(
    caller: Reader,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Offset = 0,
) -> Page[NetworkPublic]:
    """The caller's networks, newest first."""
    query = (
        select(Network)
        .options(WITH_AGENTS)
        .where(Network.tenant == caller.tenant)
        .order_by(Network.created_at.desc(), Network.id)
    )
    rows, total = await page(session, query, limit, offset)
    items = [NetworkPublic.model_validate(n) for n in rows]
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/{network_id}", responses=NOT_FOUND)
async def get_network(network_id: IdPath, caller: Reader, session: SessionDep) -> NetworkPublic:
    """One network with its agents."""
    return NetworkPublic.model_validate(
        await owned(session, Network, network_id, caller, WITH_AGENTS)
    )


@router.delete("/{network_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_network(
    network_id: IdPath, caller: Deleter, session: SessionDep, services: ServicesDep
) -> Response:
    """Delete a network with its agents, threads, tasks and their event logs.

    Running tasks of the network are cancelled first.
    """
    network = await owned(session, Network, network_id, caller)
    tasks = (
        await session.execute(select(Task.id, Task.status).where(Task.network_id == network.id))
    ).all()
    await session.commit()  # end the read: cancelling uses the database too
    for task_id, task_status in tasks:
        if task_status in ("pending", "running"):
            await services.runner.cancel(task_id)
    # The database cascades to agents, threads and tasks (ON DELETE CASCADE); the ORM would
    # instead null the network id of the agents it has loaded, which the schema refuses.
    await session.execute(delete(Network).where(Network.id == network.id))
    await session.commit()
    await services.events.delete([task_id for task_id, _ in tasks])
    return Response(status_code=status.HTTP_204_NO_CONTENT)
