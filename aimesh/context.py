"""Run-time context shared by the coordinator, the specialists and their tools.

Passed to LangGraph as ``context_schema`` and read through ``Runtime[Context]`` /
``ToolRuntime[Context]``; services are injected here, never held in module globals.
"""

from dataclasses import dataclass, field

from aimesh.config import Settings, get_settings
from aimesh.llm.providers import plans_delegations
from aimesh.memory.run import RunMemory
from aimesh.portfolio.book import ClientBook
from aimesh.portfolio.sample import sample_book


@dataclass
class Context:
    """Per-run settings and services.

    Attributes:
        book: The client book of the run's tenant, one version for the whole run (its
            table and models load lazily); default: the sample book.
        max_delegations: Specialist calls allowed per question.
        max_repeats: Times one identical delegation (agent + request) may run per question.
        memory: The network's shared memory (recalled before delegating, written by the
            specialists); None runs without memory (the CLI).
        price_change_limit: Default bound of a price recommendation, a fraction (0.15 =
            +-15%; ``AIMESH_PRICE_CHANGE_LIMIT``).
        plan: The coordinator plans a question's delegations in one decision
            (:mod:`aimesh.graphs.plan`) instead of native parallel tool calls: for models
            without reliable parallel tool calls (``AIMESH_PLAN_PROVIDERS``).
    """

    book: ClientBook = field(default_factory=lambda: sample_book(get_settings()))
    max_delegations: int = 6
    max_repeats: int = 1
    memory: RunMemory | None = None
    price_change_limit: float = Settings.model_fields["price_change_limit"].default
    plan: bool = False

    @classmethod
    def from_settings(cls, settings: Settings, book: ClientBook) -> "Context":
        """Build a context whose limits follow ``settings``, reading ``book``."""
        return cls(
            book=book,
            max_delegations=settings.max_delegations,
            max_repeats=settings.max_repeats,
            price_change_limit=settings.price_change_limit,
            plan=plans_delegations(settings),
        )
