"""Runs tasks: in this process, on asyncio workers, highest priority first.

A task is claimed atomically (``pending`` -> ``running``), so when several API processes
share a database each task runs once. Its events go, in order, to the Redis Streams event
log (served to SSE clients by any process), its agent and tool calls to the audit log; it
runs as a budgeted run (:mod:`aimesh.service.budgeted`: reserved, every model call attempt
in the ledger, reconciled). Cancelling reaches the process running the task through Redis
pub/sub.
"""

import asyncio
import functools
import itertools
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from langgraph.graph.state import CompiledStateGraph
from redis.asyncio import Redis
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from aimesh.billing.ledger import LedgerFilter, ModelHistory, RunContext, model_history
from aimesh.context import Context
from aimesh.errors import AimeshError, BookNotFoundError, BudgetExceededError, NoProviderError
from aimesh.events import LAST_EVENTS, EventName
from aimesh.graphs.events import Event, EventRecorder
from aimesh.graphs.run import AskResult, ask
from aimesh.llm.catalog import ModelInfo
from aimesh.llm.providers import plans_delegations
from aimesh.llm.selection import ModelSelection, choose_route
from aimesh.memory.items import MemoryScope
from aimesh.memory.run import RunMemory
from aimesh.memory.shared import SharedMemory
from aimesh.portfolio.books import Portfolios
from aimesh.service import audit
from aimesh.service.budgeted import BudgetedRuns
from aimesh.store.batch import GroupCommit
from aimesh.store.database import Database
from aimesh.store.eventlog import EventLog
from aimesh.store.tables import Agent, Network, RetentionPolicy, Task, utcnow

logger = logging.getLogger(__name__)

CANCEL_CHANNEL = "aimesh:cancel"
TERMINAL = frozenset({"succeeded", "failed", "cancelled", "timed_out"})
GraphBuilder = Callable[[Sequence[Agent]], CompiledStateGraph[Any, Any, Any, Any]]


def is_last(payload: str) -> bool:
    """True for the event that ends a task's log (``complete`` or ``error``)."""
    return json.loads(payload)["event"] in LAST_EVENTS


