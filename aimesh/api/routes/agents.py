"""Agents of a network: list, add a custom specialist, remove one."""

from fastapi import APIRouter, HTTPException, Response, status
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from aimesh.api.deps import AuditDep, Creator, Deleter, IdPath, Reader, SessionDep, owned
from aimesh.api.errors import NOT_FOUND, conflict
from aimesh.api.schemas import AgentCreate, AgentPublic
from aimesh.service.mesh import check_tools
from aimesh.store.tables import Agent, Network

router = APIRouter(prefix="/networks/{network_id}/agents", tags=["agent"], responses=NOT_FOUND)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=conflict("The network already has an agent of that name."),
)
async def create_agent(
    network_id: IdPath, body: AgentCreate, caller: Creator, session: SessionDep, audit: AuditDep
) -> AgentPublic:
    """Add a custom specialist; the coordinator can delegate to it from the next task on.

    Raises:
        HTTPException: 409 if the network already has an agent of that name.
    """
    network = await owned(session, Network, network_id, caller)
    agent = Agent(
        tenant=caller.tenant,
        network_id=network.id,
        kind="custom",
        **body.model_dump(exclude={"tools"}),
        tools=check_tools(body.tools),
    )
    session.add(agent)
    try:
        await session.commit()
    except IntegrityError:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"network {network_id} already has an agent {body.name!r}"
        ) from None
    audit.resource_id = agent.id
    return AgentPublic.model_validate(agent)


@router.get("")
async def list_agents(network_id: IdPath, caller: Reader, session: SessionDep) -> list[AgentPublic]:
    """The network's agents: the coordinator, built-in and custom specialists."""
    network = await owned(session, Network, network_id, caller, selectinload(Network.agents))
    return [AgentPublic.model_validate(a) for a in network.agents]


@router.delete(
    "/{agent_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=conflict("The coordinator cannot be removed."),
)
async def delete_agent(
    network_id: IdPath, agent_id: IdPath, caller: Deleter, session: SessionDep
) -> Response:
    """Remove an agent from the network (not the coordinator).

    Raises:
        HTTPException: 404 unknown agent; 409 for the coordinator.
    """
    await owned(session, Network, network_id, caller)
    agent = await session.scalar(
        select(Agent).where(Agent.id == agent_id, Agent.network_id == network_id)
    )
    if agent is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"agent {agent_id} not found")
    if agent.name == "coordinator":
        raise HTTPException(status.HTTP_409_CONFLICT, "the coordinator cannot be removed")
    await session.delete(agent)
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
