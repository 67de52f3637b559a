"""The aimesh exception hierarchy.

Every error names the bad value and the fix; ``exit_code`` is what the CLI exits with.
"""

from typing import Any


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
        attempts: One dict per attempt with ``provider``, ``model``, ``error`` and
            ``elapsed_s`` (seconds).
    """

    exit_code = 4

    def __init__(self, attempts: list[dict[str, Any]]) -> None:
        self.attempts = attempts
        lines = "; ".join(
            f"{a['provider']}/{a['model']}: {a['error']} after {a['elapsed_s']:.2f}s"
            for a in attempts
        )
        super().__init__(f"all {len(attempts)} provider attempts failed: {lines}")


class StorageError(AimeshError):
    """A database or Redis server cannot be reached, started or migrated."""

    exit_code = 6


class DelegationLimitError(AimeshError):
    """The coordinator exceeded its delegation cap or repeated a delegation too often."""

    exit_code = 5
