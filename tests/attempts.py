"""Model call attempts for tests: a valid one's fields, and the attempt the chain would build."""

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from aimesh.llm.attempt import ModelAttempt

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def attempt_fields(**override: Any) -> dict[str, Any]:
    """The fields of a valid successful attempt (a fresh id, at :data:`T0`); ``override``
    replaces some, with any value (invalid ones included)."""
    values: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "at": T0,
        "provider": "openai",
        "model_requested": "gpt-4.1-mini",
        "model_used": "gpt-4.1-mini-2025-04-14",
        "status": "success",
        "error": None,
        "streamed": True,
        "input_tokens": 1200,
        "output_tokens": 300,
        "cached_tokens": 1000,
        "reasoning_tokens": None,
        "cost_usd": Decimal("0.00093"),
        "price_source": "genai-prices 0.0.40",
        "latency_s": 0.75,
    }
    return {**values, **override}


def attempt(**override: Any) -> ModelAttempt:
    """A valid attempt as the chain builds it; ``override`` replaces some fields."""
    return ModelAttempt(**attempt_fields(**override))


def failure(**override: Any) -> ModelAttempt:
    """A failed attempt: no answer, so no tokens and no price."""
    empty = dict.fromkeys(("input_tokens", "output_tokens", "cached_tokens", "cost_usd"))
    failed = {"status": "error", "error": "APIStatusError: Error code: 503", "model_used": None}
    return attempt(**{**failed, "price_source": None, **empty, **override})
