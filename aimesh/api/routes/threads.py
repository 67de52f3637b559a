"""Chat threads: conversations whose follow-up questions see the earlier ones."""

from typing import Annotated

from fastapi import APIRouter, Query, status
from langchain_core.messages import AIMessage, HumanMessage
from sqlalchemy import select

from aimesh.api.deps import (
    AuditDep,
    Creator,
    IdPath,
    Offset,
    Reader,
    ServicesDep,
    SessionDep,
    owned,
)
from aimesh.api.errors import BUDGET_EXCEEDED, NOT_FOUND
from aimesh.api.routes.tasks import submit
from aimesh.api.schemas import (
    MessageCreate,
    MessagePublic,
    Page,
    TaskCreate,
    TaskPublic,
    ThreadCreate,
    ThreadPublic,
)
from aimesh.store.paging import page
from aimesh.store.tables import Network, Thread

router = APIRouter(tags=["thread"], responses=NOT_FOUND)


@router.post("/networks/{network_id}/threads", status_code=status.HTTP_201_CREATED)
async def create_thread(
    network_id: IdPath, body: ThreadCreate, caller: Creator, session: SessionDep, audit: AuditDep
) -> ThreadPublic:
    """Start a conversation with a network."""
    network = await owned(session, Network, network_id, caller)
    thread = Thread(
        tenant=caller.tenant, network_id=network.id, title=body.title, created_by=caller.key_id
    )
    session.add(thread)
    await session.commit()
    audit.resource_id = thread.id
    return ThreadPublic.model_validate(thread)


@router.get("/networks/{network_id}/threads")
async def list_threads(
    network_id: IdPath,
    caller: Reader,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Offset = 0,
) -> Page[ThreadPublic]:
    """The network's conversations, newest first."""
    await owned(session, Network, network_id, caller)
    query = (
        select(Thread)
        .where(Thread.tenant == caller.tenant, Thread.network_id == network_id)
        .order_by(Thread.created_at.desc())
    )
    rows, total = await page(session, query, limit, offset)
    items = [ThreadPublic.model_validate(t) for t in rows]
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/threads/{thread_id}")
async def get_thread(thread_id: IdPath, caller: Reader, session: SessionDep) -> ThreadPublic:
    """One conversation."""
    return ThreadPublic.model_validate(await owned(session, Thread, thread_id, caller))


@router.post(
    "/threads/{thread_id}/messages",
    status_code=status.HTTP_202_ACCEPTED,
    responses=BUDGET_EXCEEDED,
)
async def post_message(
    thread_id: IdPath,
    body: MessageCreate,
    caller: Creator,
    session: SessionDep,
    services: ServicesDep,
    audit: AuditDep,
) -> TaskPublic:
    """Ask a question in the conversation; it runs as a task of the thread's network (202).

    Follow the answer at ``/tasks/{task_id}/events``; it joins the history when done.
    """
    thread = await owned(session, Thread, thread_id, caller)
    await session.commit()  # end the read: the embedded database has one connection
    task_body = TaskCreate(task=body.content, context=body.context)
    task = await submit(services, caller, thread.network_id, task_body, thread_id=thread.id)
    audit.resource_id = task.id
    return TaskPublic.model_validate(task)


@router.get("/threads/{thread_id}/messages")
async def list_messages(
    thread_id: IdPath, caller: Reader, session: SessionDep, services: ServicesDep
) -> list[MessagePublic]:
    """The conversation so far: each question and the final answer to it, oldest first."""
    thread = await owned(session, Thread, thread_id, caller)
    saved = await services.checkpointer.aget_tuple({"configurable": {"thread_id": thread.id}})
    messages = saved.checkpoint["channel_values"].get("messages", []) if saved else []
    history = []
    for m in messages:
        if isinstance(m, HumanMessage):
            history.append(MessagePublic(role="user", content=m.text))
        elif isinstance(m, AIMessage) and not m.tool_calls:
            history.append(MessagePublic(role="assistant", content=m.text))
    return history
