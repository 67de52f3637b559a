"""The model-call ledger: one row per model call attempt through the provider chain.

The chain builds a :class:`~aimesh.llm.attempt.ModelAttempt` as each attempt ends (success
or failure) and dispatches it; the run's :class:`~aimesh.graphs.events.EventRecorder` hands
it, with the agent whose call it was, to whoever keeps the run (the budgeted-run service),
who writes it here with the run's tenant, network, task, API key and user. Rows are only
ever inserted (the migration's trigger refuses UPDATE). The figures of ``/stats/cost``,
``/stats/usage`` and the measured history of ``/stats/models`` are aggregates of these rows.

Money is exact: ``cost_usd`` is a Decimal stored as a decimal string, None when the price is
unknown (never 0 for unknown; the local model costs exactly 0), and sums are Decimal sums.
"""

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from statistics import fmean
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    case,
    func,
    insert,
    literal_column,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from aimesh.errors import LedgerPayloadError
from aimesh.llm.attempt import ModelAttempt
from aimesh.llm.route import link_key
from aimesh.store.batch import GroupCommit
from aimesh.store.tables import LedgerEntry

SOURCE = "model_ledger: one row per model call attempt"
"""Where the ledger's figures come from (stated by every statistic built on them)."""

Connection = AsyncSession | AsyncConnection
_BOUNDED = ("model_requested", "model_used", "price_source", "agent", "tool")
"""String columns of a row whose values come from outside the ledger, with a length limit."""


def _length(column: str) -> int:
    """The maximum length of a string column of the ledger table."""
    length = getattr(LedgerEntry.__table__.c[column].type, "length", None)
    if not isinstance(length, int):
        raise TypeError(f"model_ledger.{column} is not a bounded string column")
    return length


@dataclass(frozen=True)
class RunContext:
    """Whom a run's model calls are for (None = not known, e.g. outside a task).

    Attributes:
        tenant: The MSP the run is for.
        network_id: Its network.
        task_id: Its task.
        key_id: The API key that submitted it.
        user_id: The user of that key.
    """

    tenant: str | None = None
    network_id: str | None = None
    task_id: str | None = None
    key_id: str | None = None
    user_id: str | None = None


def ledger_row(
    attempt: ModelAttempt,
    context: RunContext,
    *,
    agent: str | None = None,
    tool: str | None = None,
) -> dict[str, Any]:
    """The ledger row (column values) of one attempt in its run's context.

    Args:
        attempt: The attempt, as the chain built it.
        context: Tenant, network, task, key and user of the run.
        agent: The agent whose model call it was.
        tool: The tool the call was made for, when known.

    Raises:
        LedgerPayloadError: A model name, price source, ``agent`` or ``tool`` is longer
            than its column; the message names each.
    """
    row = {**attempt.model_dump(), **vars(context), "agent": agent, "tool": tool}
    too_long = [
        f"{name}: longer than {_length(name)} characters: {row[name]!r}"
        for name in _BOUNDED
        if row[name] is not None and len(row[name]) > _length(name)
    ]
    if too_long:
        raise LedgerPayloadError(f"bad ledger row: {'; '.join(too_long)}")
    return row


