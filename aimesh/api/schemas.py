"""Request and response bodies of the REST API (``*Create`` in, ``*Public`` out).

Every request model rejects unknown fields and bounds every string, number and list.
"""

import json
import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import Query
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StringConstraints,
    WithJsonSchema,
)

from aimesh.billing.admin import BudgetPeriod, BudgetScope, OnLimit
from aimesh.billing.amounts import LIMIT_PATTERN, MAX_LIMIT_USD, parse_limit
from aimesh.llm.selection import ModelSelection
from aimesh.memory.items import MemoryType
from aimesh.ml.registry import ModelCard
from aimesh.portfolio.book import BookModel, FieldName
from aimesh.store.keys import TENANT_PATTERN, KeyScope, Role
from aimesh.tools.registry import TOOLS

T = TypeVar("T")
RecordId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
AgentName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{2,39}$")]
# Checked against the registry by the routes (an unknown tool: 422 naming the known ones).
ToolName = Annotated[str, WithJsonSchema({"type": "string", "enum": sorted(TOOLS)})]
MAX_CONTEXT_BYTES = 10_000
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def _rfc3339(value: Any) -> Any:
    """Only RFC 3339 date-times, as the schema says (not Unix times, not bare dates)."""
    if isinstance(value, datetime) or (isinstance(value, str) and _RFC3339.fullmatch(value)):
        return value
    raise ValueError(
        "is not an RFC 3339 date-time with a UTC offset; use e.g. 2025-01-31T12:00:00Z"
    )


DateTime = Annotated[datetime, BeforeValidator(_rfc3339)]


def _json_number(value: Any) -> Any:
    """Numbers only, as the schema says: not strings ("5"), not booleans (true)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a number")
    return value


# After the bounds in ``Annotated[int, Field(ge=..), JsonNumber]``, else the schema loses them.
JsonNumber = BeforeValidator(_json_number)


def _small_json(value: dict[str, Any]) -> dict[str, Any]:
    size = len(json.dumps(value, default=str))
    if size > MAX_CONTEXT_BYTES:
        raise ValueError(f"is {size} bytes as JSON; at most {MAX_CONTEXT_BYTES} allowed")
    return value


ContextObject = Annotated[
    dict[str, Any],
    AfterValidator(_small_json),
    Field(
        max_length=50, description="Extra facts for the agents (JSON object, <= 50 keys, 10 kB)."
    ),
]
TaskStatus = Literal["pending", "running", "succeeded", "failed", "cancelled", "timed_out"]
ProviderPreference = Literal["anthropic", "openai", "google", "local"]


class Strict(BaseModel):
    """Base of request bodies: unknown fields are an error."""

    model_config = ConfigDict(extra="forbid")


class Public(BaseModel):
    """Base of response bodies, read from ORM records."""

    model_config = ConfigDict(from_attributes=True)


class Page(BaseModel, Generic[T]):
    """One page of a list, newest first."""

    items: list[T]
    total: int = Field(description="Items matching the filters, on all pages.")
    limit: int
    offset: int


# --- agents ------------------------------------------------------------------------


class AgentCreate(Strict):
    """A custom specialist, defined as data: it becomes one more tool of the coordinator."""

    name: AgentName = Field(description="Lowercase name; the coordinator calls ask_<name>.")
    description: Annotated[str, StringConstraints(min_length=10, max_length=500)] = Field(
        description="When the coordinator should ask this agent (its tool description)."
    )
    prompt: Annotated[str, StringConstraints(min_length=10, max_length=4000)] = Field(
        description="The agent's system prompt."
    )
    tools: list[ToolName] = Field(
        min_length=1, max_length=8, description="Registered tools the agent may call."
    )
    model: ProviderPreference | None = Field(
        default=None, description="Provider tried first for this agent; the chain follows."
    )
    temperature: Annotated[float, Field(ge=0, le=2), JsonNumber] | None = None
    max_tokens: Annotated[int, Field(ge=16, le=8192), JsonNumber] | None = None


class AgentPublic(Public):
    """An agent of a network: ``builtin`` (coordinator and default specialists) or ``custom``."""

    id: str
    network_id: str
    name: str
    kind: Literal["builtin", "custom"]
    description: str
    prompt: str | None
    tools: list[str]
    model: str | None
    temperature: float | None
    max_tokens: int | None
    created_at: datetime


# --- networks ----------------------------------------------------------------------


class NetworkCreate(Strict):
    """A new network; without ``agents`` it gets the coordinator and the default specialists."""

    name: Name
    description: Annotated[str, StringConstraints(max_length=1000)] = ""
    max_iterations: Annotated[int, JsonNumber] = Field(
        default=6, ge=1, le=50, description="Delegations per task."
    )
    timeout_seconds: Annotated[int, JsonNumber] = Field(
        default=600, ge=1, le=86_400, description="Per task, seconds."
    )
    agents: list[AgentCreate] | None = Field(
        default=None, max_length=20, description="Custom specialists instead of the defaults."
    )


class NetworkPublic(Public):
    """A network with its agents."""

    id: str
    name: str
    description: str
    max_iterations: int
    timeout_seconds: int
    created_at: datetime
    agents: list[AgentPublic]


# --- tasks -------------------------------------------------------------------------


class TaskCreate(Strict):
    """A task for a network: a request in plain language, with optional context."""

    task: Text
    context: ContextObject = Field(default_factory=dict)
    priority: Annotated[int, JsonNumber] = Field(
        default=0, ge=0, le=9, description="Higher runs first."
    )
    model_selection: ModelSelection | None = Field(
        default=None,
        description="What the task needs from its models; the chain is chosen from it. "
        "Omitted or null: the default chain.",
    )


class TaskPublic(Public):
    """A task: status, outcome, agents that worked on it, tokens and cost."""

    id: str
    network_id: str
    thread_id: str
    task: str
    context: dict[str, Any]
    priority: int
    model_selection: dict[str, Any] | None
    status: TaskStatus
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    agents: list[str]
    tokens_input: int
    tokens_output: int
    cost_usd: Decimal | None = Field(description="USD; null when a price is unknown.")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


# --- threads -----------------------------------------------------------------------


class ThreadCreate(Strict):
    """A new conversation."""

    title: Annotated[str, StringConstraints(max_length=200)] = ""


class ThreadPublic(Public):
    """A conversation of a network."""

    id: str
    network_id: str
    title: str
    created_at: datetime


class MessageCreate(Strict):
    """A question in a thread; it runs as a task of the thread's network."""

    content: Text
    context: ContextObject = Field(default_factory=dict)


