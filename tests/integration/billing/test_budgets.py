"""Budgets on SQLite and PostgreSQL: atomic reservations under concurrency, reconciliation,
day and month windows, downgrades and refusals."""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from aimesh.agents.specialist import MAX_MODEL_CALLS
from aimesh.billing.admin import create_budget
from aimesh.billing.amounts import parse_limit, to_nusd, to_usd, window_start
from aimesh.billing.budgets import Budgets, Spender
from aimesh.billing.run_bound import RunBound, max_model_calls
from aimesh.config import Settings
from aimesh.errors import BudgetExceededError, InvalidInputError
from aimesh.llm.catalog import model_links
from aimesh.llm.selection import choose_route
from aimesh.store.database import Database
from aimesh.store.keys import create_key
from aimesh.store.tables import Budget, BudgetHold, BudgetWindow, LedgerEntry, Network, new_id

TENANT = "acme"
AMOUNT = Decimal("0.123456789")  # nano-USD precision: 123,456,789 nano-USD


@pytest.fixture
async def engine(db: Database) -> AsyncIterator[AsyncEngine]:
    """The engine reservations run on: on PostgreSQL one connection per concurrent caller."""
    if db.is_sqlite:
        yield db.engine
        return
    concurrent = create_async_engine(db.url, pool_size=50, max_overflow=0)
    yield concurrent
    await concurrent.dispose()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """An OpenAI-compatible provider (never called here) and the local model."""
    return Settings(
        home=tmp_path / "home",
        providers=["openai", "local"],
        openai_base_url="http://127.0.0.1:9/v1",
        openai_models=["gpt-4.1", "gpt-4.1-mini"],
    )


@pytest.fixture
def budgets(engine: AsyncEngine, settings: Settings) -> Budgets:
    return Budgets(engine, settings, model_links(settings), calls_per_delegation=MAX_MODEL_CALLS)


async def network(db: Database, tenant: str = TENANT) -> str:
    async with db.sessions.begin() as session:
        row = Network(id=new_id(), tenant=tenant, name="n", max_iterations=6, timeout_seconds=60)
        session.add(row)
    return row.id


async def budget(
    db: Database, scope: str, scope_id: str, limit: Decimal, period: str = "day", **kw: Any
) -> str:
    async with db.sessions.begin() as session:
        row = await create_budget(
            session, TENANT, scope=scope, scope_id=scope_id, period=period, limit_usd=limit, **kw
        )
    return row.id


def fitting(times: int, amount: Decimal) -> Decimal:
    """A limit (6 decimals) that fits ``times`` reservations of ``amount`` but not one more."""
    limit = ((times + Decimal("0.5")) * amount).quantize(Decimal("0.000001"), ROUND_DOWN)
    assert times * to_nusd(amount) <= to_nusd(limit) < (times + 1) * to_nusd(amount)
    return limit


async def windows(db: Database) -> dict[tuple[str, datetime], tuple[int, int]]:
    async with db.sessions() as session:
        rows = await session.scalars(select(BudgetWindow))
        return {(w.budget_id, w.window_start): (w.spent_nusd, w.reserved_nusd) for w in rows}


def track_concurrency(engine: AsyncEngine) -> dict[str, int]:
    """Count connections checked out at once (peak) on ``engine``'s pool."""
    seen = {"now": 0, "peak": 0}

    def checkout(*_: Any) -> None:
        seen["now"] += 1
        seen["peak"] = max(seen["peak"], seen["now"])

    def checkin(*_: Any) -> None:
        seen["now"] -= 1

    event.listen(engine.sync_engine, "checkout", checkout)
    event.listen(engine.sync_engine, "checkin", checkin)
    return seen


async def race(budgets: Budgets, spender: Spender, n: int = 50) -> list[Any]:
    return await asyncio.gather(
        *(budgets.reserve(spender, AMOUNT) for _ in range(n)), return_exceptions=True
    )


