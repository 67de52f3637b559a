"""The typed model-attempt record: strict types, every bad field named, JSON form as sent."""

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from aimesh.llm.attempt import ModelAttempt
from tests.attempts import T0, attempt_fields

FAILED = {"status": "error", "error": "APIStatusError: Error code: 503", "model_used": None}
BAD = {
    "missing field": ({k: v for k, v in attempt_fields().items() if k != "latency_s"}, "latency_s"),
    "unknown field": (attempt_fields(temperature=0.2), "temperature"),
    "token count as a string": (attempt_fields(input_tokens="1200"), "input_tokens"),
    "token count as a bool": (attempt_fields(output_tokens=True), "output_tokens"),
    "negative tokens": (attempt_fields(cached_tokens=-1), "cached_tokens"),
    "USD as a float": (attempt_fields(cost_usd=0.00093), "cost_usd"),
    "USD as a string": (attempt_fields(cost_usd="0.00093"), "cost_usd"),
    "negative USD": (attempt_fields(cost_usd=Decimal("-0.01")), "cost_usd"),
    "USD not finite": (attempt_fields(cost_usd=Decimal("NaN")), "cost_usd"),
    "time without UTC offset": (attempt_fields(at=datetime(2026, 3, 1, 12)), "at"),
    "time as a string": (attempt_fields(at="2026-03-01T12:00:00+00:00"), "at"),
    "time as a number": (attempt_fields(at=1772366400), "at"),
    "unknown provider": (attempt_fields(provider="mistral"), "provider"),
    "unknown status": (attempt_fields(status="timeout"), "status"),
    "failure without error": (attempt_fields(**{**FAILED, "error": None}), "error"),
    "success with error": (attempt_fields(error="APIStatusError: 503"), "error"),
    "streamed as a string": (attempt_fields(streamed="yes"), "streamed"),
    "empty model name": (attempt_fields(model_requested=""), "model_requested"),
    "bad id": (attempt_fields(id="not-hex"), "id"),
    "latency missing a value": (attempt_fields(latency_s=None), "latency_s"),
}


@pytest.mark.parametrize("values, field", BAD.values(), ids=BAD.keys())
def test_a_bad_attempt_is_refused_naming_its_field(values: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match=rf"\b{field}\b"):
        ModelAttempt(**values)


def test_time_is_kept_in_utc_and_the_json_form_is_the_wire_shape() -> None:
    paris = timezone(timedelta(hours=1))
    made = ModelAttempt(**attempt_fields(at=datetime(2026, 3, 1, 13, 0, tzinfo=paris)))
    assert made.at == T0 and made.at.tzinfo == UTC
    wire = made.wire()
    assert wire["at"] == "2026-03-01T12:00:00+00:00"
    assert wire["cost_usd"] == "0.00093"  # a decimal string: exact
    assert ModelAttempt(**attempt_fields(cost_usd=None)).wire()["cost_usd"] is None
    assert {k: v for k, v in wire.items() if k not in ("at", "cost_usd")} == {
        k: v for k, v in attempt_fields(id=made.id).items() if k not in ("at", "cost_usd")
    }