class MessagePublic(BaseModel):
    """One message of a conversation, OpenAI-style role and content."""

    role: Literal["user", "assistant"]
    content: str


class GenerateCreate(Strict):
    """A prompt for direct streaming through the provider chain (no agents, no tools)."""

    prompt: Annotated[str, StringConstraints(min_length=1, max_length=8000)]
    system: Annotated[str, StringConstraints(max_length=4000)] | None = None
    model: ProviderPreference | None = Field(
        default=None, description="Provider tried first; the chain falls back from it."
    )
    temperature: Annotated[float, Field(ge=0, le=2), JsonNumber] | None = None
    max_tokens: Annotated[int, Field(ge=16, le=8192), JsonNumber] | None = None


# --- security ----------------------------------------------------------------------


class ApiKeyCreate(Strict):
    """A new key for the caller's tenant."""

    user_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.@-]{1,64}$")]
    role: Role = "user"
    scopes: list[KeyScope] | None = Field(default=None, description="Default: all of the role's.")
    name: Annotated[str, StringConstraints(max_length=100)] | None = None
    expires_at: DateTime | None = Field(default=None, description="Optional expiry (UTC).")


class ApiKeyPublic(Public):
    """A key as listed: never its secret."""

    id: str
    tenant: str
    user_id: str
    role: str
    scopes: list[str]
    name: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyPublic):
    """A key just created: ``api_key`` is shown this once."""

    api_key: str


class AuditEntryPublic(Public):
    """One audit-log entry."""

    id: int
    at: datetime
    key_id: str | None
    user_id: str | None
    role: str | None
    action: str
    resource_type: str
    resource_id: str | None
    client_ip: str | None
    result: str
    status_code: int | None
    cost_usd: Decimal | None
    task_id: str | None
    detail: dict[str, Any]


RetentionDays = Annotated[int, Field(ge=1, le=3650), JsonNumber]


class RetentionPolicyCreate(Strict):
    """Days to keep each kind of data.

    ``retention_days`` sets every kind, ``memory`` every memory type; a named field
    overrides both. A memory item's days are its TTL, fixed when it is written.
    """

    retention_days: RetentionDays | None = None
    tasks: RetentionDays | None = None
    events: RetentionDays | None = None
    memory: RetentionDays | None = None
    memory_fact: RetentionDays | None = None
    memory_context: RetentionDays | None = None
    memory_decision: RetentionDays | None = None
    memory_feedback: RetentionDays | None = None
    audit: RetentionDays | None = None


class RetentionPolicyPublic(BaseModel):
    """The tenant's policy in days per data type and the last sweep's report."""

    tasks: int
    events: int
    memory_fact: int
    memory_context: int
    memory_decision: int
    memory_feedback: int
    audit: int
    updated_at: datetime | None
    last_sweep: dict[str, Any] | None


# --- memory --------------------------------------------------------------------------


class MemoryCreate(Strict):
    """An item for the network's shared memory (e.g. feedback on an answer)."""

    type: MemoryType
    content: Annotated[str, Field(min_length=1, max_length=4000)]
    task_id: Annotated[
        str | None, Field(pattern=r"^[0-9a-f]{32}$", description="The task it is about.")
    ] = None
    ttl_days: RetentionDays | None = Field(
        default=None, description="Days to keep it; default: the retention policy's days."
    )