async def test_fifty_concurrent_reservations_against_a_budget_that_fits_ten(
    db: Database, engine: AsyncEngine, budgets: Budgets
) -> None:
    net = await network(db)
    budget_id = await budget(db, "network", net, fitting(10, AMOUNT))
    concurrency = track_concurrency(engine)

    outcomes = await race(budgets, Spender(TENANT, net, "k" * 16))

    held = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, BudgetExceededError)]
    assert (len(held), len(refused)) == (10, 40), [o for o in outcomes if o not in held + refused]
    start = window_start("day", datetime.now(UTC))
    assert await windows(db) == {(budget_id, start): (0, 10 * to_nusd(AMOUNT))}
    assert all(r.holds[0].budget_id == budget_id and r.nusd == to_nusd(AMOUNT) for r in held)
    error = refused[0]
    assert error.budget["id"] == budget_id and error.requested_usd == to_usd(to_nusd(AMOUNT))
    assert error.budget["reserved_usd"] == to_usd(10 * to_nusd(AMOUNT))
    if not db.is_sqlite:
        assert concurrency["peak"] > 10  # real concurrent connections, not one after another


async def test_all_or_nothing_across_two_budgets(
    db: Database, engine: AsyncEngine, budgets: Budgets
) -> None:
    """The tenant's budget fits 10, the network's 5: a run held by one and refused by the
    other holds nothing (on PostgreSQL, 50 transactions locking two rows: no deadlock)."""
    net = await network(db)
    tenant_budget = await budget(db, "tenant", TENANT, fitting(10, AMOUNT), "month")
    network_budget = await budget(db, "network", net, fitting(5, AMOUNT))

    outcomes = await race(budgets, Spender(TENANT, net))

    assert sum(not isinstance(o, BaseException) for o in outcomes) == 5
    assert all(isinstance(o, BudgetExceededError) for o in outcomes if isinstance(o, Exception))
    now = datetime.now(UTC)
    assert await windows(db) == {
        (tenant_budget, window_start("month", now)): (0, 5 * to_nusd(AMOUNT)),
        (network_budget, window_start("day", now)): (0, 5 * to_nusd(AMOUNT)),
    }


async def test_only_the_spenders_budgets_apply(db: Database, budgets: Budgets) -> None:
    net, other = await network(db), await network(db)
    async with db.sessions.begin() as session:
        key = (await create_key(session, b"s", tenant=TENANT, user_id="u", role="user")).record
    on_other = await budget(db, "network", other, Decimal("0.000001"))
    on_key = await budget(db, "key", key.id, Decimal(1))
    reservation = await budgets.reserve(Spender(TENANT, net, key.id), AMOUNT)
    assert [h.budget_id for h in reservation.holds] == [on_key]
    assert on_other not in {b for b, _ in await windows(db)}
    nothing = await budgets.reserve(Spender(TENANT, net, None), AMOUNT)
    assert nothing.holds == ()


async def test_reconcile_releases_the_reservation_and_adds_the_spend(
    db: Database, budgets: Budgets
) -> None:
    net = await network(db)
    budget_id = await budget(db, "network", net, Decimal(1))
    spender = Spender(TENANT, net)
    start = window_start("day", datetime.now(UTC))

    first = await budgets.reserve(spender, AMOUNT)
    second = await budgets.reserve(spender, AMOUNT)
    await budgets.reconcile(first, Decimal("0.0000000001"))  # rounded up to 1 nano-USD
    assert (await windows(db))[(budget_id, start)] == (1, to_nusd(AMOUNT))
    await budgets.reconcile(first, Decimal("0.5"))  # a second reconcile changes nothing
    assert (await windows(db))[(budget_id, start)] == (1, to_nusd(AMOUNT))
    await budgets.reconcile(second, None)  # unknown cost: the whole reservation is spent
    assert (await windows(db))[(budget_id, start)] == (1 + to_nusd(AMOUNT), 0)

    # the released money is available again, the spent money is not
    limit = to_usd(to_nusd(Decimal(1)) - 1 - to_nusd(AMOUNT))
    await budgets.reserve(spender, limit)
    with pytest.raises(BudgetExceededError):
        await budgets.reserve(spender, Decimal("0.000000001"))