class TaskRunner:
    """The task queue and workers of one process.

    Args:
        db: The database of tasks and networks.
        events: The event log.
        redis: Redis connection (cancel requests travel on ``aimesh:cancel``).
        build_graph: Compiles the coordinator for a network's agent records.
        portfolios: The client books; each task reads its tenant's current book.
        audit: The audit log (agent and tool calls).
        budgeted: Runs each task under its budgets, its attempts in the ledger.
        memory: Shared memory; each run reads and writes its network's.
        links: The provider chain's links (:func:`aimesh.llm.catalog.model_links`); each
            task runs on the route chosen from them for its ``model_selection``.
        workers: Tasks run at once.
        max_repeats: Loop guard: runs of one identical delegation per task.
    """

    def __init__(
        self,
        *,
        db: Database,
        events: EventLog,
        redis: Redis,
        build_graph: GraphBuilder,
        portfolios: Portfolios,
        audit: audit.AuditLog,
        budgeted: BudgetedRuns,
        memory: SharedMemory,
        links: Sequence[ModelInfo],
        workers: int = 1,
        max_repeats: int = 1,
    ) -> None:
        self.sessions = db.sessions
        self.engine = db.engine
        self.events = events
        self.redis = redis
        self.build_graph = build_graph
        self.portfolios = portfolios
        self.audit = audit
        self.budgeted = budgeted
        self.memory = memory
        self.links = links
        self.max_repeats = max_repeats
        self._queue: asyncio.PriorityQueue[tuple[int, int, str]] = asyncio.PriorityQueue()
        self._order = itertools.count()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._background: list[asyncio.Task[None]] = []
        self._workers = workers
        self._inserts: GroupCommit[dict[str, Any], Task | None] = GroupCommit(
            self.engine, _insert_owned
        )

    async def start(self) -> None:
        """Start the workers and the cancel listener; queue the tasks still pending."""
        self._background = [asyncio.create_task(self._work()) for _ in range(self._workers)]
        self._background.append(asyncio.create_task(self._listen_for_cancels()))
        async with self.sessions() as session:
            pending = await session.execute(
                select(Task.id, Task.priority).where(Task.status == "pending")
            )
            for task_id, priority in pending:
                self.enqueue(task_id, priority)

    async def stop(self) -> None:
        """Stop the workers, then cancel the running tasks (they end ``cancelled``).

        Workers stop first: a worker whose task was cancelled would take the next one.
        """
        for job in self._background:
            job.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        running = list(self._running.values())
        for job in running:
            job.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    async def submit(self, task: dict[str, Any]) -> Task | None:
        """Store a new task (``pending``) and queue it; None if its network is not its tenant's.

        Concurrent submissions share transactions (group commit).

        Args:
            task: Column values of the task (``id``, ``tenant``, ``network_id``, ``task``,
                ...); the table's defaults fill the rest.

        Raises:
            SQLAlchemyError: The task could not be written.
        """
        stored = await self._inserts.submit(task)
        if stored is not None:
            self.enqueue(stored.id, stored.priority)
        return stored

    def enqueue(self, task_id: str, priority: int = 0) -> None:
        """Queue a task; a task already claimed elsewhere is skipped when its turn comes."""
        self._queue.put_nowait((-priority, next(self._order), task_id))

    async def cancel(self, task_id: str) -> None:
        """Cancel a task: a pending one at once, a running one wherever it runs."""
        async with self.sessions.begin() as session:
            claimed = await session.execute(
                update(Task)
                .where(Task.id == task_id, Task.status == "pending")
                .values(status="cancelled", finished_at=utcnow(), error=_error("TaskCancelled"))
            )
        if claimed.rowcount:  # type: ignore[attr-defined]
            recorder = EventRecorder(task_id, lambda event: None)
            await self._append(recorder.emit(EventName.ERROR, data=_error("TaskCancelled")))
        else:
            await self.redis.publish(CANCEL_CHANNEL, task_id)

    async def _listen_for_cancels(self) -> None:
        async with self.redis.pubsub() as pubsub:
            await pubsub.subscribe(CANCEL_CHANNEL)
            async for message in pubsub.listen():
                if message["type"] == "message":
                    job = self._running.get(message["data"].decode())
                    if job is not None:
                        job.cancel()

    async def _work(self) -> None:
        while True:
            _, _, task_id = await self._queue.get()
            job = asyncio.create_task(self.run(task_id))
            self._running[task_id] = job
            job.add_done_callback(functools.partial(self._finished, task_id))
            await asyncio.wait([job])  # a cancelled job ends here; a cancelled worker leaves it

    def _finished(self, task_id: str, job: asyncio.Task[None]) -> None:
        self._running.pop(task_id, None)

    async def run(self, task_id: str) -> None:
        """Claim and run one task to its end; a task not ``pending`` is left alone."""
        claim = (
            update(Task)
            .where(Task.id == task_id, Task.status == "pending")
            .values(status="running", started_at=utcnow())
            .returning(*Task.__table__.c)
        )
        async with self.engine.begin() as connection:  # Core: ~1 ms less than a session
            row = (await connection.execute(claim)).first()
        if row is None:
            return
        task = Task(**row._mapping)
        writer = _EventWriter(self, task)
        budgeted = writer.run
        writer.recorder.emit(
            EventName.STARTED, data={"task": task.task, "thread_id": task.thread_id}
        )
        async with self.sessions() as session:
            network = await session.get_one(Network, task.network_id)
            agents = (
                await session.scalars(select(Agent).where(Agent.network_id == network.id))
            ).all()
            policy = await session.get(RetentionPolicy, task.tenant)
        memory = RunMemory(
            self.memory,
            MemoryScope(task.tenant, task.network_id),
            policy=policy.days if policy else {},
            task_id=task.id,
        )
        question = _question(task)
        outcome: dict[str, Any]
        try:
            async with asyncio.timeout(network.timeout_seconds):
                book = await self.portfolios.book(task.tenant)
                selection = _selection(task)
                route = await self._route(task, selection, writer)
                await budgeted.admit(
                    self.budgeted.budgets.bound(
                        network.max_iterations, [a.max_tokens for a in agents]
                    ),
                    route,
                    selection,
                    hold_s=network.timeout_seconds,
                )
                with budgeted.on_route():
                    result = await ask(
                        self.build_graph(agents),
                        question,
                        context=replace(
                            Context.from_settings(self.portfolios.settings, book),
                            max_delegations=network.max_iterations,
                            max_repeats=self.max_repeats,
                            memory=memory,
                            plan=plans_delegations(self.portfolios.settings, route),
                        ),
                        thread_id=task.thread_id,
                        max_chars=len(question),
                        recorder=writer.recorder,
                    )
            outcome = _succeeded(result)
        except TimeoutError:
            outcome = writer.fail("timed_out", "TaskTimeout", f"{network.timeout_seconds} s")
        except asyncio.CancelledError:
            outcome = writer.fail("cancelled", "TaskCancelled", "cancelled by request")
        except BudgetExceededError as error:
            writer.recorder.emit(EventName.BUDGET, data={"action": "refused", **error.detail()})
            outcome = writer.fail("failed", "budget_exceeded", str(error))
        except BookNotFoundError as error:  # before ask(): no error event yet
            outcome = writer.fail("failed", type(error).__name__, str(error))
        except AimeshError as error:  # ask() has logged the error event
            outcome = writer.fail("failed", type(error).__name__, str(error), emit=False)
        except Exception as error:
            logger.exception("task %s failed", task_id)
            outcome = writer.fail("failed", "InternalError", type(error).__name__)
        await writer.close()
        await budgeted.settle()  # every outcome gets here
        async with self.sessions.begin() as session:
            await session.execute(
                update(Task).where(Task.id == task_id).values(finished_at=utcnow(), **outcome)
            )

    async def _route(
        self, task: Task, selection: ModelSelection | None, writer: "_EventWriter"
    ) -> list[str]:
        """The chain links the task may use, in order, chosen for its ``model_selection``.

        Without a selection: the default chain (no history needed). With one: from the
        links' capabilities, prices and the tenant's measured history in the ledger.

        Raises:
            NoProviderError: No configured model meets the selection (after its ``error``
                event).
        """
        history: dict[str, ModelHistory] = {}
        if selection is not None:
            async with self.sessions() as session:
                history = await model_history(session, LedgerFilter(task.tenant))
        try:
            return choose_route(selection, self.links, history)
        except NoProviderError as error:  # the run's error event, as ask() logs its own
            writer.recorder.emit(EventName.ERROR, data=_error(type(error).__name__, str(error)))
            raise

    async def _append(self, event: Event) -> None:
        await self.events.append(event.task_id, event.id, event.model_dump_json())


