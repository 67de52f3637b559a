"""Budgets: USD limits per UTC day or month on a tenant, one of its networks or API keys.

Before a run the runner reserves the run's worst-case cost against every budget that
applies to it (the tenant's, its network's and its API key's, day and month) in one
transaction, budgets in id order (no deadlocks), all or nothing; after the run it
reconciles: the reservation is released and the actual spend added. Spend and
reservations are integers in nano-USD (``budget_windows``), so that a reservation is one
conditional ``UPDATE`` that concurrent runs cannot overtake, on SQLite and PostgreSQL::

    UPDATE budget_windows SET reserved_nusd = reserved_nusd + :x
    WHERE budget_id = :b AND window_start = :w AND spent_nusd + reserved_nusd + :x <= :limit

Each hold is also a ``budget_holds`` row that expires ``budget_hold_grace_s`` after the
run's time limit: a run whose process died never reconciles, so the sweeper releases its
expired holds, charged its task's ledger cost (:meth:`Budgets.release_expired`). Whoever
deletes the rows (``DELETE ... RETURNING``) releases them: the run or the sweeper, once.

At a limit, a budget with ``on_limit="downgrade"`` lets the run go on a route of only the
links (``provider/model``) whose worst cases fit, the cheapest kept (the local model costs
0 USD), in the order model selection gives them under budget pressure (cheapest first,
the local model last); ``"refuse"``, or no route fitting, refuses it with
:class:`BudgetExceededError`. At submission (:meth:`Budgets.check`) only reconciled spend
counts, so that a task is refused with HTTP 402 only when its budget is spent, not while
running tasks hold reservations that may come back. A budget counts the spend of runs from
its creation; runs under no budget reserve nothing.

The worst case reserved is :class:`aimesh.billing.run_bound.RunBound`'s; amounts are in
:mod:`aimesh.billing.amounts`.
"""

import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import ColumnElement, and_, delete, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from aimesh.billing.amounts import limit_nusd, to_nusd, to_usd, window_start
from aimesh.billing.run_bound import RunBound
from aimesh.config import Settings
from aimesh.errors import BudgetExceededError, NoProviderError
from aimesh.llm.attempt import ModelAttempt
from aimesh.llm.catalog import ModelInfo
from aimesh.llm.selection import ModelSelection, choose_route
from aimesh.store.tables import (
    Agent,
    Budget,
    BudgetHold,
    BudgetWindow,
    LedgerEntry,
    Network,
    utcnow,
)

T = TypeVar("T")


@dataclass(frozen=True)
class Spender:
    """Who a run spends for: its tenant, network and API key.

    ``network_id`` None: a direct generation (``/generate/stream``), under no network's
    budget; ``key_id`` None: no key (e.g. the CLI).
    """

    tenant: str
    network_id: str | None
    key_id: str | None = None


class Billed(NamedTuple):
    """What :func:`billed_usd` needs of one model call attempt (a ledger row)."""

    status: str
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: Decimal | None

    @classmethod
    def of(cls, attempt: ModelAttempt) -> "Billed":
        """The billed figures of an attempt the chain built."""
        return cls(attempt.status, attempt.input_tokens, attempt.output_tokens, attempt.cost_usd)


def billed_usd(attempts: Iterable[Billed]) -> Decimal | None:
    """What model call attempts cost in all (USD, exact).

    As the ledger's statistics count them, a failed attempt that reported no tokens cost
    nothing; any other attempt of unknown cost makes the total unknown (None).
    """
    total = Decimal(0)
    for attempt in attempts:
        unreported = attempt.input_tokens is None and attempt.output_tokens is None
        if attempt.status == "error" and unreported:
            continue
        if attempt.cost_usd is None:
            return None
        total += attempt.cost_usd
    return total


@dataclass(frozen=True)
class Hold:
    """One budget window a reservation holds money in."""

    budget_id: str
    window_start: datetime


