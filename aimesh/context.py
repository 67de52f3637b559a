"""Run-time context shared by the coordinator, the specialists and their tools.

Passed to LangGraph as ``context_schema`` and read through ``Runtime[Context]`` /
``ToolRuntime[Context]``; services are injected here, never held in module globals.
"""

from dataclasses import dataclass, field

from aimesh.config import Settings, get_settings
from aimesh.memory.run import RunMemory
from aimesh.ml.service import MLService


@dataclass
class Context:
    """Per-run settings and services.

    Attributes:
        ml: The ML service (portfolio, trained models), loaded lazily.
        max_delegations: Specialist calls allowed per question.
        max_repeats: Times one identical delegation (agent + request) may run per question.
        memory: The network's shared memory (recalled before delegating, written by the
            specialists); None runs without memory (the CLI).
    """

    ml: MLService = field(default_factory=lambda: MLService(get_settings()))
    max_delegations: int = 6
    max_repeats: int = 1
    memory: RunMemory | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> "Context":
        """Build a context whose limits and services follow ``settings``."""
        return cls(
            ml=MLService(settings),
            max_delegations=settings.max_delegations,
            max_repeats=settings.max_repeats,
        )
