"""Choose the chain of models for a task from its ``model_selection``.

:func:`choose_route` is a pure function of the task's selection, the configured links
(:mod:`aimesh.llm.catalog`: capabilities, prices, chain order) and each link's measured
history (from the cost ledger). Its rules, in order:

1. Only configured links. Hard requirements filter: function calling always (every aimesh
   run calls tools: the coordinator delegates to its specialists by tool calls, so
   ``requires_function_calling: false`` cannot relax it), vision when ``requires_vision``.
   A link known to lack a required capability is dropped; one whose capability is unknown
   (a model outside the catalog) stays, after the links known to have it. No link left:
   :class:`~aimesh.errors.NoProviderError` naming the requirement.
2. Under budget pressure, cheapest first (the run downgrades to cheaper models).
3. Fitness: links whose tier is at least the task's complexity first, then links of unknown
   tier, then links below it.
4. When ``cost_sensitive`` (and not already by rule 2): cheapest first.
5. Measured success rate, highest first, compared to the nearest 5 percentage points (so
   that a rare transient failure does not reorder the chain: 98% and 100% tie, 90% does
   not); then median latency, lowest first. A link without history is neutral, not zero:
   nothing counts against it (it ranks with the links that have not been failing) and its
   latency counts as the median of the measured candidates' median latencies.
6. The configured chain order breaks every remaining tie.
7. The local model, when configured and not excluded by a requirement, always comes last:
   the offline safety net.

Prices compare as a blended USD price per million tokens, 3 input tokens to 1 output token
(the blend Artificial Analysis uses, https://artificialanalysis.ai/methodology); an unknown
price sorts after every known one.

Without a selection (the task gave none) and without budget pressure the route is the
default chain, unchanged: each configured provider's first model, in settings order.
"""

import math
import statistics
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from aimesh.errors import NoProviderError
from aimesh.llm.catalog import TIERS, ModelInfo, Prices, Tier
from aimesh.llm.cost import LOCAL_PROVIDER

INPUT_TOKENS_PER_OUTPUT_TOKEN = 3
"""Blend of input and output prices, as Artificial Analysis blends them (3:1)."""
SUCCESS_RATE_BANDS = 20
"""Success rates compare rounded to 1/20 (5 percentage points): our choice, see rule 5."""
PriceKey = tuple[bool, Decimal]
"""Sort key of a price: (unknown, USD per million tokens)."""