async def test_windows_are_utc_days_and_months(db: Database, budgets: Budgets) -> None:
    net = await network(db)
    daily = await budget(db, "network", net, fitting(1, AMOUNT), "day")
    monthly = await budget(db, "network", net, fitting(3, AMOUNT), "month")
    spender = Spender(TENANT, net)
    jan31 = datetime(2025, 1, 31, 23, 59, 59, tzinfo=UTC)
    feb1 = datetime(2025, 2, 1, 0, 0, 1, tzinfo=UTC)

    await budgets.reserve(spender, AMOUNT, now=jan31)
    with pytest.raises(BudgetExceededError) as refused:  # the day's budget is used up
        await budgets.reserve(spender, AMOUNT, now=jan31.replace(hour=1))
    assert (refused.value.budget["id"], refused.value.budget["period"]) == (daily, "day")
    await budgets.reserve(spender, AMOUNT, now=feb1)  # a new day and a new month
    await budgets.reserve(spender, AMOUNT, now=datetime(2025, 2, 2, 9, tzinfo=UTC))
    held = to_nusd(AMOUNT)
    assert await windows(db) == {
        (daily, datetime(2025, 1, 31, tzinfo=UTC)): (0, held),
        (daily, datetime(2025, 2, 1, tzinfo=UTC)): (0, held),
        (daily, datetime(2025, 2, 2, tzinfo=UTC)): (0, held),
        (monthly, datetime(2025, 1, 1, tzinfo=UTC)): (0, held),
        (monthly, datetime(2025, 2, 1, tzinfo=UTC)): (0, 2 * held),
    }


async def test_deleting_a_budget_deletes_its_windows(db: Database, budgets: Budgets) -> None:
    net = await network(db)
    budget_id = await budget(db, "network", net, Decimal(1))
    reservation = await budgets.reserve(Spender(TENANT, net), AMOUNT)
    async with db.sessions.begin() as session:
        await session.delete(await session.get_one(Budget, budget_id))
    assert await windows(db) == {}
    await budgets.reconcile(reservation, AMOUNT)  # nothing left to update: no error
    assert (await budgets.reserve(Spender(TENANT, net), AMOUNT)).holds == ()


async def test_budgets_are_validated_naming_the_field(db: Database) -> None:
    net = await network(db)
    theirs = await network(db, tenant="globex")
    cases = [
        ({"scope": "planet"}, "scope"),
        ({"period": "week"}, "period"),
        ({"on_limit": "ignore"}, "on_limit"),
        ({"limit_usd": Decimal(0)}, "limit_usd"),
        ({"limit_usd": Decimal("-1")}, "limit_usd"),
        ({"limit_usd": Decimal("1000000")}, "limit_usd"),
        ({"limit_usd": Decimal("0.0000001")}, "limit_usd"),
        ({"limit_usd": Decimal("NaN")}, "limit_usd"),
        ({"scope_id": theirs}, "scope_id"),  # another tenant's network
        ({"scope": "key", "scope_id": "0" * 16}, "scope_id"),
        ({"scope": "tenant", "scope_id": "globex"}, "scope_id"),
    ]
    values = {"scope": "network", "scope_id": net, "period": "day", "limit_usd": Decimal(5)}
    async with db.sessions() as session:
        for change, field in cases:
            with pytest.raises(InvalidInputError) as refused:
                await create_budget(session, TENANT, **{**values, **change})
            assert refused.value.field == field, (change, refused.value)
    assert await budget(db, "network", net, Decimal("5.000000"))
    assert await budget(db, "tenant", TENANT, Decimal("999999.999999"), on_limit="downgrade")
    assert parse_limit("25.50") == Decimal("25.50")
    for bad in ("0", "0.0000001", "1000000", "1e3", " 5", "-5", 5, 5.5, None):
        with pytest.raises(InvalidInputError):
            parse_limit(bad)


# --- worst case, downgrade, refusal ------------------------------------------------------


def test_worst_case_of_a_run_is_calls_times_the_route_links_summed(settings: Settings) -> None:
    bound = RunBound.of(
        settings, max_delegations=6, calls_per_delegation=MAX_MODEL_CALLS, max_tokens=[None, 2048]
    )
    assert bound == RunBound(model_calls=26, input_tokens=32_000, output_tokens=2048)
    assert max_model_calls(1, MAX_MODEL_CALLS) == 6
    local = [link.key for link in model_links(settings) if link.provider == "local"]
    assert bound.run_usd(local) == 0
    # gpt-4.1: $2 / $8 per million input / output tokens; gpt-4.1-mini: $0.40 / $1.60
    big = 32_000 * Decimal(2) / 10**6 + 2048 * Decimal(8) / 10**6
    mini = 32_000 * Decimal("0.4") / 10**6 + 2048 * Decimal("1.6") / 10**6
    route = ["openai/gpt-4.1", "openai/gpt-4.1-mini", *local]
    assert bound.run_usd(route) == 26 * (big + mini)
    assert bound.run_usd(["openai/no-such-model", *local]) is None
    assert bound.unpriced(["openai/no-such-model", *local]) == ["openai/no-such-model"]


