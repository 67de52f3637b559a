"""The model-call ledger: one row per model call attempt through the provider chain.

The chain dispatches a ``model_attempt`` custom event as each attempt ends (success or
failure); the run's :class:`~aimesh.graphs.events.EventRecorder` hands it, with the agent
whose call it was, to whoever keeps the run (the task runner), who writes it here with the
run's tenant, network, task, API key and user. Rows are only ever inserted (the migration's
trigger refuses UPDATE). The figures of ``/stats/cost``, ``/stats/usage`` and the measured
history of ``/stats/models`` are aggregates of these rows.

Money is exact: ``cost_usd`` is a Decimal stored as a decimal string, None when the price is
unknown (never 0 for unknown; the local model costs exactly 0), and sums are Decimal sums.
"""

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from statistics import fmean
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)
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

from aimesh.config import ProviderName
from aimesh.llm.route import link_key
from aimesh.store.batch import GroupCommit
from aimesh.store.tables import LedgerEntry

SOURCE = "model_ledger: one row per model call attempt"
"""Where the ledger's figures come from (stated by every statistic built on them)."""

Connection = AsyncSession | AsyncConnection


def _length(column: str) -> int:
    """The maximum length of a string column of the ledger table."""
    length = getattr(LedgerEntry.__table__.c[column].type, "length", None)
    if not isinstance(length, int):
        raise TypeError(f"model_ledger.{column} is not a bounded string column")
    return length


def _utc_time(value: Any) -> datetime:
    """An ISO-8601 time with a UTC offset (``...Z`` or ``+00:00``) as an aware datetime."""
    if not isinstance(value, str):
        raise ValueError(f"must be an ISO-8601 time string, not {type(value).__name__}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an ISO-8601 time") from exc
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no UTC offset; send e.g. '2026-01-01T00:00:00+00:00'")
    return parsed.astimezone(UTC)


