"""The aimesh exception hierarchy.

Every error names the bad value and the fix; ``exit_code`` is what the CLI exits with.
"""

from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aimesh.llm.attempt import ModelAttempt


class AimeshError(Exception):
    """Base class of every error aimesh raises on purpose."""

    exit_code = 1


class InvalidInputError(AimeshError, ValueError):
    """A value given by a person, a file or a client is unusable.

    Args:
        field: Name of the offending field, argument or column.
        problem: What is wrong with the value.
        allowed: What would be accepted instead.
    """

    exit_code = 2

    def __init__(self, field: str, problem: str, allowed: str | None = None) -> None:
        self.field = field
        self.problem = problem
        self.allowed = allowed
        message = f"{field}: {problem}"
        if allowed:
            message += f" (allowed: {allowed})"
        super().__init__(message)


class DataFileError(InvalidInputError):
    """A CSV or dataset file cannot be used for training or scoring."""


class UnknownClientError(InvalidInputError):
    """A client id is not in the portfolio."""

    def __init__(self, client_id: str, example: str = "C00001") -> None:
        super().__init__(
            "client_id",
            f"unknown client {client_id!r}",
            f"an id of the portfolio, such as {example!r}",
        )


class ModelFileError(AimeshError):
    """The local model file is missing, incomplete or fails its checksum."""

    exit_code = 3


class ProviderError(AimeshError):
    """One provider call failed for a reason that justifies trying the next provider."""

    exit_code = 4


class NoProviderError(AimeshError):
    """No LLM provider is configured or usable."""

    exit_code = 4


class AllProvidersFailedError(AimeshError):
    """Every provider of the chain failed.

    Args:
        attempts: Every attempt of the call, in order (built by ``aimesh.llm.chain``); the
            message lists each one's link, error and seconds.
    """

    exit_code = 4

    def __init__(self, attempts: Sequence["ModelAttempt"]) -> None:
        self.attempts = list(attempts)
        lines = "; ".join(
            f"{a.provider}/{a.model_requested}: {a.error} after {a.latency_s:.2f}s"
            for a in attempts
        )
        super().__init__(f"all {len(attempts)} provider attempts failed: {lines}")


class ModelNotFoundError(AimeshError):
    """The ML model registry holds no model under this name (train it first)."""


class ModelUnreadableError(AimeshError):
    """A saved ML model or card exists but cannot be read.

    Args:
        path: The file that failed.
        reason: Why it failed.
    """

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"model file {path} is unreadable ({reason})")


class BookNotFoundError(AimeshError):
    """A tenant has no client book and the sample book is turned off (``AIMESH_SAMPLE_BOOK``).

    Args:
        tenant: The tenant asked about.
    """

    exit_code = 2

    def __init__(self, tenant: str) -> None:
        self.tenant = tenant
        super().__init__(
            f"tenant {tenant!r} has no client book: import your client book first "
            f"(aimesh portfolio import FILE --tenant {tenant} --map client_id=COLUMN)"
        )


class ModelUnavailableError(AimeshError):
    """A client book has no usable model of a kind (no churn outcomes, no monthly charges...).

    Args:
        model: ``churn`` or ``billing-anomaly``.
        reason: Why, e.g. "no churn outcomes: 5000 rows, 0 labelled".
    """

    exit_code = 2

    def __init__(self, model: str, reason: str) -> None:
        self.model = model
        self.reason = reason
        super().__init__(f"no {model} model for this client book: {reason}")


class ScopeNotFoundError(InvalidInputError):
    """A budget's ``scope_id`` is not the tenant, nor a network or API key of it."""


class LedgerPayloadError(AimeshError):
    """A model call attempt cannot be a ledger row (a value longer than its column).

    A fault of the server, not of the client: the message names each bad field.
    """


class StorageError(AimeshError):
    """A database or Redis server cannot be reached, started or migrated."""

    exit_code = 6


class DelegationLimitError(AimeshError):
    """The coordinator exceeded its delegation cap or repeated a delegation too often."""

    exit_code = 5


class BudgetExceededError(AimeshError):
    """A run would go over a budget (or its worst-case cost is unknown), so it may not start.

    Amounts are USD; ``requested_usd`` is None when a price of the run's route is unknown
    (``reason`` says which).

    Args:
        budget: ``{"id", "scope", "scope_id", "period", "on_limit", "limit_usd",
            "spent_usd", "reserved_usd"}`` of the budget that refused, amounts as Decimal.
        requested_usd: The run's worst-case cost, or None when unknown.
        reason: Why the run does not fit, when it is not plain arithmetic.
    """

    def __init__(
        self, budget: dict[str, Any], requested_usd: Decimal | None, reason: str | None = None
    ) -> None:
        self.budget = budget
        self.requested_usd = requested_usd
        self.reason = reason
        self.on_limit: str = budget["on_limit"]
        need = f"{requested_usd} USD" if requested_usd is not None else "an unknown amount"
        message = (
            f"budget {budget['id']} ({budget['scope']} {budget['scope_id']}, per "
            f"{budget['period']}) would be exceeded: limit {budget['limit_usd']} USD, spent "
            f"{budget['spent_usd']}, reserved by running tasks {budget['reserved_usd']}, "
            f"this run needs up to {need}"
        )
        if reason:
            message += f" ({reason})"
        super().__init__(
            message + f"; raise the limit, or wait for the next {budget['period']} (UTC)"
        )

    def detail(self) -> dict[str, Any]:
        """The refusal as JSON-safe data (amounts as decimal strings) for events and 402s."""
        budget = {k: str(v) if k.endswith("_usd") else v for k, v in self.budget.items()}
        requested = None if self.requested_usd is None else str(self.requested_usd)
        return {"budget": budget, "requested_usd": requested, "reason": self.reason}