async def admitted(budgets: Budgets, spender: Spender) -> tuple[Any, list[str]]:
    """Admit a run of a network with 6 delegations on the default route."""
    route = choose_route(None, budgets.links, {})
    return await budgets.admit(spender, budgets.bound(6), route), route


async def test_at_the_limit_a_downgrade_budget_runs_on_cheaper_models(
    db: Database, budgets: Budgets
) -> None:
    net = await network(db)
    spender = Spender(TENANT, net)
    bound = budgets.bound(6)
    local = next(link.key for link in budgets.links if link.provider == "local")
    mini = bound.run_usd(["openai/gpt-4.1-mini"])
    assert mini is not None
    await budget(db, "network", net, fitting(1, mini), on_limit="downgrade")

    admission, route = await admitted(budgets, spender)
    assert route == ["openai/gpt-4.1", local]  # the default chain, too dear for the budget
    assert admission.route == ("openai/gpt-4.1-mini", local)
    assert admission.reservation.amount_usd == to_usd(to_nusd(mini))
    assert admission.event["action"] == "downgraded"
    assert admission.event["route"] == ["openai/gpt-4.1-mini", local]
    assert admission.event["requested_usd"] == str(to_usd(to_nusd(bound.run_usd(route))))

    # the mini model's worst case no longer fits: the local model (0 USD) still does
    second, _ = await admitted(budgets, spender)
    assert second.route == (local,) and second.reservation.holds == ()
    assert second.event["budget"]["reserved_usd"] == str(to_usd(to_nusd(mini)))


async def test_at_the_limit_a_refuse_budget_refuses_naming_it(
    db: Database, budgets: Budgets
) -> None:
    net = await network(db)
    budget_id = await budget(db, "network", net, Decimal("0.01"), "month")
    with pytest.raises(BudgetExceededError) as refused:
        await admitted(budgets, Spender(TENANT, net))
    error = refused.value
    assert error.on_limit == "refuse"
    detail = error.detail()
    assert detail["budget"] == {
        "id": budget_id,
        "scope": "network",
        "scope_id": net,
        "period": "month",
        "on_limit": "refuse",
        "limit_usd": "0.01",
        "spent_usd": "0",
        "reserved_usd": "0",
    }
    assert Decimal(detail["requested_usd"]) > Decimal("0.01")
    assert f"budget {budget_id} (network {net}, per month)" in str(error)
    assert await windows(db) == {}  # the refused transaction left nothing behind


async def test_an_unknown_price_counts_as_over_the_budget(db: Database, tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path / "home",
        providers=["openai", "local"],
        openai_base_url="http://127.0.0.1:9/v1",
        openai_models=["our-own-model"],
    )
    budgets = Budgets(
        db.engine, settings, model_links(settings), calls_per_delegation=MAX_MODEL_CALLS
    )
    net = await network(db)
    spender = Spender(TENANT, net)
    local = next(link.key for link in budgets.links if link.provider == "local")
    refuse = await budget(db, "network", net, Decimal(100))
    with pytest.raises(BudgetExceededError) as refused:
        await admitted(budgets, spender)
    assert refused.value.requested_usd is None
    assert refused.value.budget["id"] == refuse
    assert "no price for openai/our-own-model" in str(refused.value)

    async with db.sessions.begin() as session:
        await session.delete(await session.get_one(Budget, refuse))
    await budget(db, "network", net, Decimal(100), on_limit="downgrade")
    admission, route = await admitted(budgets, spender)
    assert route == ["openai/our-own-model", local]
    assert admission.route == (local,)
    assert admission.event["reason"].startswith("genai-prices has no price for")