class Ledger:
    """Appends ledger rows durably, with group commit.

    Each :meth:`record` returns once its row is committed; rows recorded while a commit is
    running share the next transaction (:class:`~aimesh.store.batch.GroupCommit`). A row is
    validated whole before anything is written.

    Args:
        engine: The database.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._rows: GroupCommit[dict[str, Any], None] = GroupCommit(engine, _insert)

    async def record(
        self,
        attempt: ModelAttempt,
        context: RunContext,
        *,
        agent: str | None = None,
        tool: str | None = None,
    ) -> None:
        """Append the row :func:`ledger_row` makes of the arguments; returns once committed.

        Raises:
            LedgerPayloadError: A value is longer than its column (nothing is written).
            SQLAlchemyError: The row could not be written (e.g. its id exists already).
        """
        await self._rows.submit(ledger_row(attempt, context, agent=agent, tool=tool))


async def _insert(connection: AsyncConnection, rows: Sequence[dict[str, Any]]) -> list[None]:
    await connection.execute(insert(LedgerEntry), list(rows))
    return [None] * len(rows)


# --- queries -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerFilter:
    """Which rows a query covers: a tenant's (None = every tenant's), ``since <= at < until``.

    ``at`` is an attempt's start time; None bounds are open.
    """

    tenant: str | None
    since: datetime | None = None
    until: datetime | None = None

    def where(self) -> list[ColumnElement[bool]]:
        """The SQL conditions of this filter."""
        conditions: list[ColumnElement[bool]] = []
        if self.tenant is not None:
            conditions.append(LedgerEntry.tenant == self.tenant)
        if self.since is not None:
            conditions.append(LedgerEntry.at >= self.since)
        if self.until is not None:
            conditions.append(LedgerEntry.at < self.until)
        return conditions


UNKNOWN = "unknown"
"""Group key of rows without a user or network."""


def _billed() -> ColumnElement[Any]:
    """The cost a row counts for (SQL): ``'0'`` or its ``cost_usd`` (NULL = unknown).

    A failed attempt with no tokens reported cost nothing; any other row its recorded cost.
    """
    nothing_billed = and_(
        LedgerEntry.status == "error",
        LedgerEntry.input_tokens.is_(None),
        LedgerEntry.output_tokens.is_(None),
    )
    # inline '0', not a bound parameter: the expression is grouped by, and PostgreSQL
    # matches GROUP BY expressions by their text
    return case((nothing_billed, literal_column("'0'", String)), else_=LedgerEntry.cost_usd)


@dataclass
class CostTotals:
    """Spend over a period (USD, exact), from the ledger.

    Attributes:
        total_usd: Sum of every call of known cost.
        calls: Calls (attempts) in the period.
        calls_with_unknown_cost: Calls whose price is unknown: left out of every sum,
            never counted as 0.
        per_model: USD per ``provider/model`` (the model requested), known costs only.
        unknown_per_model: Calls of unknown cost per ``provider/model``.
        per_user: USD per user id (``unknown`` for rows without one).
        per_network: USD per network id (``unknown`` for rows without one).
    """

    total_usd: Decimal = Decimal(0)
    calls: int = 0
    calls_with_unknown_cost: int = 0
    per_model: dict[str, Decimal] = field(default_factory=dict)
    unknown_per_model: dict[str, int] = field(default_factory=dict)
    per_user: dict[str, Decimal] = field(default_factory=dict)
    per_network: dict[str, Decimal] = field(default_factory=dict)


async def cost_totals(connection: Connection, rows: LedgerFilter) -> CostTotals:
    """Spend over ``rows``: total and per model, user and network (USD, exact).

    One ``GROUP BY`` query (model, user, network, cost); the decimal strings of each group
    are summed as Decimals here, since SQLite has no exact decimal arithmetic. A failed
    attempt counts 0 USD unless the provider reported tokens for it (then its recorded
    cost, which may be unknown).

    Args:
        connection: A session or connection of the database.
        rows: Tenant and time range.

    Returns:
        The totals; empty when the period has no rows.
    """
    billed = _billed().label("billed")
    columns = (LedgerEntry.provider, LedgerEntry.model_requested, LedgerEntry.user_id)
    query = (
        select(*columns, LedgerEntry.network_id, billed, func.count().label("n"))
        .where(*rows.where())
        .group_by(*columns, LedgerEntry.network_id, billed)
    )
    totals = CostTotals()
    sums: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    unknown: dict[str, int] = defaultdict(int)
    for provider, model, user, network, cost, n in await connection.execute(query):
        key = link_key(provider, model)
        totals.calls += n
        if cost is None:
            unknown[key] += n
            continue
        usd = Decimal(cost) * n
        for group, name in (("model", key), ("user", user), ("network", network)):
            sums[group][name or UNKNOWN] += usd
    totals.calls_with_unknown_cost = sum(unknown.values())
    totals.unknown_per_model = dict(unknown)
    totals.per_model = dict(sums["model"])
    totals.per_user = dict(sums["user"])
    totals.per_network = dict(sums["network"])
    totals.total_usd = sum(totals.per_model.values(), Decimal(0))
    return totals


class TokenCounts(BaseModel):
    """Tokens as providers reported them, summed; None = no call in the group reported it.

    The ``tokens`` of ``/stats/usage`` as well.
    """

    model_config = ConfigDict(frozen=True)

    input: int | None
    output: int | None
    cached: int | None
    reasoning: int | None


@dataclass(frozen=True)
class ModelUsage:
    """Calls of one ``provider/model`` (the model requested) over a period.

    Attributes:
        calls: Attempts.
        failures: Attempts that failed.
        mean_latency_s: Mean seconds per attempt.
        tokens: Reported tokens, summed.
    """

    calls: int
    failures: int
    mean_latency_s: float
    tokens: TokenCounts


def _per_model(rows: LedgerFilter, *columns: Any) -> Select[Any]:
    """Calls, failures, mean latency, then ``columns``, per provider and model requested."""
    return (
        select(
            LedgerEntry.provider,
            LedgerEntry.model_requested,
            func.count(),
            _failed(),
            func.avg(LedgerEntry.latency_s),
            *columns,
        )
        .where(*rows.where())
        .group_by(LedgerEntry.provider, LedgerEntry.model_requested)
        .order_by(LedgerEntry.provider, LedgerEntry.model_requested)
    )


def _failed() -> ColumnElement[int]:
    return func.sum(case((LedgerEntry.status == "error", 1), else_=0))


_TOKEN_SUMS = (
    func.sum(LedgerEntry.input_tokens),
    func.sum(LedgerEntry.output_tokens),
    func.sum(LedgerEntry.cached_tokens),
    func.sum(LedgerEntry.reasoning_tokens),
)


def _tokens(sums: Sequence[Any]) -> TokenCounts:
    input_, output, cached, reasoning = (None if s is None else int(s) for s in sums)
    return TokenCounts(input=input_, output=output, cached=cached, reasoning=reasoning)


async def usage_per_model(connection: Connection, rows: LedgerFilter) -> dict[str, ModelUsage]:
    """Calls, failures, mean latency and tokens per ``provider/model`` over ``rows``.

    One ``GROUP BY`` query with SQL aggregates.

    Args:
        connection: A session or connection of the database.
        rows: Tenant and time range.

    Returns:
        ``{"provider/model": usage}``, sorted by key; empty when the period has no rows.
    """
    query = _per_model(rows, *_TOKEN_SUMS)
    return {
        link_key(provider, model): ModelUsage(
            calls=int(calls),
            failures=int(failures),
            mean_latency_s=float(latency),
            tokens=_tokens(tokens),
        )
        for provider, model, calls, failures, latency, *tokens in await connection.execute(query)
    }


def total_tokens(models: Mapping[str, ModelUsage]) -> TokenCounts:
    """The tokens of several models summed (None where none of them reported that count)."""

    def total(name: str) -> int | None:
        counts = [getattr(m.tokens, name) for m in models.values()]
        known = [c for c in counts if c is not None]
        return sum(known) if known else None

    return TokenCounts(
        input=total("input"),
        output=total("output"),
        cached=total("cached"),
        reasoning=total("reasoning"),
    )


@dataclass(frozen=True)
class ModelHistory:
    """Measured history of one ``provider/model`` (the model requested).

    Attributes:
        provider: Chain provider name.
        model: The model requested.
        calls: Attempts.
        failures: Attempts that failed.
        success_rate: ``1 - failures / calls`` (0..1).
        median_latency_s: Median seconds per attempt.
        mean_latency_s: Mean seconds per attempt.
    """

    provider: str
    model: str
    calls: int
    failures: int
    success_rate: float
    median_latency_s: float
    mean_latency_s: float


async def model_history(connection: Connection, rows: LedgerFilter) -> dict[str, ModelHistory]:
    """Calls, failures, success rate, median and mean latency per ``provider/model``.

    One ``GROUP BY`` query, then one ordered ``LIMIT``/``OFFSET`` query per model for its
    median (portable: SQLite has no percentile function).

    Args:
        connection: A session or connection of the database.
        rows: Tenant (None = every tenant's calls) and time range.

    Returns:
        ``{"provider/model": history}`` of the models with at least one call.
    """
    groups = _per_model(rows)
    history: dict[str, ModelHistory] = {}
    for provider, model, calls, failures, mean in (await connection.execute(groups)).all():
        of_model = (LedgerEntry.provider == provider, LedgerEntry.model_requested == model)
        middle = (
            select(LedgerEntry.latency_s)
            .where(*rows.where(), *of_model)
            .order_by(LedgerEntry.latency_s)
            .offset((calls - 1) // 2)
            .limit(2 - calls % 2)
        )
        median = fmean((await connection.execute(middle)).scalars().all())
        history[link_key(provider, model)] = ModelHistory(
            provider=provider,
            model=model,
            calls=int(calls),
            failures=int(failures),
            success_rate=1 - int(failures) / int(calls),
            median_latency_s=median,
            mean_latency_s=float(mean),
        )
    return history
