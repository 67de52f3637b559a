"""Add up the tokens and cost of the provider-chain calls of one run.

Attach a :class:`UsageCallback` to a run (``config={"callbacks": [callback]}``) and read
:attr:`UsageCallback.totals` at the end. Only the chain's own calls are counted: they
are recognised by the ``provider`` and ``cost_usd`` keys of their ``response_metadata``;
provider calls made inside the chain carry no callbacks, so nothing is counted twice.
"""

import threading
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, LLMResult


@dataclass(frozen=True)
class UsageTotals:
    """Totals over a run's chain calls.

    Attributes:
        input_tokens: Prompt tokens, cached ones included.
        output_tokens: Generated tokens.
        cost_usd: Total USD; None as soon as one call's price is unknown.
        calls: Number of chain calls.
        models: ``provider/model`` of the models that answered, in first-use order.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal | None = Decimal("0")
    calls: int = 0
    models: tuple[str, ...] = field(default=())

    def add(self, message: AIMessage) -> "UsageTotals":
        """These totals plus one chain answer (usage and ``response_metadata``)."""
        usage = message.usage_metadata or {"input_tokens": 0, "output_tokens": 0}
        metadata = message.response_metadata
        cost = metadata.get("cost_usd")
        total = None if self.cost_usd is None or cost is None else self.cost_usd + Decimal(cost)
        model = f"{metadata['provider']}/{metadata.get('model_name')}"
        return replace(
            self,
            input_tokens=self.input_tokens + usage["input_tokens"],
            output_tokens=self.output_tokens + usage["output_tokens"],
            cost_usd=total,
            calls=self.calls + 1,
            models=self.models if model in self.models else (*self.models, model),
        )


class UsageCallback(BaseCallbackHandler):
    """Callback handler aggregating the provider chain's calls (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals = UsageTotals()

    @property
    def totals(self) -> UsageTotals:
        """The totals so far."""
        with self._lock:
            return self._totals

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        """Add the chain answers of ``response``; other models' answers are ignored."""
        for generations in response.generations:
            for generation in generations:
                message = generation.message if isinstance(generation, ChatGeneration) else None
                if isinstance(message, AIMessage) and _is_chain_answer(message):
                    with self._lock:
                        self._totals = self._totals.add(message)


def _is_chain_answer(message: AIMessage) -> bool:
    metadata = message.response_metadata
    return "provider" in metadata and "cost_usd" in metadata