async def _insert_owned(
    connection: AsyncConnection, tasks: Sequence[dict[str, Any]]
) -> list[Task | None]:
    """Insert the tasks whose network belongs to their tenant; each stored task or None."""
    networks = select(Network.id, Network.tenant).where(
        Network.id.in_({task["network_id"] for task in tasks})
    )
    owners: dict[str, str] = dict((await connection.execute(networks)).all())
    accepted = [task for task in tasks if owners.get(task["network_id"]) == task["tenant"]]
    stored: dict[str, Task] = {}
    if accepted:
        rows = await connection.execute(insert(Task).returning(*Task.__table__.c), accepted)
        stored = {row.id: Task(**row._mapping) for row in rows}
    return [stored.get(task["id"]) for task in tasks]


def _selection(task: Task) -> ModelSelection | None:
    """The task's ``model_selection``; None: the default chain."""
    return None if task.model_selection is None else ModelSelection(**task.model_selection)


def _question(task: Task) -> str:
    if not task.context:
        return task.task
    return f"{task.task}\n\nContext (JSON): {json.dumps(task.context, sort_keys=True)}"


def _error(kind: str, message: str = "") -> dict[str, str]:
    return {"type": kind, "message": message or kind}


def _succeeded(result: AskResult) -> dict[str, Any]:
    return {
        "status": "succeeded",
        "result": result.model_dump(mode="json"),
        "agents": result.agents,
        "tokens_input": result.tokens.input,
        "tokens_output": result.tokens.output,
        "cost_usd": result.cost_usd,
    }


class _EventWriter:
    """Sends a task's events, in order, to the event log and the audit log.

    Agent and tool calls go to the audit log; the task's budgeted run (:attr:`run`) writes
    its model call attempts to the ledger.
    """

    def __init__(self, runner: TaskRunner, task: Task) -> None:
        self.runner = runner
        self.task_id = task.id
        self.network_id = task.network_id
        self.actor = audit.Actor(task.tenant, task.key_id, task.user_id)
        context = RunContext(task.tenant, task.network_id, task.id, task.key_id, task.user_id)
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self.loop = asyncio.get_running_loop()
        self.run = runner.budgeted.start(context, task.id, self._put)
        self.recorder = self.run.recorder
        self.drain = asyncio.create_task(self._drain())

    def _put(self, event: Event | None) -> None:
        """Queue an event (None: the end) from any thread, in emission order.

        Callbacks may run off the event loop, so every item goes through
        ``call_soon_threadsafe``; the end marker too, or it would overtake events
        scheduled just before it.
        """
        self.loop.call_soon_threadsafe(self.queue.put_nowait, event)

    def fail(self, status: str, kind: str, message: str, *, emit: bool = True) -> dict[str, Any]:
        """The outcome of a task that did not succeed; emits its ``error`` event."""
        if emit:
            self.recorder.emit(EventName.ERROR, data=_error(kind, message))
        return {"status": status, "error": _error(kind, message)}

    async def close(self) -> None:
        """Wait until every event is written."""
        self._put(None)
        await asyncio.shield(self.drain)

    async def _drain(self) -> None:
        while (event := await self.queue.get()) is not None:
            await self.runner._append(event)
            for call in _audited_calls(event, self.network_id):
                await self.runner.audit.record(self.actor, task_id=self.task_id, **call)


def _audited_calls(event: Event, network_id: str) -> list[dict[str, Any]]:
    """Audit entries for an agent or tool call event; [] for other events.

    Model calls are not audited: the ledger has one row per provider attempt.
    """
    status = event.data.get("status")
    common = {"agent": event.agent, "network_id": network_id}
    if event.event in (EventName.AGENT, EventName.TOOL) and status in ("finished", "error"):
        name = event.tool if event.event == EventName.TOOL else event.agent
        return [
            {
                "action": f"{event.event}.call",
                "resource_type": event.event,
                "resource_id": name,
                "result": "success" if status == "finished" else "error",
                "detail": {**common, "elapsed_s": event.data.get("elapsed_s")},
            }
        ]
    return []