@dataclass
class Reservation:
    """Money held for one run in every budget that applies to it, until reconciled.

    Attributes:
        nusd: The amount held in each budget window (nano-USD).
        holds: The budget windows, in budget id order; empty when nothing is held.
        id: Reservation id (32 hex).
        settled: Reconciled already (a second reconcile does nothing).
    """

    nusd: int
    holds: tuple[Hold, ...]
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    settled: bool = False

    @property
    def amount_usd(self) -> Decimal:
        """The amount held, USD."""
        return to_usd(self.nusd)


@dataclass(frozen=True)
class Admission:
    """A run allowed to start.

    Attributes:
        reservation: Its reservation; None when no budget applies.
        route: The route it must use (``use_route``).
        event: Payload of the ``budget`` event to emit (a downgrade), else None.
    """

    reservation: Reservation | None
    route: tuple[str, ...]
    event: dict[str, Any] | None = None


@dataclass(frozen=True)
class _Budget:
    """What a reservation needs of a budget."""

    id: str
    scope: str
    scope_id: str
    period: str
    limit_usd: Decimal
    on_limit: str


@dataclass(frozen=True)
class _Option:
    """A route to try.

    Attributes:
        links: Its links, in order.
        cost_usd: Its worst case, USD; None when a price is unknown.
        unpriced: The links without a price.
    """

    links: tuple[str, ...]
    cost_usd: Decimal | None
    unpriced: tuple[str, ...] = ()


