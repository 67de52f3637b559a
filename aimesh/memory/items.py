"""Memory items: what a network's agents remember, whose it is, and how long it lives.

Four types: ``fact`` (objectively true, e.g. a model's output),
``context`` (about the task or domain), ``decision`` (made while processing a task) and
``feedback`` (on earlier actions or answers).
"""

import re
import time
import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, Field

from aimesh.errors import InvalidInputError

MemoryType = Literal["fact", "context", "decision", "feedback"]
MEMORY_TYPES: tuple[str, ...] = get_args(MemoryType)
SourceKind = Literal["agent", "tool", "task", "user"]
NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
"""Tenants and network ids: no ``:``, ``*`` or spaces, so a key or filter cannot be crafted."""

DEFAULT_TTL_DAYS: dict[str, int] = {"fact": 90, "context": 30, "decision": 180, "feedback": 365}
"""Days an item lives when the tenant's retention policy sets none for its type.

Our choice, not a measurement: task context goes stale soonest; decisions and the
feedback on them are what a later review looks for.
"""

Content = Annotated[str, Field(min_length=1, max_length=4000)]


class Source(BaseModel):
    """Where an item came from.

    Attributes:
        kind: ``agent``, ``tool``, ``task`` or ``user``.
        name: The agent or tool name, or the user id.
        task_id: The task it was written for, when there was one.
    """

    kind: SourceKind
    name: str | None = Field(default=None, max_length=64)
    task_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")


class MemoryItem(BaseModel):
    """One remembered item of a tenant's network.

    Attributes:
        id: 32 hex digits.
        type: fact, context, decision or feedback.
        content: The text (1-4000 characters).
        source: Where it came from.
        tenant: Owner (an MSP).
        network_id: The network whose memory holds it.
        created_at: Unix seconds.
        expires_at: Unix seconds; Redis drops the item then and recall ignores it.
    """

    id: str = Field(default_factory=lambda: uuid.uuid4().hex, pattern=r"^[0-9a-f]{32}$")
    type: MemoryType
    content: Content
    source: Source
    tenant: str = Field(pattern=NAME_PATTERN)
    network_id: str = Field(pattern=NAME_PATTERN)
    created_at: float = Field(default_factory=time.time)
    expires_at: float

    @property
    def ttl_s(self) -> float:
        """Seconds left to live (may be <= 0 for an expired item)."""
        return self.expires_at - time.time()

    def metadata(self) -> dict[str, Any]:
        """Flat metadata for the semantic index (Chroma accepts str/int/float/bool only)."""
        return {
            "tenant": self.tenant,
            "network_id": self.network_id,
            "type": self.type,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "source": self.source.model_dump_json(),
        }


@dataclass(frozen=True)
class MemoryScope:
    """A tenant's network: every read and write of memory names one.

    Args:
        tenant: The tenant (an MSP).
        network_id: The network.

    Raises:
        InvalidInputError: Either is empty or has characters outside ``[A-Za-z0-9_.-]``.
    """

    tenant: str
    network_id: str

    def __post_init__(self) -> None:
        for name, value in (("tenant", self.tenant), ("network_id", self.network_id)):
            if not isinstance(value, str) or not re.match(NAME_PATTERN, value):
                raise InvalidInputError(
                    name, f"memory needs a {name}, got {value!r}", "1-64 of A-Z a-z 0-9 _ . -"
                )

    def owns(self, item: MemoryItem) -> bool:
        """True when ``item`` belongs to this tenant's network."""
        return item.tenant == self.tenant and item.network_id == self.network_id


def ttl_days(policy: dict[str, int], kind: str) -> int:
    """Days an item of type ``kind`` lives under a retention policy (``memory_<type>`` keys)."""
    return int(policy.get(f"memory_{kind}", DEFAULT_TTL_DAYS[kind]))