class ModelSelection(BaseModel):
    """What a task needs from its models (the task's ``model_selection``).

    Attributes:
        task_complexity: ``LOW``, ``MEDIUM`` or ``HIGH``: models whose tier is at least this
            come first.
        requires_vision: Drop the models known to lack image input (those not known
            either way stay, after the others).
        requires_function_calling: Accepted for API compatibility; aimesh runs always need
            function calling, so ``false`` does not relax the requirement.
        cost_sensitive: Among models fit for the complexity, cheapest first.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    task_complexity: Tier = Field(
        default="MEDIUM", description="Models whose tier is at least this come first."
    )
    requires_vision: StrictBool = Field(
        default=False, description="Use only models that accept images."
    )
    requires_function_calling: StrictBool = Field(
        default=True,
        description="Every aimesh run calls tools (the coordinator delegates by tool calls), "
        "so function calling is always required; false is accepted and changes nothing.",
    )
    cost_sensitive: StrictBool = Field(
        default=False, description="Among models fit for the complexity, cheapest first."
    )


class History(Protocol):
    """Measured calls of one link (as :class:`aimesh.billing.ledger.ModelHistory` has them)."""

    @property
    def calls(self) -> int:
        """Attempts, failed ones included."""

    @property
    def failures(self) -> int:
        """Attempts that failed."""

    @property
    def median_latency_s(self) -> float | None:
        """Median seconds per attempt; None when not measured."""


def choose_route(
    selection: ModelSelection | None,
    links: Sequence[ModelInfo],
    history: Mapping[str, History],
    budget_pressure: bool = False,
) -> list[str]:
    """The links a task may use, in the order to try them (rules in the module docstring).

    Args:
        selection: The task's ``model_selection``; None = the default chain.
        links: Every link (:func:`aimesh.llm.catalog.model_links`); unconfigured ones are
            skipped.
        history: Measured history per link key (``provider/model``); a missing key = none.
        budget_pressure: The task's budget is near its limit: cheapest links first.

    Returns:
        Link keys (``provider/model``), at least one.

    Raises:
        NoProviderError: No configured link meets a hard requirement; the message names
            the requirement and the configured links.
    """
    usable = [link for link in links if link.configured]
    if selection is None and not budget_pressure:
        route = [link.key for link in usable if link.default]
        if not route:
            raise NoProviderError("no model is configured; " + _configure_hint())
        return route
    wanted = selection or ModelSelection()
    candidates = _meeting_requirements(wanted, usable)
    remote = [link for link in candidates if link.provider != LOCAL_PROVIDER]
    local = [link for link in candidates if link.provider == LOCAL_PROVIDER]
    neutral_latency = _neutral_latency(remote, history)
    any_price = (False, Decimal(0))  # the price key when price does not count

    def rank(link: ModelInfo) -> tuple[bool, PriceKey, int, PriceKey, int, float, int]:
        measured = history.get(link.key)
        latency = measured.median_latency_s if measured else None
        price = _price_rank(link.prices)
        return (
            _unverified(link, wanted),
            price if budget_pressure else any_price,
            _fitness(link.capabilities.tier, wanted.task_complexity),
            price if wanted.cost_sensitive and not budget_pressure else any_price,
            -_success_band(measured),
            neutral_latency if latency is None else latency,
            link.position,
        )

    return [link.key for link in sorted(remote, key=rank) + local]


def _requirements(selection: ModelSelection) -> dict[str, str]:
    """Required capabilities (:class:`~aimesh.llm.catalog.Capabilities` fields), each with why.

    Function calling is always required: every aimesh run calls tools.
    """
    required = {"function_calling": "every aimesh run calls tools"}
    if selection.requires_vision:
        required["vision"] = "model_selection.requires_vision is true"
    return required


def _meeting_requirements(selection: ModelSelection, links: Sequence[ModelInfo]) -> list[ModelInfo]:
    """The links not known to lack a required capability, in their order.

    Raises:
        NoProviderError: None is left; names the first requirement no link meets.
    """
    if not links:
        raise NoProviderError("no model is configured; " + _configure_hint())
    required = _requirements(selection)
    for capability, why in required.items():
        if all(getattr(link.capabilities, capability) is False for link in links):
            raise NoProviderError(
                f"no configured model supports {capability.replace('_', ' ')} ({why}); "
                f"configured: {', '.join(link.key for link in links)}; configure a provider "
                f"with such a model: {_configure_hint()}"
            )
    return [
        link
        for link in links
        if all(getattr(link.capabilities, name) is not False for name in required)
    ]


def _configure_hint() -> str:
    return (
        "set ANTHROPIC_API_KEY, OPENAI_API_KEY (or AIMESH_OPENAI_BASE_URL) or GOOGLE_API_KEY, "
        "or AIMESH_PROVIDERS to include them"
    )


def _unverified(link: ModelInfo, selection: ModelSelection) -> bool:
    """Whether a required capability of ``link`` is unknown."""
    return any(getattr(link.capabilities, name) is None for name in _requirements(selection))


def _fitness(tier: Tier | None, complexity: Tier) -> int:
    """0: fit for the complexity, 1: unknown tier, 2: below it."""
    if tier is None:
        return 1
    return 0 if TIERS.index(tier) >= TIERS.index(complexity) else 2


def blended_price(prices: Prices) -> Decimal | None:
    """USD per million tokens at 3 input tokens per output token; None when either is unknown.

    Example: GPT-4.1 mini at $0.40 input and $1.60 output -> (3 x 0.40 + 1.60) / 4 = $0.70.
    """
    if prices.input is None or prices.output is None:
        return None
    weight = INPUT_TOKENS_PER_OUTPUT_TOKEN
    return (weight * prices.input + prices.output) / (weight + 1)


def _price_rank(prices: Prices) -> PriceKey:
    """Sort key: known prices first, cheapest first."""
    blended = blended_price(prices)
    return (blended is None, blended if blended is not None else Decimal(0))


def _success_band(history: History | None) -> int:
    """The success rate in twentieths, rounded half up (20 = 100%); no attempt yet: 20."""
    if history is None or history.calls == 0:
        return SUCCESS_RATE_BANDS
    return math.floor((1 - history.failures / history.calls) * SUCCESS_RATE_BANDS + 0.5)


def _neutral_latency(links: Sequence[ModelInfo], history: Mapping[str, History]) -> float:
    """The median of the median latencies measured for ``links`` (seconds).

    0 when none is measured: every link then gets the same.
    """
    latencies = [
        latency
        for link in links
        if link.key in history and (latency := history[link.key].median_latency_s) is not None
    ]
    return statistics.median(latencies) if latencies else 0.0