async def test_check_at_submission_counts_spend_not_reservations(
    db: Database, budgets: Budgets
) -> None:
    net = await network(db)
    spender = Spender(TENANT, net)
    run = budgets.bound(6).run_usd(choose_route(None, budgets.links, {}))
    assert run is not None
    await budget(db, "network", net, fitting(1, run))
    await budgets.check(spender)
    held = await budgets.reserve(spender, run)
    await budgets.check(spender)  # held money may come back: not exhausted
    await budgets.reconcile(held, run * Decimal("0.6"))
    with pytest.raises(BudgetExceededError) as refused:
        await budgets.check(spender)
    assert refused.value.budget["spent_usd"] == to_usd(to_nusd(run * Decimal("0.6")))
    await budgets.check(Spender(TENANT, await network(db)))  # another network: no budget


async def test_a_runs_cost_is_the_sum_of_its_ledger_rows(db: Database, budgets: Budgets) -> None:
    task = new_id()

    def row(status: str, cost: str | None, tokens: int | None = 10) -> LedgerEntry:
        return LedgerEntry(
            id=new_id(),
            task_id=task,
            provider="openai",
            model_requested="gpt-4.1-mini",
            status=status,
            error=None if status == "success" else "APIError: 500",
            input_tokens=tokens,
            output_tokens=tokens,
            cost_usd=None if cost is None else Decimal(cost),
            latency_s=0.1,
        )

    assert await budgets.run_cost_usd(task) == 0
    async with db.sessions.begin() as session:
        session.add_all([row("success", "0.25"), row("error", None, tokens=None)])
        session.add(row("error", "0.125"))  # billed: the provider reported tokens
    assert await budgets.run_cost_usd(task) == Decimal("0.375")
    async with db.sessions.begin() as session:
        session.add(row("success", None))
    assert await budgets.run_cost_usd(task) is None


async def holds(db: Database) -> list[tuple[str, int]]:
    async with db.sessions() as session:
        rows = await session.execute(select(BudgetHold.reservation_id, BudgetHold.nusd))
        return sorted((reservation, nusd) for reservation, nusd in rows)


async def test_the_holds_of_a_dead_run_expire_and_are_released_once(
    db: Database, budgets: Budgets, settings: Settings
) -> None:
    """A run whose process died never reconciles: past its time limit and the grace its
    holds are released by the sweeper, charged its task's ledger cost; a late reconcile
    (the run was alive after all) finds nothing left to release."""
    net = await network(db)
    budget_id = await budget(db, "network", net, fitting(3, AMOUNT))
    spender, task = Spender(TENANT, net), new_id()
    start = datetime.now(UTC)
    dead = await budgets.reserve(spender, AMOUNT, now=start, hold_s=60, task_id=task)
    live = await budgets.reserve(spender, AMOUNT, now=start, hold_s=3600)
    key, held = (budget_id, window_start("day", start)), to_nusd(AMOUNT)
    assert await windows(db) == {key: (0, 2 * held)}
    assert await holds(db) == sorted([(dead.id, held), (live.id, held)])

    async with db.sessions.begin() as session:
        session.add(
            LedgerEntry(
                id=new_id(),
                task_id=task,
                provider="openai",
                model_requested="gpt-4.1-mini",
                status="success",
                input_tokens=10,
                output_tokens=5,
                cost_usd=Decimal("0.01"),
                latency_s=0.1,
            )
        )
    expiry = start + timedelta(seconds=60 + settings.budget_hold_grace_s)
    assert await budgets.release_expired(expiry - timedelta(seconds=1)) == 0
    assert await budgets.release_expired(expiry) == 1
    assert await windows(db) == {key: (to_nusd(Decimal("0.01")), held)}
    assert await holds(db) == [(live.id, held)]

    await budgets.reconcile(dead, Decimal("5"))  # too late: the sweeper released it
    assert await windows(db) == {key: (to_nusd(Decimal("0.01")), held)}
    await budgets.reconcile(live, AMOUNT / 2)
    assert await windows(db) == {key: (to_nusd(Decimal("0.01")) + to_nusd(AMOUNT / 2), 0)}
    assert await holds(db) == []
    assert await budgets.release_expired(start + timedelta(days=1)) == 0
