"""The ordered event log of one run, built from LangChain callbacks.

Event names are :class:`aimesh.events.EventName`'s (``budget``: a run downgraded or refused
at a budget's limit). Every event has a monotonically increasing ``id`` and the task id;
the agent, tool, model, tokens and cost where they apply.
"""

import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import ToolMessage
from langchain_core.outputs import LLMResult
from pydantic import BaseModel, Field

from aimesh.events import MODEL_ATTEMPT, EventName
from aimesh.llm.attempt import ModelAttempt

COORDINATOR = "coordinator"
AttemptSink = Callable[[ModelAttempt, str], None]
"""Receives a model call attempt and the agent whose model call it was."""
DELEGATE_KEY = "aimesh_delegate_to"
"""Tool metadata key naming the specialist a coordinator tool delegates to."""


class Event(BaseModel):
    """One entry of a run's event log.

    Attributes:
        id: Position in the log, from 1, strictly increasing.
        event: Event name.
        task_id: The run this event belongs to.
        ts: Wall-clock time, Unix seconds.
        agent: Agent the event belongs to (``coordinator`` or a specialist).
        tool: Tool name for ``tool`` events.
        model: Model that served a call, when one did.
        tokens: ``{"input": n, "output": n}`` for model calls and totals.
        cost_usd: Cost in USD (a decimal string in JSON); None when unknown.
        data: Event-specific payload.
    """

    id: int
    event: EventName
    task_id: str
    ts: float
    agent: str | None = None
    tool: str | None = None
    model: str | None = None
    tokens: dict[str, int] | None = None
    cost_usd: Decimal | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class EventRecorder(BaseCallbackHandler):
    """Translate a run's callbacks into :class:`Event` s and hand each to ``sink`` in order.

    Args:
        task_id: Id of the run.
        sink: Receives every event as it happens.
        on_attempt: Receives each provider attempt (the chain's ``model_attempt`` event)
            with its agent, for the ledger; no event is emitted for it (clients see the
            ``agent`` model call and ``model_fallback`` events). None: attempts are ignored.
    """

    run_inline = True

    def __init__(
        self,
        task_id: str,
        sink: Callable[[Event], None],
        on_attempt: AttemptSink | None = None,
    ) -> None:
        self.task_id = task_id
        self.sink = sink
        self.on_attempt = on_attempt
        self._lock = threading.Lock()
        self._next_id = 1
        self._agent: dict[UUID, str] = {}
        self._started: dict[UUID, tuple[str, float]] = {}
        self._delegations: set[UUID] = set()

    def emit(self, event: EventName, **fields: Any) -> Event:
        """Append one event to the log and pass it to the sink."""
        with self._lock:
            item = Event(
                id=self._next_id, event=event, task_id=self.task_id, ts=time.time(), **fields
            )
            self._next_id += 1
            self.sink(item)
        return item

    def _inherit(self, run_id: UUID, parent_run_id: UUID | None) -> str:
        agent = self._agent.get(parent_run_id, COORDINATOR) if parent_run_id else COORDINATOR
        self._agent[run_id] = agent
        return agent

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """Remember which agent a graph node or runnable belongs to."""
        self._inherit(run_id, parent_run_id)

    def on_chat_model_start(
        self,
        serialized: dict[str, Any] | None,
        messages: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """Remember which agent a model call belongs to."""
        self._inherit(run_id, parent_run_id)

    def on_tool_start(
        self,
        serialized: dict[str, Any] | None,
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Emit ``agent`` (a delegation starts) or ``tool`` (an ML tool starts)."""
        name = (serialized or {}).get("name") or kwargs.get("name") or "tool"
        agent = self._inherit(run_id, parent_run_id)
        self._started[run_id] = (name, time.perf_counter())
        specialist = (kwargs.get("metadata") or {}).get(DELEGATE_KEY)
        if specialist:
            self._agent[run_id] = specialist
            self._delegations.add(run_id)
            request = (inputs or {}).get("request", input_str)
            self.emit(
                EventName.AGENT,
                agent=self._agent[run_id],
                data={"status": "started", "request": request},
            )
        else:
            self.emit(
                EventName.TOOL,
                agent=agent,
                tool=name,
                data={"status": "started", "args": inputs or {}},
            )

    def _tool_done(self, run_id: UUID, status: str, detail: str) -> None:
        name, t0 = self._started.pop(run_id, ("tool", time.perf_counter()))
        data = {"status": status, "elapsed_s": round(time.perf_counter() - t0, 3)}
        if run_id in self._delegations:
            self._delegations.discard(run_id)
            self.emit(EventName.AGENT, agent=self._agent.get(run_id), data=data)
        else:
            self.emit(
                EventName.TOOL,
                agent=self._agent.get(run_id),
                tool=name,
                data={**data, "result": detail},
            )

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """Emit the end of a delegation or tool call with its elapsed seconds."""
        error = isinstance(output, ToolMessage) and output.status == "error"
        text = output.text if isinstance(output, ToolMessage) else str(output)
        self._tool_done(run_id, "error" if error else "finished", text)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """Emit a failed delegation or tool call."""
        self._tool_done(run_id, "error", str(error))

    def on_llm_new_token(self, token: str, *, run_id: UUID, **kwargs: Any) -> None:  # type: ignore[override]
        """Emit each streamed token with the agent it belongs to."""
        if token:
            self.emit(
                EventName.TOKEN, agent=self._agent.get(run_id, COORDINATOR), data={"text": token}
            )

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        """Emit a model call's model, tokens and cost as an ``agent`` event."""
        for generation in (g for gens in response.generations for g in gens):
            message = getattr(generation, "message", None)
            if message is None:
                continue
            usage = getattr(message, "usage_metadata", None) or {}
            meta = message.response_metadata
            cost = meta.get("cost_usd")  # the chain's decimal string
            self.emit(
                EventName.AGENT,
                agent=self._agent.get(run_id, COORDINATOR),
                model=meta.get("model_name"),
                tokens={
                    "input": usage.get("input_tokens", 0),
                    "output": usage.get("output_tokens", 0),
                },
                cost_usd=None if cost is None else Decimal(cost),
                data={
                    "status": "model_call",
                    "provider": meta.get("provider"),
                    "attempts": meta.get("attempts", []),
                },
            )

    def on_custom_event(self, name: str, data: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """Emit ``model_fallback`` and ``memory``; hand ``model_attempt`` to ``on_attempt``.

        ``model_fallback``: the provider chain moved on; ``memory``: a read or write;
        ``model_attempt``: a provider attempt ended (a ledger row, no event).

        A ``memory`` event names the agent that read or wrote (``data["agent"]``) when the
        data says so, else the agent whose run dispatched it.
        """
        agent = self._agent.get(run_id, COORDINATOR)
        if name == MODEL_ATTEMPT:
            if self.on_attempt is not None:
                self.on_attempt(data, agent)
        elif name == EventName.MODEL_FALLBACK:
            self.emit(EventName.MODEL_FALLBACK, agent=agent, data=data)
        elif name == EventName.MEMORY:
            self.emit(EventName.MEMORY, agent=data.get("agent") or agent, data=data)
