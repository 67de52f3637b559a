"""The durable records (SQLAlchemy 2 ORM): keys, networks, agents, threads, tasks, audit, budgets.

The model-call ledger and the versions of the tenants' client books are here too.
Every row but a retention policy's belongs to one tenant (an MSP); queries filter on it.
Times are timezone-aware UTC; money is a decimal string in USD (None = unknown).
"""

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def new_id() -> str:
    """A fresh record id: 32 lowercase hex digits (UUID4)."""
    return uuid.uuid4().hex


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A datetime stored as naive UTC and read back timezone-aware (SQLite keeps no zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert to naive UTC for storage."""
        return value.astimezone(UTC).replace(tzinfo=None) if value else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Mark a stored value as UTC."""
        return value.replace(tzinfo=UTC) if value else None


class USD(TypeDecorator[Decimal]):
    """An exact USD amount stored as a decimal string (no float rounding on any database)."""

    impl = String(40)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> str | None:
        """Store the exact decimal digits."""
        return None if value is None else str(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Decimal | None:
        """Read the digits back as a Decimal."""
        return None if value is None else Decimal(value)


class Base(DeclarativeBase):
    """Base of every aimesh table."""

    type_annotation_map = {datetime: UTCDateTime(), Decimal: USD(), dict[str, Any]: JSON}


class ApiKey(Base):
    """An API key; only the HMAC-SHA256 of the key is stored."""

    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    secret_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    created_by: Mapped[str | None] = mapped_column(String(32))


class Network(Base):
    """A named mesh: its limits; its agents, threads and tasks hang off it."""

    __tablename__ = "networks"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    max_iterations: Mapped[int] = mapped_column(Integer)
    timeout_seconds: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(32))
    agents: Mapped[list["Agent"]] = relationship(
        lazy="raise", order_by="Agent.created_at, Agent.name", passive_deletes=True
    )


class Agent(Base):
    """An agent of a network: a built-in one or a custom specialist defined as data."""

    __tablename__ = "agents"
    __table_args__ = (Index("ix_agents_network_name", "network_id", "name", unique=True),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    network_id: Mapped[str] = mapped_column(ForeignKey("networks.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text)
    prompt: Mapped[str | None] = mapped_column(Text)
    tools: Mapped[list[str]] = mapped_column(JSON)
    model: Mapped[str | None] = mapped_column(String(100))
    temperature: Mapped[float | None]
    max_tokens: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Thread(Base):
    """A conversation in a network; its messages live in the LangGraph checkpointer."""

    __tablename__ = "threads"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    network_id: Mapped[str] = mapped_column(ForeignKey("networks.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(32))


class Task(Base):
    """One request to a network, its status and outcome."""

    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_tenant_network_created", "tenant", "network_id", "created_at"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant: Mapped[str] = mapped_column(String(64))
    network_id: Mapped[str] = mapped_column(ForeignKey("networks.id", ondelete="CASCADE"))
    thread_id: Mapped[str] = mapped_column(String(64), index=True)
    task: Mapped[str] = mapped_column(Text)
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    model_selection: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    agents: Mapped[list[str]] = mapped_column(JSON, default=list)
    tokens_input: Mapped[int] = mapped_column(Integer, default=0)
    tokens_output: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[Decimal | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    key_id: Mapped[str | None] = mapped_column(String(32))
    user_id: Mapped[str | None] = mapped_column(String(64))


class AuditEntry(Base):
    """One audited action: who, what, when, from where, result and cost. Append-only."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_tenant_at", "tenant", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    tenant: Mapped[str | None] = mapped_column(String(64))
    key_id: Mapped[str | None] = mapped_column(String(32))
    user_id: Mapped[str | None] = mapped_column(String(64))
    role: Mapped[str | None] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64))
    resource_type: Mapped[str] = mapped_column(String(32))
    resource_id: Mapped[str | None] = mapped_column(String(64))
    client_ip: Mapped[str | None] = mapped_column(String(64))
    result: Mapped[str] = mapped_column(String(16))
    status_code: Mapped[int | None]
    cost_usd: Mapped[Decimal | None]
    task_id: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class RetentionPolicy(Base):
    """How many days each kind of data is kept, per tenant; and the last sweep's report."""

    __tablename__ = "retention_policies"
    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    days: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(32))
    last_sweep: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class LedgerEntry(Base):
    """One model call attempt through the provider chain, failed ones included. Append-only.

    Tokens are as the provider reported them (None = not reported); ``cost_usd`` is priced by
    genai-prices (``price_source`` names its version), None when unknown, 0 for the local model.
    """

    __tablename__ = "model_ledger"
    __table_args__ = (Index("ix_model_ledger_tenant_at", "tenant", "at"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    tenant: Mapped[str | None] = mapped_column(String(64))
    network_id: Mapped[str | None] = mapped_column(String(32))
    task_id: Mapped[str | None] = mapped_column(String(32), index=True)
    key_id: Mapped[str | None] = mapped_column(String(32))
    user_id: Mapped[str | None] = mapped_column(String(64))
    agent: Mapped[str | None] = mapped_column(String(40))
    tool: Mapped[str | None] = mapped_column(String(64))
    provider: Mapped[str] = mapped_column(String(16))
    model_requested: Mapped[str] = mapped_column(String(100))
    model_used: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    streamed: Mapped[bool] = mapped_column(default=False)
    input_tokens: Mapped[int | None] = mapped_column(Integer)
    output_tokens: Mapped[int | None] = mapped_column(Integer)
    cached_tokens: Mapped[int | None] = mapped_column(Integer)
    reasoning_tokens: Mapped[int | None] = mapped_column(Integer)
    cost_usd: Mapped[Decimal | None]
    price_source: Mapped[str | None] = mapped_column(String(64))
    latency_s: Mapped[float] = mapped_column(Float)


class Budget(Base):
    """A spending limit (USD per day or month) on a tenant, one of its networks or an API key."""

    __tablename__ = "budgets"
    __table_args__ = (
        Index("ix_budgets_scope", "tenant", "scope", "scope_id", "period", unique=True),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(16))
    scope_id: Mapped[str] = mapped_column(String(64))
    period: Mapped[str] = mapped_column(String(8))
    limit_usd: Mapped[Decimal]
    on_limit: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(32))


class BudgetWindow(Base):
    """Spend and open reservations of one budget in one period window, in nano-USD (1e-9).

    Integers, so that a reservation is one conditional ``UPDATE`` on any database.
    """

    __tablename__ = "budget_windows"
    budget_id: Mapped[str] = mapped_column(
        ForeignKey("budgets.id", ondelete="CASCADE"), primary_key=True
    )
    window_start: Mapped[datetime] = mapped_column(primary_key=True)
    spent_nusd: Mapped[int] = mapped_column(BigInteger, default=0)
    reserved_nusd: Mapped[int] = mapped_column(BigInteger, default=0)


class BudgetHold(Base):
    """What one run's reservation holds in one budget window, until released.

    Its run releases it when it ends; a hold past ``expires_at`` outlived its run (the
    process died) and is released by the sweeper, so money is never held for good.
    """

    __tablename__ = "budget_holds"
    reservation_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    budget_id: Mapped[str] = mapped_column(
        ForeignKey("budgets.id", ondelete="CASCADE"), primary_key=True
    )
    window_start: Mapped[datetime]
    nusd: Mapped[int] = mapped_column(BigInteger)
    task_id: Mapped[str | None] = mapped_column(String(32))
    expires_at: Mapped[datetime] = mapped_column(index=True)


class BookRecord(Base):
    """One version of a tenant's client book: its schema, source and models' status.

    The rows themselves are a Parquet file named by tenant and version
    (:class:`aimesh.portfolio.store.BookStore`); ``sha256`` is that file's. ``status`` is
    ``training`` until every model is terminal, then ``ready`` or ``failed``; a trainer
    takes a version by setting ``claimed_at`` with a conditional ``UPDATE``.
    """

    __tablename__ = "book_versions"
    __table_args__ = (
        Index("ix_book_versions_tenant_version", "tenant", "version", unique=True),
        Index("ix_book_versions_status", "status"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64))
    rows: Mapped[int] = mapped_column(Integer)
    columns: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    label: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    mapping: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    models: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    claimed_at: Mapped[datetime | None]
    ready_at: Mapped[datetime | None]
