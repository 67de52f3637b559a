"""The names of a run's events, and of the custom callback events that feed them.

The event names: ``started``, ``agent``, ``tool``, ``token``,
``model_fallback``, ``memory``, ``budget``, ``result``, ``complete`` and ``error``. They are
the ``event`` field of every event a client receives (task event logs, SSE, the CLI's
progress); :class:`EventName` is a ``StrEnum``, so the JSON on the wire carries the plain
strings. The provider chain and shared memory, below the graphs, dispatch LangChain custom
events under these names too.
"""

from enum import StrEnum


class EventName(StrEnum):
    """The name of one event of a run's event log."""

    STARTED = "started"
    AGENT = "agent"
    TOOL = "tool"
    TOKEN = "token"
    MODEL_FALLBACK = "model_fallback"
    MEMORY = "memory"
    BUDGET = "budget"
    RESULT = "result"
    COMPLETE = "complete"
    ERROR = "error"


LAST_EVENTS = frozenset({EventName.COMPLETE, EventName.ERROR})
"""The events that end a run's log."""

MODEL_ATTEMPT = "model_attempt"
"""Custom callback event of the provider chain: one model call attempt ended. Its payload is
an :class:`aimesh.llm.attempt.ModelAttempt` for the ledger; clients get no event for it."""
