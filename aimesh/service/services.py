"""Everything a serving process holds open: database, Redis, event log, checkpointer, runner.

Opened once per process (the API's ``lifespan``), closed in reverse order; nothing here is
created at import time.
"""

import functools
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel
from langgraph.graph.state import CompiledStateGraph
from redis.asyncio import Redis

from aimesh.agents.specialist import MAX_MODEL_CALLS, Specialist
from aimesh.billing.budgets import Budgets
from aimesh.billing.ledger import Ledger
from aimesh.config import Settings
from aimesh.graphs.coordinator import build_coordinator
from aimesh.llm.catalog import ModelInfo, model_links
from aimesh.memory.redis_store import RedisMemory
from aimesh.memory.semantic import SemanticMemory, open_chroma
from aimesh.memory.shared import SharedMemory
from aimesh.portfolio.books import Portfolios
from aimesh.portfolio.store import BookStore
from aimesh.service.audit import AuditLog
from aimesh.service.book_training import BookTraining, training_books
from aimesh.service.budgeted import BudgetedRuns
from aimesh.service.keycache import KeyCache
from aimesh.service.mesh import specialists
from aimesh.service.runner import TaskRunner
from aimesh.store.database import Database
from aimesh.store.eventlog import EventLog
from aimesh.store.keys import server_secret
from aimesh.store.redis import open_redis
from aimesh.store.tables import Agent

GRAPHS_KEPT = 256
"""Compiled coordinators kept per process (one per distinct set of specialists)."""


@dataclass
class Services:
    """The open services of one process.

    Attributes:
        settings: The settings they were opened with.
        db: Durable records.
        redis: Redis (server or embedded).
        events: Task event log (Redis Streams).
        checkpointer: LangGraph checkpointer (conversation threads), on the same database.
        model: Chat model of every agent (the provider chain, or a test's scripted model).
        portfolios: Every tenant's client book (the tools', the scoring API's).
        book_training: Trains new book versions' models in the background.
        secret: HMAC secret of API keys.
        audit: The audit log (group commit).
        budgets: The budgets: checks at submission, reservations, the sweeper's releases.
        links: The provider chain's links (:func:`aimesh.llm.catalog.model_links`), in
            settings order: the routes runs are chosen from.
        budgeted: Starts budgeted runs (tasks, direct generations).
        keys: Verified API keys of this process, evicted on revocation in any process.
        memory: Shared memory of the networks (Redis items, Chroma recall).
        runner: Task queue and workers of this process.
    """

    settings: Settings
    db: Database
    redis: Redis
    events: EventLog
    checkpointer: Any
    model: BaseChatModel
    portfolios: Portfolios
    book_training: BookTraining
    secret: bytes
    audit: AuditLog
    budgets: Budgets
    links: Sequence[ModelInfo]
    budgeted: BudgetedRuns
    keys: KeyCache
    memory: SharedMemory
    runner: TaskRunner


def open_semantic(settings: Settings) -> SemanticMemory:
    """The semantic index: Chroma at ``AIMESH_CHROMA_URL``, else embedded in the data directory.

    Loads the embedding model (seconds); :class:`SharedMemory` calls it on first use.
    """
    from aimesh.memory.embeddings import embedding_function

    client = open_chroma(settings.chroma_url, str(settings.home_dir / "chroma"))
    return SemanticMemory(client, embedding_function())


def _provider_chain(settings: Settings, redis: Redis) -> BaseChatModel:
    """The provider chain, streaming, its circuit breakers shared through Redis."""
    from aimesh.llm.breaker import RedisBreaker
    from aimesh.llm.chain import ProviderChain

    breaker = RedisBreaker(redis, settings.breaker_failures, settings.breaker_cooldown_s)
    return ProviderChain(settings=settings, streaming=True, breaker=breaker)


@asynccontextmanager
async def open_services(
    settings: Settings, model: BaseChatModel | None = None
) -> AsyncIterator[Services]:
    """Open (and migrate) everything; close it all on exit.

    Args:
        settings: Where the database and Redis are, limits, workers.
        model: Chat model for the agents; default: the provider chain (built lazily),
            streaming so that answers reach SSE clients token by token.

    Raises:
        StorageError: The database or Redis cannot be reached, started or migrated.
    """
    async with AsyncExitStack() as stack:
        db = Database(settings.database)
        stack.push_async_callback(db.close)
        await db.migrate()
        redis = await stack.enter_async_context(open_redis(settings.redis_url, settings.home_dir))
        model = model or _provider_chain(settings, redis)
        checkpointer = await stack.enter_async_context(db.checkpointer())
        events = EventLog(redis)
        memory = SharedMemory(RedisMemory(redis), functools.partial(open_semantic, settings))
        portfolios = Portfolios(settings, BookStore(db.engine, settings.home_dir))
        book_training = BookTraining(portfolios, settings.book_training_poll_s)
        await stack.enter_async_context(training_books(book_training))
        audit = AuditLog(db.engine)
        ledger = Ledger(db.engine)
        links = model_links(settings)
        budgets = Budgets(db.engine, settings, links, calls_per_delegation=MAX_MODEL_CALLS)
        budgeted = BudgetedRuns(budgets, ledger)
        keys = KeyCache(db.sessions, server_secret(settings), redis)
        await stack.enter_async_context(keys.listening())
        chat_model = model

        @functools.lru_cache(maxsize=GRAPHS_KEPT)
        def compiled(team: tuple[Specialist, ...]) -> CompiledStateGraph[Any, Any, Any, Any]:
            return build_coordinator(chat_model, checkpointer, team)

        def build_graph(agents: Sequence[Agent]) -> CompiledStateGraph[Any, Any, Any, Any]:
            """The network's coordinator, compiled once per set of specialists (~65 ms)."""
            return compiled(tuple(specialists(agents)))

        runner = TaskRunner(
            db=db,
            events=events,
            redis=redis,
            build_graph=build_graph,
            portfolios=portfolios,
            audit=audit,
            budgeted=budgeted,
            memory=memory,
            links=links,
            workers=settings.task_workers,
            max_repeats=settings.max_repeats,
        )
        await runner.start()
        stack.push_async_callback(runner.stop)
        yield Services(
            settings=settings,
            db=db,
            redis=redis,
            events=events,
            checkpointer=checkpointer,
            model=model,
            portfolios=portfolios,
            book_training=book_training,
            secret=keys.secret,
            audit=audit,
            budgets=budgets,
            links=links,
            budgeted=budgeted,
            keys=keys,
            memory=memory,
            runner=runner,
        )
