"""Creating budgets and reading their current windows (the ``/budgets`` routes)."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from aimesh.billing.amounts import check_limit, to_usd, window_start
from aimesh.errors import InvalidInputError, ScopeNotFoundError
from aimesh.store.tables import ApiKey, Budget, BudgetWindow, Network, utcnow

BudgetScope = Literal["tenant", "network", "key"]
BudgetPeriod = Literal["day", "month"]
OnLimit = Literal["downgrade", "refuse"]
SCOPES: tuple[BudgetScope, ...] = ("tenant", "network", "key")
PERIODS: tuple[BudgetPeriod, ...] = ("day", "month")
ON_LIMIT: tuple[OnLimit, ...] = ("downgrade", "refuse")


def _choice(field_name: str, value: str, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise InvalidInputError(field_name, f"unknown value {value!r}", ", ".join(allowed))
    return value


async def create_budget(
    session: AsyncSession,
    tenant: str,
    *,
    scope: str,
    scope_id: str,
    period: str,
    limit_usd: Decimal,
    on_limit: str = "refuse",
    created_by: str | None = None,
) -> Budget:
    """Add a budget to the session (the caller commits).

    Args:
        session: Database session.
        tenant: The tenant it belongs to.
        scope: ``tenant``, ``network`` or ``key``.
        scope_id: The tenant itself, one of its network ids or one of its API key ids.
        period: ``day`` or ``month`` (UTC calendar).
        limit_usd: USD per period.
        on_limit: ``downgrade`` (cheaper models) or ``refuse`` at the limit.
        created_by: Key id of the creator.

    Raises:
        InvalidInputError: A bad scope, period, limit or on_limit.
        ScopeNotFoundError: A ``scope_id`` that is not the tenant, nor a network or key of
            it (another tenant's ids included).

    Two budgets of one scope and period violate a unique index on commit
    (``IntegrityError``).
    """
    _choice("scope", scope, SCOPES)
    _choice("period", period, PERIODS)
    _choice("on_limit", on_limit, ON_LIMIT)
    check_limit(limit_usd)
    await _check_scope_id(session, tenant, scope, scope_id)
    budget = Budget(
        tenant=tenant,
        scope=scope,
        scope_id=scope_id,
        period=period,
        limit_usd=limit_usd,
        on_limit=on_limit,
        created_by=created_by,
    )
    session.add(budget)
    return budget


async def _check_scope_id(session: AsyncSession, tenant: str, scope: str, scope_id: str) -> None:
    if scope == "tenant":
        found = scope_id == tenant
    else:
        table = Network if scope == "network" else ApiKey
        owner = await session.scalar(select(table.tenant).where(table.id == scope_id))
        found = owner == tenant
    if not found:
        allowed = {
            "tenant": f"your tenant's name, {tenant!r}",
            "network": "the id of one of your networks",
            "key": "the id of one of your API keys",
        }[scope]
        raise ScopeNotFoundError("scope_id", f"no {scope} {scope_id!r} in your tenant", allowed)


@dataclass(frozen=True)
class BudgetUsage:
    """A budget and its current window.

    Attributes:
        budget: The budget.
        window_start: Start of the current UTC day or month.
        spent_usd: Spend reconciled in the window (USD).
        reserved_usd: Worst cases reserved by runs still going (USD).
    """

    budget: Budget
    window_start: datetime
    spent_usd: Decimal
    reserved_usd: Decimal


async def current_usage(
    session: AsyncSession, budgets: Sequence[Budget], now: datetime | None = None
) -> list[BudgetUsage]:
    """Each budget with the spend and reservations of its current window (one query)."""
    now = now or utcnow()
    starts = {b.id: window_start(b.period, now) for b in budgets}
    query = select(BudgetWindow).where(
        BudgetWindow.budget_id.in_(starts),
        BudgetWindow.window_start.in_(set(starts.values())),
    )
    windows = {(w.budget_id, w.window_start): w for w in await session.scalars(query)}
    usage = []
    for budget in budgets:
        window = windows.get((budget.id, starts[budget.id]))
        spent, reserved = (window.spent_nusd, window.reserved_nusd) if window else (0, 0)
        usage.append(BudgetUsage(budget, starts[budget.id], to_usd(spent), to_usd(reserved)))
    return usage
