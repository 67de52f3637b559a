"""Server-sent events: a task's event log as an SSE stream, resumable with Last-Event-ID.

Each SSE message carries the event's ``id`` (its position in the task's log), the event
name as ``event`` and the whole event as JSON ``data``. The stream ends after ``complete``
or ``error``; every ``AIMESH_SSE_HEARTBEAT_S`` seconds a ``: ping`` comment keeps proxies
from closing a quiet stream.
"""

import json
from collections.abc import AsyncIterator

from sse_starlette import EventSourceResponse, ServerSentEvent

from aimesh.graphs.events import Event
from aimesh.service.runner import TERMINAL, is_last
from aimesh.service.services import Services
from aimesh.store.tables import Task


def message(event_id: int, payload: str) -> ServerSentEvent:
    """One SSE message for a stored event (payload: the event as JSON)."""
    return ServerSentEvent(id=str(event_id), event=json.loads(payload)["event"], data=payload)


def event_message(event: Event) -> ServerSentEvent:
    """One SSE message for an event not stored in a log (direct generation)."""
    return ServerSentEvent(id=str(event.id), event=event.event, data=event.model_dump_json())


async def task_events(services: Services, task: Task, after: int) -> AsyncIterator[ServerSentEvent]:
    """The task's events after id ``after``, live until the last one.

    A log that has ended (its task is terminal, or its newest event is ``complete`` or
    ``error``: a run writes that event before it saves the task's status) and that holds
    nothing after ``after`` ends the stream at once.

    Args:
        services: Open services (the event log).
        task: The task, already checked to be the caller's.
        after: Last event id the client has (``Last-Event-ID``); 0 for all.
    """
    newest = await services.events.newest(task.id)
    ended = task.status in TERMINAL or (newest is not None and is_last(newest[1]))
    if ended and (newest is None or newest[0] <= after):
        return
    async for item in services.events.follow(task.id, after, is_last=is_last):
        if item is not None:
            yield message(*item)


def stream(events: AsyncIterator[ServerSentEvent], heartbeat_s: float) -> EventSourceResponse:
    """The SSE response, with heartbeat comments; no proxy buffering, no caching."""
    return EventSourceResponse(
        events,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        ping=heartbeat_s,
    )
