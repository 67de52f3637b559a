"""A budgeted run charges every attempt it reported, whether its ledger row was written."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from aimesh.billing.budgets import Admission, Hold, Reservation
from aimesh.billing.ledger import RunContext
from aimesh.service.budgeted import BudgetedRun
from tests.attempts import attempt


class Budgets:
    """Records what each reservation is reconciled with."""

    def __init__(self) -> None:
        self.reconciled: list[tuple[Reservation, Decimal | None]] = []

    async def reconcile(self, reservation: Reservation, actual: Decimal | None) -> None:
        self.reconciled.append((reservation, actual))


class FailingLedger:
    """A ledger whose every write fails (a database that went away mid-run)."""

    async def record(self, made: Any, context: RunContext, *, agent: str) -> None:
        raise ConnectionError("database unreachable")


async def test_an_attempt_whose_ledger_row_failed_is_still_charged() -> None:
    budgets = Budgets()
    run = BudgetedRun(budgets, FailingLedger(), RunContext("acme"), "gen-1", lambda e: None)
    hold = Hold("budget-1", datetime(2026, 12, 1, tzinfo=UTC))
    reservation = Reservation(nusd=10**9, holds=(hold,))
    run.admission = Admission(reservation, ("openai/gpt-4.1-mini",))
    run.recorder.on_attempt(attempt(cost_usd=Decimal("0.00093")), "coordinator")
    run.recorder.on_attempt(attempt(cost_usd=Decimal("0.00007")), "coordinator")

    await run.settle()

    assert budgets.reconciled == [(reservation, Decimal("0.00100"))]