def _usd(value: Any) -> Decimal | None:
    """A USD amount given as a decimal string (None = unknown); floats are refused."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(
            f"must be a decimal string of USD or null, not {type(value).__name__} "
            "(a float would lose exactness)"
        )
    try:
        amount = Decimal(value)
    except InvalidOperation as exc:
        raise ValueError(f"{value!r} is not a decimal number") from exc
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"{value!r} is not a finite amount >= 0")
    return amount


def _text(column: str) -> Any:
    return StringConstraints(min_length=1, max_length=_length(column))


Tokens = Annotated[int, Field(ge=0)] | None


class Attempt(BaseModel):
    """One ``model_attempt`` payload of the provider chain, validated.

    A ledger row without its run context. Strict: every field is required, with exactly
    its JSON type (no coercion: ``"12"`` is not a token count, a float is not a USD amount);
    unknown fields are refused.

    Attributes:
        id: Attempt id, 32 lowercase hex digits.
        at: When the attempt started, UTC.
        provider: ``anthropic``, ``openai``, ``google`` or ``local``.
        model_requested: The configured model the chain asked for.
        model_used: The model the provider reported (a dated variant); None if none.
        status: ``success`` or ``error``.
        error: ``"ExcType: message"`` of a failed attempt; None when it succeeded.
        streamed: Whether the attempt streamed.
        input_tokens: Tokens as the provider reported them; None = not reported.
        output_tokens: As above.
        cached_tokens: As above.
        reasoning_tokens: As above.
        cost_usd: USD priced by genai-prices; None = unknown; 0 for the local model.
        price_source: ``"genai-prices X.Y.Z"``, or None when nothing was priced.
        latency_s: Seconds from the attempt's start to its end.
    """

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
    at: Annotated[datetime, BeforeValidator(_utc_time)]
    provider: ProviderName
    model_requested: Annotated[str, _text("model_requested")]
    model_used: Annotated[str, _text("model_used")] | None
    status: Literal["success", "error"]
    error: Annotated[str, StringConstraints(min_length=1)] | None
    streamed: bool
    input_tokens: Tokens
    output_tokens: Tokens
    cached_tokens: Tokens
    reasoning_tokens: Tokens
    cost_usd: Annotated[Decimal | None, BeforeValidator(_usd)]
    price_source: Annotated[str, _text("price_source")] | None
    latency_s: Annotated[float, Field(ge=0, allow_inf_nan=False)]

    @model_validator(mode="after")
    def _error_matches_status(self) -> "Attempt":
        if (self.status == "error") != (self.error is not None):
            raise ValueError(
                f"error: a status {self.status!r} attempt must have "
                f"{'an error message' if self.status == 'error' else 'error null'}"
            )
        return self


class LedgerPayloadError(ValueError):
    """A ``model_attempt`` payload cannot be a ledger row; the message names each bad field."""


def parse_attempt(payload: Mapping[str, Any]) -> Attempt:
    """Validate one ``model_attempt`` payload.

    Args:
        payload: The chain's JSON-safe dict (see :class:`Attempt`).

    Returns:
        The attempt, ``at`` as an aware UTC datetime and ``cost_usd`` as a Decimal.

    Raises:
        LedgerPayloadError: A field is missing, unknown, of the wrong type or out of range;
            the message names every such field and what it must be.
    """
    try:
        return Attempt.model_validate(dict(payload))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'payload'}: {error['msg']}"
            for error in exc.errors(include_url=False)
        )
        raise LedgerPayloadError(f"bad model_attempt payload: {problems}") from None


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
    payload: Mapping[str, Any],
    context: RunContext,
    *,
    agent: str | None = None,
    tool: str | None = None,
) -> dict[str, Any]:
    """The ledger row (column values) of one attempt in its run's context.

    Args:
        payload: The chain's ``model_attempt`` payload.
        context: Tenant, network, task, key and user of the run.
        agent: The agent whose model call it was.
        tool: The tool the call was made for, when known.

    Raises:
        LedgerPayloadError: The payload is not a valid attempt, or ``agent`` / ``tool``
            is longer than its column.
    """
    row = parse_attempt(payload).model_dump()
    for name, value in (("agent", agent), ("tool", tool)):
        if value is not None and len(value) > _length(name):
            raise LedgerPayloadError(f"{name}: longer than {_length(name)} characters: {value!r}")
    return {**row, **vars(context), "agent": agent, "tool": tool}


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
        payload: Mapping[str, Any],
        context: RunContext,
        *,
        agent: str | None = None,
        tool: str | None = None,
    ) -> None:
        """Append the row :func:`ledger_row` makes of the arguments; returns once committed.

        Raises:
            LedgerPayloadError: The payload is not a valid attempt (nothing is written).
            SQLAlchemyError: The row could not be written (e.g. its id exists already).
        """
        await self._rows.submit(ledger_row(payload, context, agent=agent, tool=tool))


async def _insert(connection: AsyncConnection, rows: Sequence[dict[str, Any]]) -> list[None]:
    await connection.execute(insert(LedgerEntry), list(rows))
    return [None] * len(rows)


# --- queries -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """Which rows a query covers: a tenant's (None = every tenant's), ``since <= at < until``.

    ``at`` is an attempt's start time; None bounds are open.
    """

    tenant: str | None
    since: datetime | None = None
    until: datetime | None = None

    def where(self) -> list[ColumnElement[bool]]:
        """The SQL conditions of this period."""
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


async def cost_totals(connection: Connection, period: Period) -> CostTotals:
    """Spend over ``period``: total and per model, user and network (USD, exact).

    One ``GROUP BY`` query (model, user, network, cost); the decimal strings of each group
    are summed as Decimals here, since SQLite has no exact decimal arithmetic. A failed
    attempt counts 0 USD unless the provider reported tokens for it (then its recorded
    cost, which may be unknown).

    Args:
        connection: A session or connection of the database.
        period: Tenant and time range.

    Returns:
        The totals; empty when the period has no rows.
    """
    billed = _billed().label("billed")
    columns = (LedgerEntry.provider, LedgerEntry.model_requested, LedgerEntry.user_id)
    query = (
        select(*columns, LedgerEntry.network_id, billed, func.count().label("n"))
        .where(*period.where())
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


@dataclass(frozen=True)
class TokenTotals:
    """Tokens as providers reported them, summed; None = no call in the group reported it."""

    input: int | None = None
    output: int | None = None
    cached: int | None = None
    reasoning: int | None = None


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
    tokens: TokenTotals


def _per_model(period: Period, *columns: Any) -> Select[Any]:
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
        .where(*period.where())
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


def _tokens(sums: Sequence[Any]) -> TokenTotals:
    return TokenTotals(*(None if s is None else int(s) for s in sums))


async def usage_per_model(connection: Connection, period: Period) -> dict[str, ModelUsage]:
    """Calls, failures, mean latency and tokens per ``provider/model`` over ``period``.

    One ``GROUP BY`` query with SQL aggregates.

    Args:
        connection: A session or connection of the database.
        period: Tenant and time range.

    Returns:
        ``{"provider/model": usage}``, sorted by key; empty when the period has no rows.
    """
    query = _per_model(period, *_TOKEN_SUMS)
    return {
        link_key(provider, model): ModelUsage(
            calls=int(calls),
            failures=int(failures),
            mean_latency_s=float(latency),
            tokens=_tokens(tokens),
        )
        for provider, model, calls, failures, latency, *tokens in await connection.execute(query)
    }


def total_tokens(models: Mapping[str, ModelUsage]) -> TokenTotals:
    """The tokens of several models summed (None where none of them reported that count)."""

    def total(name: str) -> int | None:
        counts = [getattr(m.tokens, name) for m in models.values()]
        known = [c for c in counts if c is not None]
        return sum(known) if known else None

    return TokenTotals(*(total(name) for name in ("input", "output", "cached", "reasoning")))


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


async def model_history(connection: Connection, period: Period) -> dict[str, ModelHistory]:
    """Calls, failures, success rate, median and mean latency per ``provider/model``.

    One ``GROUP BY`` query, then one ordered ``LIMIT``/``OFFSET`` query per model for its
    median (portable: SQLite has no percentile function).

    Args:
        connection: A session or connection of the database.
        period: Tenant (None = every tenant's calls) and time range.

    Returns:
        ``{"provider/model": history}`` of the models with at least one call.
    """
    groups = _per_model(period)
    history: dict[str, ModelHistory] = {}
    for provider, model, calls, failures, mean in (await connection.execute(groups)).all():
        of_model = (LedgerEntry.provider == provider, LedgerEntry.model_requested == model)
        middle = (
            select(LedgerEntry.latency_s)
            .where(*period.where(), *of_model)
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