class MemoryPublic(BaseModel):
    """A memory item; ``distance`` (cosine, 0-2) only on results of a text query."""

    id: str
    type: MemoryType
    content: str
    source: dict[str, Any] = Field(description="kind (agent/tool/task/user), name, task_id")
    network_id: str
    created_at: datetime
    expires_at: datetime
    distance: float | None = None


class MemoryList(BaseModel):
    """Items newest first, or nearest in meaning first when ``query`` was given."""

    items: list[MemoryPublic]
    query: str | None
    limit: int


# --- budgets ---------------------------------------------------------------------------

LimitUsd = Annotated[
    Decimal,
    PlainValidator(parse_limit),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": LIMIT_PATTERN,
            "examples": ["25.50"],
            "description": f"USD per period as a decimal string: above 0, at most "
            f"{MAX_LIMIT_USD}, at most 6 decimals.",
        }
    ),
]


class BudgetCreate(Strict):
    """A spending limit per UTC day or month on the tenant, one of its networks or keys.

    Every task run it applies to reserves its worst-case cost first; at the limit the run
    is refused (HTTP 402 at submission, ``budget_exceeded`` when it would start) or, with
    ``on_limit: downgrade``, runs on cheaper models whose worst case fits.
    """

    scope: BudgetScope = Field(description="What the limit applies to.")
    scope_id: Annotated[str, StringConstraints(pattern=TENANT_PATTERN)] = Field(
        description="The tenant's own name (scope tenant), a network id (network) or an "
        "API key id (key) of the tenant."
    )
    period: BudgetPeriod = Field(description="UTC calendar day or month.")
    limit_usd: LimitUsd
    on_limit: OnLimit = Field(
        default="refuse",
        description="At the limit: refuse runs, or downgrade them to cheaper models.",
    )


class BudgetPublic(BaseModel):
    """A budget with its current window's spend and the worst cases held by running tasks."""

    id: str
    scope: BudgetScope
    scope_id: str
    period: BudgetPeriod
    limit_usd: Decimal = Field(description="USD per period.")
    on_limit: OnLimit
    created_at: datetime
    window_start: datetime = Field(description="Start of the current UTC day or month.")
    spent_usd: Decimal = Field(description="USD spent by finished runs in this window.")
    reserved_usd: Decimal = Field(
        description="USD held by running tasks (their worst cases) in this window."
    )


# --- portfolio -----------------------------------------------------------------------

CellValue = str | int | float | bool | None


class BookRows(Strict):
    """A client book import as JSON rows.

    Attributes:
        mapping: Field -> column of the rows (``client_id`` required; ``name``,
            ``churned``, ``monthly_charges``, ``tenure_months``, ``total_charges``).
        rows: One object per client, column -> value (text, number, boolean or null).
    """

    mapping: dict[FieldName, Name] = Field(min_length=1, max_length=6)
    rows: list[dict[Annotated[str, StringConstraints(max_length=200)], CellValue]] = Field(
        min_length=1
    )


class BookClient(BaseModel):
    """One client of a book: every column's value (null when missing)."""

    book_version: int = Field(description="The book version read (0: the sample book).")
    sample: bool
    client_id: str
    values: dict[str, CellValue]


class BookClients(BaseModel):
    """A page of a book's clients, in book order."""

    book_version: int
    sample: bool
    total: int = Field(description="Clients matching the filters.")
    limit: int
    offset: int
    clients: list[BookClient]


class BookModelCard(BaseModel):
    """One model of a book version, with its card once trained."""

    book_version: int
    model: BookModel
    card: ModelCard | None = None


FILTER_PATTERN = r"^[^=]+=.+$"
"""A filter's text: ``column=value`` (a value may be ``a|b`` or ``lo..hi``)."""

REPEATABLE_QUERY = frozenset({"filter"})
"""Query parameters that may be given more than once (lists); any other may not."""

FilterQuery = Annotated[
    list[Annotated[str, StringConstraints(pattern=FILTER_PATTERN, max_length=500)]],
    Query(
        alias="filter",
        max_length=20,
        description="A segment filter: column=value, column=a|b (one of) or column=lo..hi "
        "(a number range; lo.. and ..hi too); several filters all apply.",
    ),
]


class PriceRecommendationCreate(Strict):
    """What a price recommendation may change.

    Attributes:
        max_change_pct: Largest price change considered, percent either way; None for the
            server's default (``AIMESH_PRICE_CHANGE_LIMIT``, 15%).
        keep_churn_risk: True when the client's churn risk may not rise.
    """

    max_change_pct: Annotated[float, Field(gt=0, le=50), JsonNumber] | None = None
    keep_churn_risk: bool = True
