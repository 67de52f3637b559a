"""Tasks: submit, process (idempotent), read, list, cancel."""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from sqlalchemy import select

from aimesh.api.auth import Principal
from aimesh.api.deps import (
    AuditDep,
    Creator,
    IdPath,
    Offset,
    Reader,
    ServicesDep,
    SessionDep,
    Writer,
    owned,
)
from aimesh.api.errors import BUDGET_EXCEEDED, NOT_FOUND, conflict
from aimesh.api.schemas import DateTime, Page, TaskCreate, TaskPublic, TaskStatus
from aimesh.billing.budgets import Spender
from aimesh.service.runner import TERMINAL
from aimesh.service.services import Services
from aimesh.store.paging import page
from aimesh.store.tables import Network, Task, new_id

router = APIRouter(prefix="/networks/{network_id}/tasks", tags=["task"], responses=NOT_FOUND)


async def submit(
    services: Services,
    caller: Principal,
    network_id: str,
    body: TaskCreate,
    thread_id: str | None = None,
) -> Task:
    """Persist a task (``pending``) and queue it; returns the stored task.

    Args:
        services: The process's services (its runner takes the task).
        caller: Who submits; the task belongs to their tenant.
        network_id: The caller's network that runs it.
        body: The validated request.
        thread_id: Conversation to continue; default: a new thread per task.

    Raises:
        HTTPException: 404 when the network is not the caller's.
        BudgetExceededError: A budget of the tenant, network or key has no room for the
            run (HTTP 402).
    """
    spender = Spender(caller.tenant, network_id, caller.key_id)
    await services.budgets.check(spender, body.model_selection)
    task_id = new_id()
    task = await services.runner.submit(
        {
            "id": task_id,
            "tenant": caller.tenant,
            "network_id": network_id,
            "thread_id": thread_id or task_id,
            "task": body.task,
            "context": body.context,
            "priority": body.priority,
            "model_selection": body.model_selection.model_dump() if body.model_selection else None,
            "key_id": caller.key_id,
            "user_id": caller.user_id,
        }
    )
    if task is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"network {network_id} not found")
    return task


@router.post("", status_code=status.HTTP_202_ACCEPTED, responses=BUDGET_EXCEEDED)
async def create_task(
    network_id: IdPath,
    body: TaskCreate,
    caller: Creator,
    services: ServicesDep,
    audit: AuditDep,
) -> TaskPublic:
    """Submit a task; it is queued at once (202). Follow it at ``/tasks/{task_id}/events``."""
    task = await submit(services, caller, network_id, body)
    audit.resource_id = task.id
    return TaskPublic.model_validate(task)


@router.get("")
async def list_tasks(
    network_id: IdPath,
    caller: Reader,
    session: SessionDep,
    status_: Annotated[TaskStatus | None, Query(alias="status")] = None,
    since: Annotated[DateTime | None, Query(description="Created at or after (UTC).")] = None,
    until: Annotated[DateTime | None, Query(description="Created before (UTC).")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Offset = 0,
) -> Page[TaskPublic]:
    """The network's tasks, newest first, filtered by status and creation time."""
    await owned(session, Network, network_id, caller)
    query = select(Task).where(Task.tenant == caller.tenant, Task.network_id == network_id)
    if status_ is not None:
        query = query.where(Task.status == status_)
    if since is not None:
        query = query.where(Task.created_at >= since)
    if until is not None:
        query = query.where(Task.created_at < until)
    rows, total = await page(session, query.order_by(Task.created_at.desc()), limit, offset)
    items = [TaskPublic.model_validate(t) for t in rows]
    return Page(items=items, total=total, limit=limit, offset=offset)


async def network_task(
    session: SessionDep, network_id: str, task_id: str, caller: Principal
) -> Task:
    """The caller's task ``task_id`` of network ``network_id``; 404 otherwise."""
    task = await owned(session, Task, task_id, caller)
    if task.network_id != network_id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"task {task_id} not found")
    return task


@router.get("/{task_id}")
async def get_task(
    network_id: IdPath, task_id: IdPath, caller: Reader, session: SessionDep
) -> TaskPublic:
    """A task: status, result, agents, tokens and cost (USD)."""
    return TaskPublic.model_validate(await network_task(session, network_id, task_id, caller))


@router.post("/{task_id}/process", status_code=status.HTTP_202_ACCEPTED)
async def process_task(
    network_id: IdPath, task_id: IdPath, caller: Writer, session: SessionDep, services: ServicesDep
) -> TaskPublic:
    """Make sure a task runs (idempotent): a pending one is queued here; others are left alone.

    A task runs once however often this is called, from however many processes.
    """
    task = await network_task(session, network_id, task_id, caller)
    if task.status == "pending":
        services.runner.enqueue(task.id, task.priority)
    return TaskPublic.model_validate(task)


@router.post(
    "/{task_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    responses=conflict("The task has already finished."),
)
async def cancel_task(
    network_id: IdPath, task_id: IdPath, caller: Writer, session: SessionDep, services: ServicesDep
) -> TaskPublic:
    """Cancel a pending or running task (it ends ``cancelled``); a finished one is unchanged.

    Raises:
        HTTPException: 409 when the task has already finished.
    """
    task = await network_task(session, network_id, task_id, caller)
    if task.status in TERMINAL:
        raise HTTPException(status.HTTP_409_CONFLICT, f"task {task_id} already {task.status}")
    await session.commit()  # end the read: cancelling uses the database too
    await services.runner.cancel(task.id)
    await session.refresh(task)
    return TaskPublic.model_validate(task)
