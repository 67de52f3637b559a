"""Cost, usage and model statistics of the caller's tenant.

Cost and usage are SQL aggregates of the model-call ledger, which has one row per provider
attempt made for a task (failed ones too) with its provider, model, tokens, latency and cost
(USD from genai-prices; the local model costs 0; null = unknown price), so these figures are
measurements, not estimates. The model statistics add each chain link's capabilities and
prices (:mod:`aimesh.llm.catalog`) to its measured history.
"""

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from aimesh.api.deps import Reader, ServicesDep, SessionDep
from aimesh.api.schemas import DateTime
from aimesh.billing import ledger
from aimesh.llm.catalog import Capabilities, Prices

router = APIRouter(prefix="/stats", tags=["stats"])
Since = Annotated[DateTime | None, Query(description="From this time (UTC), inclusive.")]
Until = Annotated[DateTime | None, Query(description="Up to this time (UTC), exclusive.")]
SOURCE = ledger.SOURCE


class StatsPeriod(BaseModel):
    """The time range the figures cover (null = unbounded)."""

    since: datetime | None
    until: datetime | None


class CostStats(BaseModel):
    """Spend in USD (exact decimal strings): total and per model, user and network.

    A call is one provider attempt; a failed attempt costs 0 USD unless the provider
    reported tokens for it. Calls of unknown price are counted apart, never as 0 USD.
    """

    total_cost_usd: Decimal = Field(description="USD of every call of known cost.")
    total_calls: int = Field(description="Calls (provider attempts) in the period.")
    calls_with_unknown_cost: int = Field(
        description="Calls whose price is unknown (genai-prices lacks the model, or no usage "
        "was reported): left out of every USD figure."
    )
    per_model: dict[str, Decimal] = Field(
        description="USD per provider/model (the model requested), calls of known cost."
    )
    unknown_cost_per_model: dict[str, int] = Field(
        description="Calls of unknown cost per provider/model (models that have any)."
    )
    per_user: dict[str, Decimal] = Field(description="USD per user id of the task's API key.")
    per_network: dict[str, Decimal] = Field(description="USD per network id.")
    time_period: StatsPeriod
    source: str = SOURCE


class UsageStats(BaseModel):
    """Model calls (provider attempts): totals; calls, failures, latency and tokens per model.

    Per model means per ``provider/model`` (the model requested); latency in seconds.
    """

    total_calls: int
    successful_calls: int
    failed_calls: int
    per_model: dict[str, int] = Field(description="Calls per provider/model.")
    failed_per_model: dict[str, int] = Field(description="Failed calls per provider/model.")
    average_latency_s: dict[str, float] = Field(
        description="Mean seconds per call, per provider/model (to the millisecond)."
    )
    tokens: ledger.TokenCounts
    tokens_per_model: dict[str, ledger.TokenCounts]
    time_period: StatsPeriod
    source: str = SOURCE


class MeasuredHistory(BaseModel):
    """A model's calls (provider attempts) for the caller's tenant, all time, from the ledger."""

    calls: int
    failures: int
    success_rate: float | None = Field(description="Share of calls that succeeded (0..1).")
    mean_latency_s: float | None = Field(description="Mean seconds per call.")
    median_latency_s: float | None = Field(description="Median seconds per call.")
    source: str = SOURCE


class ModelStats(BaseModel):
    """One link of the provider chain: place, capabilities, prices and measured history."""

    provider: str
    model: str
    position: int = Field(description="Place among the chain's links (settings order), from 1.")
    default: bool = Field(description="Used by the default chain (its provider's first model).")
    configured: bool = Field(description="Its provider is configured (key or base URL).")
    capabilities: Capabilities = Field(description="Null fields: not known for this model.")
    prices: Prices = Field(description="USD per million tokens; null = unknown price.")
    history: MeasuredHistory


@router.get("/cost")
async def cost_stats(
    caller: Reader, session: SessionDep, since: Since = None, until: Until = None
) -> CostStats:
    """Spend (USD) per model, user and network over the period, from the ledger."""
    totals = await ledger.cost_totals(session, ledger.LedgerFilter(caller.tenant, since, until))
    return CostStats(
        total_cost_usd=totals.total_usd,
        total_calls=totals.calls,
        calls_with_unknown_cost=totals.calls_with_unknown_cost,
        per_model=totals.per_model,
        unknown_cost_per_model=totals.unknown_per_model,
        per_user=totals.per_user,
        per_network=totals.per_network,
        time_period=StatsPeriod(since=since, until=until),
    )


@router.get("/usage")
async def usage_stats(
    caller: Reader, session: SessionDep, since: Since = None, until: Until = None
) -> UsageStats:
    """Model calls over the period: how many failed, latency and tokens per model (ledger)."""
    models = await ledger.usage_per_model(session, ledger.LedgerFilter(caller.tenant, since, until))
    calls = sum(m.calls for m in models.values())
    failed = sum(m.failures for m in models.values())
    return UsageStats(
        total_calls=calls,
        successful_calls=calls - failed,
        failed_calls=failed,
        per_model={key: m.calls for key, m in models.items()},
        failed_per_model={key: m.failures for key, m in models.items()},
        average_latency_s={key: round(m.mean_latency_s, 3) for key, m in models.items()},
        tokens=ledger.total_tokens(models),
        tokens_per_model={key: m.tokens for key, m in models.items()},
        time_period=StatsPeriod(since=since, until=until),
    )


@router.get("/models")
async def model_stats(
    caller: Reader, session: SessionDep, services: ServicesDep
) -> list[ModelStats]:
    """Every link of the chain, in settings order, with what is known and measured of it.

    Whether it is configured, its capabilities, its prices (genai-prices) and its measured
    history (the caller's tenant's ledger rows).
    """
    history = await ledger.model_history(session, ledger.LedgerFilter(caller.tenant))
    return [
        ModelStats(
            provider=link.provider,
            model=link.model,
            position=link.position,
            default=link.default,
            configured=link.configured,
            capabilities=link.capabilities,
            prices=link.prices,
            history=_measured(history.get(link.key)),
        )
        for link in services.links
    ]


def _measured(history: ledger.ModelHistory | None) -> MeasuredHistory:
    if history is None:
        return MeasuredHistory(
            calls=0, failures=0, success_rate=None, mean_latency_s=None, median_latency_s=None
        )
    return MeasuredHistory(
        calls=history.calls,
        failures=history.failures,
        success_rate=round(history.success_rate, 4),
        mean_latency_s=round(history.mean_latency_s, 3),
        median_latency_s=round(history.median_latency_s, 3),
    )
