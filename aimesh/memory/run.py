"""The memory one run reads and writes: a tenant's network, with ``memory`` events.

Each read and write is announced as a LangChain custom event (``memory``), which
the run's :class:`~aimesh.graphs.events.EventRecorder` turns into a ``memory`` event of the
task's event stream.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime

from langchain_core.callbacks import adispatch_custom_event

from aimesh.events import EventName
from aimesh.memory.items import MemoryItem, MemoryScope, MemoryType, Source
from aimesh.memory.shared import Recalled, SharedMemory

RECALL_LIMIT = 3
RECALL_MAX_DISTANCE = 0.75
"""Cosine distance beyond which a recalled item is not passed on to the agents.

Measured on the labelled MSP sets of ``tests/integration/memory`` (acronyms spelled out):
``recall_set`` keeps 96% of question-to-relevant-note pairs and 24% of unrelated pairs (0.8:
100% and 44%); ``recall_heldout`` 88% and 16% (0.8: 92% and 29%).
"""


@dataclass
class RunMemory:
    """A run's view of shared memory.

    Args:
        shared: The process's shared memory.
        scope: The tenant's network the run works for.
        policy: The tenant's retention days (``memory_<type>`` keys set the TTLs).
        task_id: The task being run, recorded as the source of what it writes.
    """

    shared: SharedMemory
    scope: MemoryScope
    policy: dict[str, int] = field(default_factory=dict)
    task_id: str | None = None

    async def recall(self, query: str, agent: str = "coordinator") -> list[Recalled]:
        """Items relevant to ``query`` (nearest first, unrelated ones left out)."""
        hits = await self.shared.recall(self.scope, query, limit=RECALL_LIMIT)
        kept = [hit for hit in hits if hit.distance <= RECALL_MAX_DISTANCE]
        await adispatch_custom_event(
            EventName.MEMORY,
            {
                "operation": "recall",
                "agent": agent,
                "query": query,
                "items": [
                    {"id": h.item.id, "type": h.item.type, "distance": round(h.distance, 4)}
                    for h in kept
                ],
            },
        )
        return kept

    async def record(self, kind: MemoryType, content: str, agent: str) -> MemoryItem:
        """Remember what ``agent`` found or decided for this task."""
        source = Source(kind="agent", name=agent, task_id=self.task_id)
        item = await self.shared.add(self.scope, kind, content[:4000], source, policy=self.policy)
        await adispatch_custom_event(
            EventName.MEMORY,
            {"operation": "write", "items": [{"id": item.id, "type": item.type}], "agent": agent},
        )
        return item


def render(recalled: list[Recalled]) -> list[str]:
    """One line per recalled item: ``[type, date, source] content``."""
    lines = []
    for hit in recalled:
        item = hit.item
        day = datetime.fromtimestamp(item.created_at, UTC).date().isoformat()
        who = item.source.name or item.source.kind
        lines.append(f"[{item.type}, {day}, {who}] {item.content}")
    return lines
