"""Budgeted runs: admit -> run on the admitted route -> ledger -> reconcile.

The one path of every run that spends money on model calls: a task's run (the task runner)
and a direct generation (``/generate/stream``).

1. Admit: the run's worst case is reserved against every budget that applies to its tenant,
   network and API key (:meth:`aimesh.billing.budgets.Budgets.admit`); a budget at its limit
   downgrades the route (a ``budget`` event) or refuses the run
   (:class:`~aimesh.errors.BudgetExceededError`).
2. Run: the caller runs its model calls inside :meth:`BudgetedRun.on_route`, with
   :attr:`BudgetedRun.recorder` as a callback; every model call attempt it reports is
   written to the ledger with the run's context.
3. Settle: once the run ends, whatever the outcome, the ledger rows are awaited and the
   reservation is reconciled with the cost of every attempt the run reported, its ledger row
   written or not (an unknown price charges the whole reservation). Shielded from
   cancellation; a reconciliation that fails is logged, and its holds expire (the retention
   sweeper releases them).
"""

import asyncio
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from aimesh.billing.budgets import Admission, Billed, Budgets, Spender, billed_usd
from aimesh.billing.ledger import Ledger, RunContext
from aimesh.billing.run_bound import RunBound
from aimesh.events import EventName
from aimesh.graphs.events import Event, EventRecorder
from aimesh.llm.attempt import ModelAttempt
from aimesh.llm.route import use_route
from aimesh.llm.selection import ModelSelection

logger = logging.getLogger(__name__)


class BudgetedRuns:
    """Starts the budgeted runs of one process.

    Args:
        budgets: Reserves each run's worst case, reconciles it after.
        ledger: The model-call ledger (one row per provider attempt).
    """

    def __init__(self, budgets: Budgets, ledger: Ledger) -> None:
        self.budgets = budgets
        self.ledger = ledger

    def start(
        self, context: RunContext, run_id: str, sink: Callable[[Event], None]
    ) -> "BudgetedRun":
        """A run not admitted yet, with its event recorder (call from the event loop).

        Args:
            context: Whom the run is for; its ``tenant`` is required (budgets are a tenant's),
                its ``task_id`` is that of the run's holds (None: a direct generation).
            run_id: The id of the run's events (the task id, or a generation's id).
            sink: Receives every event of the run, in order.
        """
        return BudgetedRun(self.budgets, self.ledger, context, run_id, sink)


class BudgetedRun:
    """One run under its budgets: admission, ledger rows of its attempts, reconciliation.

    Args:
        budgets: The budgets.
        ledger: The ledger.
        context: Whom the run is for.
        run_id: The id of the run's events.
        sink: Receives every event of the run, in order.

    Attributes:
        recorder: The run's event recorder, whose attempts go to the ledger: pass it as a
            callback of the run's model calls.
        admission: The run's admission, once :meth:`admit` returned.
    """

    def __init__(
        self,
        budgets: Budgets,
        ledger: Ledger,
        context: RunContext,
        run_id: str,
        sink: Callable[[Event], None],
    ) -> None:
        self._budgets, self._ledger, self.context = budgets, ledger, context
        self.recorder = EventRecorder(run_id, sink, on_attempt=self._attempt)
        self.admission: Admission | None = None
        self._loop = asyncio.get_running_loop()
        self._writes: list[asyncio.Task[None]] = []
        self._billed: list[Billed] = []

    async def admit(
        self,
        bound: RunBound,
        route: Sequence[str],
        selection: ModelSelection | None = None,
        *,
        hold_s: float,
    ) -> Admission:
        """Reserve the run's worst case; emit ``budget`` when a budget downgraded the route.

        Args:
            bound: The run's worst case (model calls, token caps).
            route: The route chosen for the run (link keys, in order).
            selection: The run's model selection (what a downgrade must keep to).
            hold_s: Seconds the run may take at most (its holds expire after that).

        Raises:
            BudgetExceededError: A ``refuse`` budget would go over, or no route fits.
            ValueError: The run's context has no tenant.
        """
        context = self.context
        if context.tenant is None:
            raise ValueError("a budgeted run needs its tenant (RunContext.tenant)")
        self.admission = await self._budgets.admit(
            Spender(context.tenant, context.network_id, context.key_id),
            bound,
            route,
            selection,
            hold_s=hold_s,
            task_id=context.task_id,
        )
        if self.admission.event is not None:
            self.recorder.emit(EventName.BUDGET, data=self.admission.event)
        return self.admission

    @contextmanager
    def on_route(self) -> Iterator[None]:
        """Run the block's model calls on the admitted route.

        Raises:
            RuntimeError: The run was not admitted.
        """
        if self.admission is None:
            raise RuntimeError("a budgeted run runs only once admitted")
        with use_route(self.admission.route):
            yield

    def _attempt(self, attempt: ModelAttempt, agent: str) -> None:
        """Write an attempt to the ledger (called from any thread, in report order)."""
        self._loop.call_soon_threadsafe(self._write, attempt, agent)

    def _write(self, attempt: ModelAttempt, agent: str) -> None:
        self._billed.append(Billed.of(attempt))
        self._writes.append(
            asyncio.create_task(self._ledger.record(attempt, self.context, agent=agent))
        )

    async def settle(self) -> None:
        """Wait for every attempt's ledger row, then reconcile the reservation (shielded).

        Every reported attempt is charged, its ledger row written or not (a row that could
        not be written is logged: the provider billed the call all the same); a failed
        reconciliation is logged: its holds expire and the sweeper releases
        them. Never raises, but ``CancelledError`` when the caller is cancelled meanwhile
        (the settling goes on).
        """
        await asyncio.shield(self._settle())

    async def _settle(self) -> None:
        reported = self._loop.create_future()  # callbacks run in order: every attempt
        self._loop.call_soon_threadsafe(reported.set_result, None)  # reported before is queued
        await reported
        for outcome in await asyncio.gather(*self._writes, return_exceptions=True):
            if isinstance(outcome, BaseException):
                logger.error(
                    "ledger row of run %s not written: %s",
                    self.recorder.task_id,
                    outcome,
                    exc_info=outcome,
                )
        reservation = None if self.admission is None else self.admission.reservation
        if reservation is None or not reservation.holds:
            return
        try:
            await self._budgets.reconcile(reservation, billed_usd(self._billed))
        except Exception:  # its holds expire and the sweeper releases them
            logger.exception(
                "budget reservation %s of run %s not reconciled",
                reservation.id,
                self.recorder.task_id,
            )
