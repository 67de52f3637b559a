"""Cost, usage and model statistics of the caller's tenant, computed from the audit log.

Every model call made for a task is audited with its provider, model, latency and cost
(USD from genai-prices; the local model costs 0; null = unknown price), so these figures
are measurements, not estimates.
"""

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from statistics import fmean
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from aimesh.api.deps import Reader, ServicesDep, SessionDep
from aimesh.api.schemas import DateTime
from aimesh.llm.gguf import GGUF_NAME
from aimesh.llm.providers import configured_providers
from aimesh.service.audit import AuditQuery
from aimesh.store.tables import AuditEntry

router = APIRouter(prefix="/stats", tags=["stats"])
Since = Annotated[DateTime | None, Query(description="From this time (UTC), inclusive.")]
Until = Annotated[DateTime | None, Query(description="Up to this time (UTC), exclusive.")]
SOURCE = "audit log of model calls made for tasks"


class Period(BaseModel):
    """The time range the figures cover (null = unbounded)."""

    since: datetime | None
    until: datetime | None


class CostStats(BaseModel):
    """Spend in USD: total and per model, user and network."""

    total_cost_usd: Decimal
    calls_with_unknown_cost: int = Field(description="Calls whose price genai-prices lacks.")
    per_model: dict[str, Decimal]
    per_user: dict[str, Decimal]
    per_network: dict[str, Decimal]
    time_period: Period
    source: str = SOURCE


class UsageStats(BaseModel):
    """Model calls: totals, failures, calls and mean latency (seconds) per model."""

    total_calls: int
    successful_calls: int
    failed_calls: int
    per_model: dict[str, int]
    average_latency_s: dict[str, float]
    time_period: Period
    source: str = SOURCE


class ModelStats(BaseModel):
    """One model of the provider chain: configuration and measured history."""

    provider: str
    model: str
    configured: bool
    position: int = Field(description="Place in the fallback chain, from 1.")
    calls: int
    failures: int
    success_rate: float | None
    average_latency_s: float | None


async def _model_calls(
    session: SessionDep, tenant: str, since: Any, until: Any
) -> list[AuditEntry]:
    query = AuditQuery(tenant=tenant, action="model.call", since=since, until=until)
    return list(await session.scalars(query.select()))


@router.get("/cost")
async def cost_stats(
    caller: Reader, session: SessionDep, since: Since = None, until: Until = None
) -> CostStats:
    """Spend (USD) per model, user and network over the period."""
    totals: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    unknown = 0
    for entry in await _model_calls(session, caller.tenant, since, until):
        if entry.result != "success":
            continue
        if entry.cost_usd is None:
            unknown += 1
            continue
        for group, key in (
            ("model", entry.resource_id),
            ("user", entry.user_id),
            ("network", entry.detail.get("network_id")),
        ):
            totals[group][key or "unknown"] += entry.cost_usd
    return CostStats(
        total_cost_usd=sum(totals["model"].values(), Decimal(0)),
        calls_with_unknown_cost=unknown,
        per_model=totals["model"],
        per_user=totals["user"],
        per_network=totals["network"],
        time_period=Period(since=since, until=until),
    )


def _grouped(
    entries: list[AuditEntry], key: Callable[[AuditEntry], str | None]
) -> dict[str, list[AuditEntry]]:
    groups: dict[str, list[AuditEntry]] = defaultdict(list)
    for entry in entries:
        groups[key(entry) or "unknown"].append(entry)
    return groups


def _model(entry: AuditEntry) -> str | None:
    return entry.resource_id


def _provider(entry: AuditEntry) -> str | None:
    return entry.detail.get("provider")


def _latency(entries: list[AuditEntry]) -> float | None:
    seconds = [e.detail["elapsed_s"] for e in entries if e.detail.get("elapsed_s") is not None]
    return round(fmean(seconds), 3) if seconds else None


@router.get("/usage")
async def usage_stats(
    caller: Reader, session: SessionDep, since: Since = None, until: Until = None
) -> UsageStats:
    """Model calls over the period: how many, how many failed, latency per model."""
    entries = await _model_calls(session, caller.tenant, since, until)
    groups = _grouped(entries, _model)
    failed = sum(e.result != "success" for e in entries)
    latency = {model: _latency(rows) for model, rows in groups.items()}
    return UsageStats(
        total_calls=len(entries),
        successful_calls=len(entries) - failed,
        failed_calls=failed,
        per_model={model: len(rows) for model, rows in groups.items()},
        average_latency_s={m: s for m, s in latency.items() if s is not None},
        time_period=Period(since=since, until=until),
    )


@router.get("/models")
async def model_stats(
    caller: Reader, session: SessionDep, services: ServicesDep
) -> list[ModelStats]:
    """The chain's models in fallback order, whether configured, and their measured history."""
    settings = services.settings
    configured = set(configured_providers(settings))
    by_provider = _grouped(await _model_calls(session, caller.tenant, None, None), _provider)
    models = {
        "anthropic": settings.anthropic_model,
        "openai": settings.openai_model,
        "google": settings.google_model,
        "local": (settings.gguf_path or Path(GGUF_NAME)).stem,  # as the local provider names it
    }
    out = []
    for position, provider in enumerate(settings.providers, start=1):
        rows = by_provider.get(provider, [])
        failures = sum(e.result != "success" for e in rows)
        out.append(
            ModelStats(
                provider=provider,
                model=models[provider],
                configured=provider in configured,
                position=position,
                calls=len(rows),
                failures=failures,
                success_rate=round(1 - failures / len(rows), 4) if rows else None,
                average_latency_s=_latency(rows),
            )
        )
    return out
