"""Streaming: submit-and-stream, a task's SSE events, and direct generation."""

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from sse_starlette import EventSourceResponse, ServerSentEvent

from aimesh.api.deps import (
    AuditDep,
    Creator,
    IdPath,
    Reader,
    ServicesDep,
    SessionDep,
    Writer,
    owned,
)
from aimesh.api.errors import BUDGET_EXCEEDED, NOT_FOUND
from aimesh.api.routes.tasks import submit
from aimesh.api.schemas import GenerateCreate, TaskCreate
from aimesh.api.sse import event_message, stream, task_events
from aimesh.billing.ledger import RunContext
from aimesh.billing.run_bound import RunBound
from aimesh.errors import AimeshError
from aimesh.events import EventName
from aimesh.graphs.events import Event
from aimesh.llm.selection import choose_route
from aimesh.service.budgeted import BudgetedRun
from aimesh.store.tables import Task

logger = logging.getLogger(__name__)
router = APIRouter(tags=["stream"])
LastEventId = Annotated[
    int,
    Header(
        alias="Last-Event-ID", ge=0, le=2**63 - 1, description="Resume after this event id (SSE)."
    ),
]
SSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "Server-sent events."}
}
SSE_OF_RECORD = {**SSE, **NOT_FOUND}


@router.post(
    "/networks/{network_id}/tasks/stream",
    response_class=EventSourceResponse,
    responses={**SSE_OF_RECORD, **BUDGET_EXCEEDED},
)
async def submit_and_stream(
    network_id: IdPath,
    body: TaskCreate,
    caller: Creator,
    services: ServicesDep,
    audit: AuditDep,
) -> EventSourceResponse:
    """Submit a task and stream its events (SSE) until ``complete`` or ``error``.

    The task id is in every event; reconnect to ``/tasks/{task_id}/events`` with
    ``Last-Event-ID`` to resume.
    """
    task = await submit(services, caller, network_id, body)
    audit.resource_id = task.id
    return stream(task_events(services, task, 0), services.settings.sse_heartbeat_s)


@router.get("/tasks/{task_id}/events", response_class=EventSourceResponse, responses=SSE_OF_RECORD)
async def task_event_stream(
    task_id: IdPath,
    caller: Reader,
    session: SessionDep,
    services: ServicesDep,
    last_event_id: LastEventId = 0,
) -> EventSourceResponse:
    """A task's events (SSE), from after ``Last-Event-ID``: no gap, no duplicate."""
    task = await owned(session, Task, task_id, caller)
    return stream(task_events(services, task, last_event_id), services.settings.sse_heartbeat_s)


router.add_api_route(
    "/tasks/{task_id}/stream",
    task_event_stream,
    methods=["GET"],
    name="task_stream",
    response_class=EventSourceResponse,
    responses=SSE_OF_RECORD,
    summary="A task's events (SSE); the same stream as /tasks/{task_id}/events",
)


@router.post(
    "/generate/stream", response_class=EventSourceResponse, responses={**SSE, **BUDGET_EXCEEDED}
)
async def generate_stream(
    body: GenerateCreate, caller: Writer, services: ServicesDep
) -> EventSourceResponse:
    """Stream a model's answer to a prompt straight from the provider chain (SSE).

    Events: ``started``, ``budget`` when a budget downgraded the call to cheaper models,
    ``token`` ..., ``model_fallback`` when a provider fails (with ``discard_partial`` when
    tokens were sent: drop them, the next model restarts), ``agent`` with the model, tokens
    and cost (USD), then ``complete`` (or ``error``). The events are not stored (a dropped
    connection cannot resume); every model attempt is in the ledger, under the caller's
    tenant, key and user.

    The call's worst case (one chain call) is reserved against the tenant's and the key's
    budgets first, and reconciled with what its attempts cost: 402 when a budget has no
    room for it, reservations of running calls and tasks included.
    """
    settings = services.settings
    queue: asyncio.Queue[Event | None] = asyncio.Queue()
    context = RunContext(tenant=caller.tenant, key_id=caller.key_id, user_id=caller.user_id)
    run = services.budgeted.start(context, uuid.uuid4().hex, queue.put_nowait)
    run.recorder.emit(EventName.STARTED, data={"prompt_chars": len(body.prompt)})
    route = choose_route(None, services.links, {})
    await run.admit(
        RunBound.one_call(settings, body.max_tokens),
        route,
        hold_s=len(route) * (settings.request_timeout_s + settings.retry_wait_budget_s),
    )
    return stream(_generate(services, body, run, queue), settings.sse_heartbeat_s)


async def _generate(
    services: ServicesDep,
    body: GenerateCreate,
    run: BudgetedRun,
    queue: "asyncio.Queue[Event | None]",
) -> AsyncIterator[ServerSentEvent]:
    options = body.model_dump(include={"temperature", "max_tokens"}, exclude_none=True)
    if body.model:
        options["prefer"] = body.model
    messages: list[BaseMessage] = [SystemMessage(body.system)] if body.system else []
    messages.append(HumanMessage(body.prompt))
    recorder = run.recorder

    async def produce() -> None:
        try:
            # ainvoke of the streaming chain: tokens and the chain's events reach the recorder
            with run.on_route():
                await services.model.ainvoke(messages, {"callbacks": [recorder]}, **options)
            recorder.emit(EventName.COMPLETE)
        except AimeshError as error:
            recorder.emit(
                EventName.ERROR, data={"type": type(error).__name__, "message": str(error)}
            )
        except Exception as error:  # a bug: the stream still ends with its error event
            logger.exception("generation %s failed", recorder.task_id)
            recorder.emit(
                EventName.ERROR, data={"type": "InternalError", "message": type(error).__name__}
            )
        finally:
            queue.put_nowait(None)
            await run.settle()

    producer = asyncio.create_task(produce())
    finished = False
    try:
        while (event := await queue.get()) is not None:
            yield event_message(event)
        finished = True
    finally:
        if not finished:  # the client left: stop the call
            producer.cancel()
        await asyncio.wait([producer])  # its ledger rows and reconciliation end with the stream