class Budgets:
    """Reserve and reconcile runs' worst-case costs against the budgets that apply.

    Args:
        engine: The database of budgets and windows (SQLite or PostgreSQL).
        settings: Token caps (the worst case of a run).
        links: The chain's links (:func:`aimesh.llm.catalog.model_links`): the routes a
            run may take, and those it may be downgraded to.
        calls_per_delegation: Model calls one delegation's specialist may make (the service
            layer passes :data:`aimesh.agents.specialist.MAX_MODEL_CALLS`).
    """

    def __init__(
        self,
        engine: AsyncEngine,
        settings: Settings,
        links: Sequence[ModelInfo],
        *,
        calls_per_delegation: int,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.links = links
        self.calls_per_delegation = calls_per_delegation

    def bound(self, max_delegations: int, max_tokens: Iterable[int | None] = ()) -> RunBound:
        """The worst case of a run with this delegation cap and its agents' ``max_tokens``."""
        return RunBound.of(self.settings, max_delegations, self.calls_per_delegation, max_tokens)

    async def reserve(
        self,
        spender: Spender,
        amount_usd: Decimal,
        *,
        now: datetime | None = None,
        hold_s: float = 0.0,
        task_id: str | None = None,
    ) -> Reservation:
        """Hold ``amount_usd`` in every budget of ``spender``, all or nothing, atomically.

        One transaction: budgets in id order; each current window created on demand
        (``INSERT ... ON CONFLICT DO NOTHING``), then one conditional ``UPDATE`` and one
        ``budget_holds`` row each. Nothing is held for an amount of 0 (a run on the local
        model).

        Args:
            spender: Tenant, network and API key of the run.
            amount_usd: USD to hold (rounded up to the nano-USD).
            now: The time deciding the windows; default: now.
            hold_s: Seconds the run may take at most (its time limit); the holds expire
                ``budget_hold_grace_s`` after that (:meth:`release_expired`).
            task_id: The run's task, whose ledger cost an expired hold is charged.

        Returns:
            The reservation, to pass to :meth:`reconcile`.

        Raises:
            BudgetExceededError: A budget would go over its limit; nothing is held.
        """
        nusd = to_nusd(amount_usd)
        if nusd == 0:
            return Reservation(0, ())
        at = now or utcnow()
        expires = at + timedelta(seconds=hold_s + self.settings.budget_hold_grace_s)
        reservation = Reservation(nusd, ())
        hold = {"reservation_id": reservation.id, "nusd": nusd, "task_id": task_id}
        hold |= {"expires_at": expires}
        try:
            reservation.holds = await self._reserve(spender, at, hold)
        except IntegrityError:  # a budget deleted meanwhile: its window's key is gone
            reservation.holds = await self._reserve(spender, at, hold)
        return reservation

    async def _reserve(
        self, spender: Spender, at: datetime, hold: dict[str, Any]
    ) -> tuple["Hold", ...]:
        nusd = hold["nusd"]
        async with self.engine.begin() as conn:
            holds = []
            for budget in await _applicable(conn, spender):
                start = window_start(budget.period, at)
                await conn.execute(_new_window(conn.dialect.name, budget.id, start))
                taken = await conn.execute(
                    update(BudgetWindow)
                    .where(
                        _window(budget.id, start),
                        BudgetWindow.spent_nusd + BudgetWindow.reserved_nusd + nusd
                        <= limit_nusd(budget.limit_usd),
                    )
                    .values(reserved_nusd=BudgetWindow.reserved_nusd + nusd)
                )
                if taken.rowcount != 1:
                    raise await _exceeded(conn, budget, start, to_usd(nusd))  # rolls back
                await conn.execute(
                    insert(BudgetHold).values(**hold, budget_id=budget.id, window_start=start)
                )
                holds.append(Hold(budget.id, start))
        return tuple(holds)

    async def reconcile(self, reservation: Reservation, actual_usd: Decimal | None) -> None:
        """Release ``reservation`` and add the run's actual spend, in one transaction.

        Idempotent: a settled reservation is left alone, and so is one the sweeper released
        already (:meth:`release_expired`). The spend goes to the windows the reservation was
        made in (a run is charged to the day or month it started in).

        Args:
            reservation: From :meth:`reserve`.
            actual_usd: What the run cost (USD, rounded up to the nano-USD); None when
                unknown, which charges the whole reservation (never 0 for unknown).
        """
        if reservation.settled:
            return
        reservation.settled = True
        if not reservation.holds:
            return
        try:
            await self._release(reservation.id, actual_usd)
        except BaseException:
            reservation.settled = False
            raise

    async def release_expired(self, now: datetime | None = None) -> int:
        """Release the reservations whose holds expired: their runs' processes died.

        Each is charged what its task's ledger rows cost (:meth:`run_cost_usd`; the whole
        hold when that is unknown or it had no task). Returns how many were released.
        """
        query = select(BudgetHold.reservation_id, BudgetHold.task_id).where(
            BudgetHold.expires_at <= (now or utcnow())
        )
        async with self.engine.connect() as conn:
            expired = dict((await conn.execute(query)).all())
        for reservation_id, task_id in expired.items():
            actual = None if task_id is None else await self.run_cost_usd(task_id)
            await self._release(reservation_id, actual)
        return len(expired)

    async def _release(self, reservation_id: str, actual_usd: Decimal | None) -> None:
        """Delete a reservation's holds and move them from reserved to spent, once.

        ``DELETE ... RETURNING`` decides who releases: the run or the sweeper, never both.
        """
        release = (
            delete(BudgetHold)
            .where(BudgetHold.reservation_id == reservation_id)
            .returning(BudgetHold.budget_id, BudgetHold.window_start, BudgetHold.nusd)
        )
        async with self.engine.begin() as conn:
            for budget_id, start, nusd in (await conn.execute(release)).all():
                spent = nusd if actual_usd is None else to_nusd(actual_usd)
                await conn.execute(
                    update(BudgetWindow)
                    .where(_window(budget_id, start))
                    .values(
                        reserved_nusd=BudgetWindow.reserved_nusd - nusd,
                        spent_nusd=BudgetWindow.spent_nusd + spent,
                    )
                )

    async def run_cost_usd(self, task_id: str) -> Decimal | None:
        """What a task's model calls cost: :func:`billed_usd` of its ledger rows."""
        query = select(
            LedgerEntry.status,
            LedgerEntry.input_tokens,
            LedgerEntry.output_tokens,
            LedgerEntry.cost_usd,
        ).where(LedgerEntry.task_id == task_id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return billed_usd(Billed(*row) for row in rows)

    async def admit(
        self,
        spender: Spender,
        bound: RunBound,
        route: Sequence[str],
        selection: ModelSelection | None = None,
        *,
        hold_s: float = 0.0,
        task_id: str | None = None,
    ) -> Admission:
        """Reserve a run's worst case, downgrading its route where a budget allows.

        Args:
            spender: Tenant, network and API key of the run.
            bound: The run's worst case (:meth:`bound`).
            route: The route chosen for the run (link keys, in order).
            selection: The task's model selection: a downgrade keeps to the links meeting
                its requirements, in the order it gives them under budget pressure.
            hold_s: Seconds the run may take at most (see :meth:`reserve`).
            task_id: The run's task (see :meth:`reserve`).

        Returns:
            The reservation, the route to run on, and a ``budget`` event for a downgrade.

        Raises:
            BudgetExceededError: A ``refuse`` budget would go over, or no route fits.
        """
        async with self.engine.connect() as conn:
            budgets = await _applicable(conn, spender)
        if not budgets:
            return Admission(None, tuple(route))
        options = self._options(bound, route, selection)
        chosen, reservation, refused = await self._first_fit(
            budgets,
            options,
            lambda cost: self.reserve(spender, cost, hold_s=hold_s, task_id=task_id),
        )
        if refused is None:
            return Admission(reservation, chosen.links)
        event = {
            "action": "downgraded",
            **refused.detail(),
            "route": list(chosen.links),
            "reserved_usd": str(chosen.cost_usd),
        }
        return Admission(reservation, chosen.links, event)

    async def check(self, spender: Spender, selection: ModelSelection | None = None) -> None:
        """Refuse a run at submission when its budgets' spend leaves no room for it.

        Only reconciled spend counts: money reserved by running tasks may come back. A
        downgrade budget refuses only when not even the cheapest route fits.

        Args:
            spender: Tenant, network and API key of the run.
            selection: The task's model selection (None: the default chain).

        Raises:
            BudgetExceededError: The run could not start now, whatever runs finish first.
        """
        async with self.engine.connect() as conn:
            budgets = await _applicable(conn, spender)
            if not budgets:
                return
            delegations = await conn.scalar(
                select(Network.max_iterations).where(
                    Network.id == spender.network_id, Network.tenant == spender.tenant
                )
            )
            if delegations is None:
                return  # not the spender's network: the submission answers 404
            max_tokens = await conn.scalars(
                select(Agent.max_tokens).where(Agent.network_id == spender.network_id)
            )
            bound = self.bound(delegations, max_tokens.all())
            usage = await _usage(conn, budgets, utcnow())
        try:
            options = self._options(bound, choose_route(selection, self.links, {}), selection)
        except NoProviderError:
            return  # no model meets the selection: the run fails with that error

        async def fits(cost: Decimal) -> None:
            for budget in budgets:
                spent, reserved = usage[budget.id]
                need = to_nusd(cost)
                if need and spent + need > limit_nusd(budget.limit_usd):
                    raise BudgetExceededError(_describe(budget, spent, reserved), to_usd(need))

        await self._first_fit(budgets, options, fits)

    def _options(
        self, bound: RunBound, route: Sequence[str], selection: ModelSelection | None
    ) -> list[_Option]:
        """The route as given, then its downgrades, dearest first.

        The candidates of a downgrade are the links the selection allows, in the order it
        gives them under budget pressure (cheapest first, the local model last). A
        downgrade keeps the n candidates of lowest worst case, in that order, for each n
        whose total is below the route's.
        """
        links = tuple(route)
        full = bound.run_usd(links)
        candidates = choose_route(selection, self.links, {}, budget_pressure=True)
        costs = {link: cost for link in candidates if (cost := bound.run_usd([link])) is not None}
        cheapest = sorted(costs, key=lambda link: (costs[link], candidates.index(link)))
        downgrades = []
        for n in range(len(cheapest), 0, -1):
            kept = set(cheapest[:n])
            cost = sum((costs[link] for link in kept), Decimal(0))
            if full is None or cost < full:
                cheaper = tuple(link for link in candidates if link in kept)
                downgrades.append(_Option(cheaper, cost))
        return [_Option(links, full, tuple(bound.unpriced(links))), *downgrades]

    async def _first_fit(
        self,
        budgets: Sequence[_Budget],
        options: Sequence[_Option],
        attempt: Callable[[Decimal], Awaitable[T]],
    ) -> tuple[_Option, T, BudgetExceededError | None]:
        """The first option ``attempt`` accepts, its result, and why the given route was not.

        Raises:
            BudgetExceededError: From a ``refuse`` budget at once; else the last refusal
                (the cheapest route's).
        """
        refusals: list[BudgetExceededError] = []
        for option in options:
            try:
                if option.cost_usd is None:
                    raise await self._unpriced(budgets, option.unpriced)
                result = await attempt(option.cost_usd)
            except BudgetExceededError as error:
                if error.on_limit == "refuse":
                    raise
                refusals.append(error)
                continue
            return option, result, refusals[0] if refusals else None
        raise refusals[-1]

    async def _unpriced(
        self, budgets: Sequence[_Budget], links: Sequence[str]
    ) -> BudgetExceededError:
        """The refusal of a route with unpriced links, by the strictest budget."""
        budget = min(budgets, key=lambda b: (b.on_limit != "refuse", b.id))
        async with self.engine.connect() as conn:
            spent, reserved = (await _usage(conn, [budget], utcnow()))[budget.id]
        reason = (
            f"genai-prices has no price for {', '.join(links)}, so the run's worst case is "
            "unknown; a run under a budget needs priced models"
        )
        return BudgetExceededError(_describe(budget, spent, reserved), None, reason)


def _window(budget_id: str, start: datetime) -> ColumnElement[bool]:
    return and_(BudgetWindow.budget_id == budget_id, BudgetWindow.window_start == start)


def _new_window(dialect: str, budget_id: str, start: datetime) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` of an empty window, in the database's dialect."""
    upsert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        upsert(BudgetWindow)
        .values(budget_id=budget_id, window_start=start, spent_nusd=0, reserved_nusd=0)
        .on_conflict_do_nothing(index_elements=["budget_id", "window_start"])
    )


async def _applicable(conn: AsyncConnection, spender: Spender) -> list[_Budget]:
    """The budgets of the spender's tenant, network and key, in id order."""
    scopes = [and_(Budget.scope == "tenant", Budget.scope_id == spender.tenant)]
    if spender.network_id:
        scopes.append(and_(Budget.scope == "network", Budget.scope_id == spender.network_id))
    if spender.key_id:
        scopes.append(and_(Budget.scope == "key", Budget.scope_id == spender.key_id))
    query = (
        select(
            Budget.id,
            Budget.scope,
            Budget.scope_id,
            Budget.period,
            Budget.limit_usd,
            Budget.on_limit,
        )
        .where(Budget.tenant == spender.tenant, or_(*scopes))
        .order_by(Budget.id)
    )
    return [_Budget(*row) for row in await conn.execute(query)]


async def _usage(
    conn: AsyncConnection, budgets: Sequence[_Budget], at: datetime
) -> dict[str, tuple[int, int]]:
    """``{budget id: (spent, reserved)}`` of each budget's window holding ``at`` (nano-USD)."""
    out = {}
    for budget in budgets:
        start = window_start(budget.period, at)
        row = (
            await conn.execute(
                select(BudgetWindow.spent_nusd, BudgetWindow.reserved_nusd).where(
                    _window(budget.id, start)
                )
            )
        ).first()
        out[budget.id] = (row[0], row[1]) if row else (0, 0)
    return out


async def _exceeded(
    conn: AsyncConnection, budget: _Budget, start: datetime, requested_usd: Decimal
) -> BudgetExceededError:
    spent, reserved = (await _usage(conn, [budget], start))[budget.id]
    return BudgetExceededError(_describe(budget, spent, reserved), requested_usd)


def _describe(budget: _Budget, spent_nusd: int, reserved_nusd: int) -> dict[str, Any]:
    """A budget as :class:`BudgetExceededError` names it (amounts in USD)."""
    return {
        "id": budget.id,
        "scope": budget.scope,
        "scope_id": budget.scope_id,
        "period": budget.period,
        "on_limit": budget.on_limit,
        "limit_usd": budget.limit_usd,
        "spent_usd": to_usd(spent_nusd),
        "reserved_usd": to_usd(reserved_nusd),
    }
