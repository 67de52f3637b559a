"""The worst case of a run: how many model calls it can make and what each can cost.

Worst case of a run (:class:`RunBound`), every figure from the code and genai-prices:

- Model calls per run <= ``(C + 1) * D + 2``, D = the run's delegation cap (the network's
  ``max_iterations``, which the runner passes as ``max_delegations``), C = the model calls one
  delegation may make (``calls_per_delegation``, which the service layer passes in: its
  specialists' :data:`aimesh.agents.specialist.MAX_MODEL_CALLS`): the
  loop guard (:func:`aimesh.graphs.guards.check_delegations`) refuses a coordinator step
  that would bring the question's delegations over D, so at most D coordinator steps
  delegate, and then one more step answers (or is refused), and the grounding check may
  ask once for a rewrite (:meth:`aimesh.graphs.coordinator.Coordinator.grounded`): D + 2
  coordinator calls. Each delegation runs one specialist, which makes at most C calls (its
  ``SpecialistLoop``).
- One call costs at most the sum, over the links of its route, of ``max_input_tokens`` at
  the link's input price plus the output cap at its output price (genai-prices, tiers
  included). A sum, not the dearest link: within one call the chain may try every link,
  and an attempt that fails after the provider took the prompt (a timeout, a stream cut
  mid-answer) can still be billed. This assumes that the chain tries each link once per
  call, retrying one only after a 429/503 with ``Retry-After`` (not billed), and that it
  refuses prompts over ``max_input_tokens``. The output cap is ``max_output_tokens`` or a
  custom agent's larger ``max_tokens``; reasoning tokens count within it.
- A link with no known price makes the worst case unknown: such a run cannot be reserved
  under a budget and counts as exceeding it (refused, or downgraded to priced links).
"""

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from langchain_core.messages.ai import UsageMetadata

from aimesh.config import Settings
from aimesh.llm.cost import price_usd

COORDINATOR_EXTRA_CALLS = 2
"""Coordinator calls beyond its delegating steps: the answer (or the step the loop guard
refuses) and one grounding rewrite."""


def max_model_calls(max_delegations: int, calls_per_delegation: int) -> int:
    """Most provider-chain calls one run can make (the module docstring derives it).

    Args:
        max_delegations: The run's delegation cap.
        calls_per_delegation: Model calls one delegation's specialist may make.
    """
    return (calls_per_delegation + 1) * max_delegations + COORDINATOR_EXTRA_CALLS


@functools.lru_cache(maxsize=256)
def call_usd(link: str, input_tokens: int, output_tokens: int) -> Decimal | None:
    """Price of one call on ``link`` (``provider/model``) with these tokens; None if unknown."""
    provider, _, model = link.partition("/")
    usage = UsageMetadata(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=input_tokens + output_tokens,
    )
    return price_usd(provider, model, usage)


@dataclass(frozen=True)
class RunBound:
    """What one run can spend at most: its model calls and their token caps.

    Attributes:
        model_calls: Provider-chain calls per run, at most.
        input_tokens: Prompt tokens per call, at most (``max_input_tokens``).
        output_tokens: Generated tokens per call, at most, reasoning included.
    """

    model_calls: int
    input_tokens: int
    output_tokens: int

    @classmethod
    def of(
        cls,
        settings: Settings,
        max_delegations: int,
        calls_per_delegation: int,
        max_tokens: Iterable[int | None] = (),
    ) -> "RunBound":
        """The bound of a run with these caps and its agents' ``max_tokens``.

        Args:
            settings: Token caps per call (``max_input_tokens``, ``max_output_tokens``).
            max_delegations: The run's delegation cap.
            calls_per_delegation: Model calls one delegation's specialist may make.
            max_tokens: The agents' own output caps (None: the settings').
        """
        outputs = [settings.max_output_tokens, *(n for n in max_tokens if n)]
        calls = max_model_calls(max_delegations, calls_per_delegation)
        return cls(calls, settings.max_input_tokens, max(outputs))

    @classmethod
    def one_call(cls, settings: Settings, max_tokens: int | None = None) -> "RunBound":
        """The bound of one chain call (``/generate/stream``) asking for ``max_tokens``.

        The output cap is the larger of the request's and the settings' (an integration
        may ignore the request's).
        """
        outputs = max(settings.max_output_tokens, max_tokens or 0)
        return cls(1, settings.max_input_tokens, outputs)

    def run_usd(self, links: Sequence[str]) -> Decimal | None:
        """Worst-case USD of a run on the route ``links``; None when a price is unknown."""
        total = Decimal(0)
        for link in links:
            price = call_usd(link, self.input_tokens, self.output_tokens)
            if price is None:
                return None
            total += price
        return self.model_calls * total

    def unpriced(self, links: Sequence[str]) -> list[str]:
        """The links genai-prices has no price for."""
        tokens = (self.input_tokens, self.output_tokens)
        return [link for link in links if call_usd(link, *tokens) is None]
